//! Request lines of `callbacks transform`: `{"clientId","targetId","url","method","headers","body"}`,
//! compact, the headers in name order (one entry per name, the last one given), exactly as a
//! `serde_json` map of a [`Callback`](crate::pipeline::Callback)'s headers writes them.
//!
//! What repeats is made once: per target (kept for the run, per worker) the escaped text of
//! every field but the signature and the body, and the keyed HMAC state; per event the escaped
//! body, which every target's line of that event carries.

use std::io;

use rustc_hash::FxHashMap;

use crate::config::ClientSettings;
use crate::filter::Route;
use crate::pipeline::{fixed_headers, target_api_key};
use crate::sign::{SigningKey, SIGNATURE_HEADER};
use crate::transform::Payload;

use super::body::Body;

/// One target's line, cut around its signature.
struct TargetLine {
    key: SigningKey,
    /// From the line's start up to the signature's value (or, when a later header of the same
    /// name replaces the signature, up to the body's value).
    head: Vec<u8>,
    /// After the signature's value, up to the body's value; `None` when the line carries no
    /// signature.
    tail: Option<Vec<u8>>,
}

/// Writes the request lines of routed events, remembering each target's parts.
#[derive(Default)]
pub struct RequestWriter<'c> {
    /// By (client, target index); the clients are borrowed for `'c`, so the addresses are theirs.
    targets: FxHashMap<(usize, usize), TargetLine>,
    /// The body of the current event, as signed and as escaped into the line.
    body: Body,
    _clients: std::marker::PhantomData<&'c ClientSettings>,
}

impl<'c> RequestWriter<'c> {
    /// Appends one line per route to `out`, each carrying `payload` as its body (serialized
    /// once, as [`crate::transform::body`] serializes it); returns how many.
    pub fn write(
        &mut self,
        out: &mut Vec<u8>,
        client: &'c ClientSettings,
        routes: &[Route<'c>],
        payload: &Payload,
    ) -> io::Result<usize> {
        self.body.write(payload)?;
        for route in routes {
            let at = (std::ptr::from_ref(client) as usize, route.target);
            let line = match self.targets.entry(at) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(target_line(client, route.target)?)
                }
            };
            out.extend_from_slice(&line.head);
            if let Some(tail) = &line.tail {
                out.extend_from_slice(&line.key.signature_hex(&self.body.raw));
                out.extend_from_slice(tail);
            }
            out.extend_from_slice(&self.body.escaped);
            out.extend_from_slice(b"\"}\n");
        }
        Ok(routes.len())
    }
}

/// The fixed parts of a target's line.
fn target_line(client: &ClientSettings, index: usize) -> io::Result<TargetLine> {
    let target = &client.targets[index];
    let mut head = Vec::new();
    head.extend_from_slice(b"{\"clientId\":");
    json_str(&mut head, &client.client_id)?;
    head.extend_from_slice(b",\"targetId\":");
    json_str(&mut head, &target.target_id)?;
    head.extend_from_slice(b",\"url\":");
    json_str(&mut head, &target.invocation_endpoint)?;
    head.extend_from_slice(b",\"method\":\"POST\",\"headers\":{");
    // `None` stands for the signature.
    let mut headers: Vec<(String, Option<&str>)> = fixed_headers(target)
        .into_iter()
        .map(|(name, value)| (name, Some(value)))
        .collect();
    headers.push((SIGNATURE_HEADER.to_string(), None));
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tail: Option<Vec<u8>> = None;
    let mut first = true;
    for (i, (name, value)) in headers.iter().enumerate() {
        if headers.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        let part = tail.as_mut().unwrap_or(&mut head);
        if !first {
            part.push(b',');
        }
        first = false;
        json_str(part, name)?;
        part.push(b':');
        match value {
            Some(v) => json_str(part, v)?,
            None => {
                part.push(b'"');
                tail = Some(b"\"".to_vec());
            }
        }
    }
    tail.as_mut()
        .unwrap_or(&mut head)
        .extend_from_slice(b"},\"body\":\"");
    Ok(TargetLine {
        key: SigningKey::new(&client.application_id, target_api_key(target)),
        head,
        tail,
    })
}

fn json_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, s).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::super::body::embed;
    use super::*;
    use crate::pipeline::{self, Callback, CoreOptions};
    use serde_json::json;

    /// The request line as serde writes it with the headers in a `serde_json::Map` (sorted by
    /// name in this build: no `preserve_order`), the format before this writer.
    fn by_serde(cb: &Callback) -> Vec<u8> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct RequestLine<'a> {
            client_id: &'a str,
            target_id: &'a str,
            url: &'a str,
            method: &'a str,
            headers: std::collections::BTreeMap<&'a str, &'a str>,
            body: &'a str,
        }
        let mut line = serde_json::to_vec(&RequestLine {
            client_id: &cb.client_id,
            target_id: &cb.target_id,
            url: &cb.url,
            method: cb.method,
            headers: cb
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            body: std::str::from_utf8(&cb.body).expect("utf-8"),
        })
        .expect("json");
        line.push(b'\n');
        line
    }

    fn client() -> ClientSettings {
        let target = |id: &str, url: &str, name: &str, key: &str| {
            json!({"targetId": id, "type": "API", "invocationEndpoint": url,
                "invocationMethod": "POST", "invocationRateLimit": 1,
                "apiKey": {"headerName": name, "headerValue": key}})
        };
        let doc = json!({
            "clientId": "client-\u{e9}", "applicationId": "app\"1",
            "subscriptions": [{"subscriptionId": "m", "subscriptionType": "MessageStatus",
                "messageStatuses": ["delivered"], "targetIds": ["t\\1", "t2", "t3"]}],
            "targets": [
                target("t\\1", "https://x.example/cb?a=1&b=\"2\"", "X-API-Key", "k\"1\\"),
                target("t2", "https://y.example/", "authorization", "Bearer-x"),
                target("t3", "https://z.example/", "Zz-Key", "z"),
            ]
        });
        crate::config::parse_client("c.json", doc.to_string().as_bytes(), &Default::default())
            .expect("valid")
    }

    fn event(reference: &str) -> crate::event::InboundEvent {
        crate::event::from_value(json!({
            "specversion": "1.0", "id": "e\"1", "source": "/s", "time": "2025-01-01T00:00:00Z",
            "type": "uk.nhs.notify.message.status.PUBLISHED.v1",
            "data": {"clientId": "client-\u{e9}", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
                "messageReference": reference, "messageStatus": "DELIVERED",
                "channels": [{"type": "SMS", "channelStatus": "DELIVERED"}],
                "timestamp": "2025-01-01T00:00:00Z",
                "routingPlan": {"id": "", "name": "", "version": "", "createdDate": ""}}
        }))
        .expect("valid event")
    }

    /// The lines of `signed_callbacks` written through serde, for every event in turn.
    fn expected(client: &ClientSettings, events: &[crate::event::InboundEvent]) -> Vec<u8> {
        let opts = CoreOptions::default();
        let mut out = Vec::new();
        for e in events {
            let signed = pipeline::signed_callbacks(e, client, &opts)
                .expect("payload")
                .expect("routed");
            for cb in &signed.callbacks {
                out.extend(by_serde(cb));
            }
        }
        out
    }

    fn ours(client: &ClientSettings, events: &[crate::event::InboundEvent]) -> Vec<u8> {
        let opts = CoreOptions::default();
        let mut writer = RequestWriter::default();
        let mut out = Vec::new();
        for e in events {
            let (payload, routes) = pipeline::route_payload(e, client, &opts)
                .expect("payload")
                .expect("routed");
            let n = writer
                .write(&mut out, client, &routes, &payload)
                .expect("write");
            assert_eq!(n, routes.len());
        }
        out
    }

    #[test]
    fn request_lines_match_the_callbacks_written_through_a_json_map_byte_for_byte() {
        let client = client();
        // The second event reuses every target's parts; its body differs.
        let events = [
            event("ref \"q\" \\ caf\u{e9} \u{2028} \u{1}"),
            event("plain"),
        ];
        let want = expected(&client, &events);
        assert_eq!(want.iter().filter(|&&b| b == b'\n').count(), 6);
        assert_eq!(
            String::from_utf8_lossy(&ours(&client, &events)),
            String::from_utf8_lossy(&want)
        );
    }

    #[test]
    fn repeated_header_names_keep_the_last_one_given_as_a_json_map_does() {
        let mut client = client();
        for (i, name) in ["X-HMAC-SHA256-Signature", "a-key", "content-type"]
            .into_iter()
            .enumerate()
        {
            client.targets[i].api_key.header_name = name.parse().expect("header name");
        }
        let events = [event("r")];
        assert_eq!(
            String::from_utf8_lossy(&ours(&client, &events)),
            String::from_utf8_lossy(&expected(&client, &events))
        );
    }

    #[test]
    fn escaping_matches_serde_json() {
        for s in [
            "",
            "plain",
            r#"{"data":[{"a":"\"q\"","b":"\u0001"}]}"#,
            "\"",
            "\\",
            "a\"b\\c\u{1}d\ne\u{1f}f\u{7f}g\u{2028}h é ☃ 😀\"",
            "\t\r\u{8}\u{c}",
        ] {
            let mut ours = Vec::new();
            embed(&mut ours, s.as_bytes()).expect("escape");
            let theirs = serde_json::to_vec(s).expect("json");
            assert_eq!(ours, theirs[1..theirs.len() - 1], "{s:?}");
        }
        // Every escaped character at every offset of a word, alone and in pairs.
        for special in ["\"", "\\", "\u{0}", "\n", "\u{1f}", "\u{7f}", "\u{e9}"] {
            for before in 0..20 {
                for after in [0, 1, 8] {
                    let s = format!(
                        "{}{special}{}{special}",
                        "a".repeat(before),
                        "z".repeat(after)
                    );
                    let mut ours = Vec::new();
                    embed(&mut ours, s.as_bytes()).expect("escape");
                    let theirs = serde_json::to_vec(&s).expect("json");
                    assert_eq!(ours, theirs[1..theirs.len() - 1], "{s:?}");
                }
            }
        }
    }
}
