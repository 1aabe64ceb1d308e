//! One block of input lines through the core: callback request lines, error reports, counts.

use std::io;

use crate::config::ConfigSet;
use crate::event::MAX_EVENT_BYTES;
use crate::pipeline::{self, Callback, CoreOptions, Outcome, ProcessError};

use super::blocks::Block;
use super::StreamStats;

/// A rejected line of a block.
#[derive(Debug)]
pub struct LineError {
    /// The line number within the block (1-based).
    pub line: u64,
    pub event_id: Option<String>,
    pub error: String,
}

/// What one block produced. Buffers are cleared and reused for the next block.
#[derive(Default)]
pub struct BlockOutput {
    /// One request line per callback, each ending with `\n`.
    pub callbacks: Vec<u8>,
    pub errors: Vec<LineError>,
    pub stats: StreamStats,
    /// Set if an output line could not be written (the run stops with it).
    pub failure: Option<io::Error>,
}

/// Runs the core over every line of `block`.
pub fn process_block(
    block: &Block,
    output: &mut BlockOutput,
    configs: &ConfigSet,
    opts: &CoreOptions,
) {
    output.callbacks.clear();
    output.errors.clear();
    output.stats = StreamStats::default();
    output.failure = None;
    if let Some(total) = block.overlong {
        output.stats.lines += 1;
        too_large(output, total);
    }
    let mut rest = &block.data[..];
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        output.stats.lines += 1;
        if line.len() > MAX_EVENT_BYTES {
            too_large(output, line.len());
            continue;
        }
        let line = trim(line);
        if !line.is_empty() {
            if let Err(e) = process_line(line, output, configs, opts) {
                output.failure = Some(e);
                return;
            }
        }
    }
}

fn too_large(output: &mut BlockOutput, total: usize) {
    output.stats.rejected += 1;
    output.errors.push(LineError {
        line: output.stats.lines,
        event_id: None,
        error: format!("event is {total} bytes; the limit is {MAX_EVENT_BYTES} bytes"),
    });
}

fn process_line(
    line: &[u8],
    output: &mut BlockOutput,
    configs: &ConfigSet,
    opts: &CoreOptions,
) -> io::Result<()> {
    let stats = &mut output.stats;
    match pipeline::process(line, configs, opts) {
        Ok(Outcome::Callbacks { callbacks, .. }) => {
            stats.events += 1;
            if callbacks.is_empty() {
                stats.no_match += 1;
            }
            for cb in &callbacks {
                write_callback(&mut output.callbacks, cb)?;
                stats.callbacks += 1;
            }
        }
        Ok(Outcome::NoClientConfig { event }) => {
            stats.events += 1;
            stats.no_client_config += 1;
            tracing::info!(
                event_id = event.id(),
                message_id = event.message_id(),
                client_id = event.client_id(),
                "no configuration for client"
            );
        }
        Err(e) => {
            stats.rejected += 1;
            let event_id = e.event_id().map(str::to_owned);
            let error = match &e {
                ProcessError::Rejected(r) => r.error.to_string(),
                ProcessError::Transform { source, .. } => source.to_string(),
            };
            output.errors.push(LineError {
                line: stats.lines,
                event_id,
                error,
            });
        }
    }
    Ok(())
}

/// One request line: `{"clientId","targetId","url","method","headers","body"}`, compact, the
/// headers in name order (one entry per name, the last one given), as a JSON map writes them.
fn write_callback(out: &mut Vec<u8>, cb: &Callback) -> io::Result<()> {
    let body =
        std::str::from_utf8(&cb.body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    out.extend_from_slice(b"{\"clientId\":");
    json_str(out, &cb.client_id)?;
    out.extend_from_slice(b",\"targetId\":");
    json_str(out, &cb.target_id)?;
    out.extend_from_slice(b",\"url\":");
    json_str(out, &cb.url)?;
    out.extend_from_slice(b",\"method\":");
    json_str(out, cb.method)?;
    out.extend_from_slice(b",\"headers\":{");
    let mut headers: Vec<(&str, &str)> = cb
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let mut first = true;
    for (i, (name, value)) in headers.iter().enumerate() {
        if headers.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_str(out, name)?;
        out.push(b':');
        json_str(out, value)?;
    }
    out.extend_from_slice(b"},\"body\":");
    json_str(out, body)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

fn json_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, s).map_err(io::Error::from)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn request_lines_match_a_json_map_of_the_headers_byte_for_byte() {
        for headers in [
            vec![
                ("content-type", "application/vnd.api+json"),
                ("x-api-key", "k\"1"),
                ("x-hmac-sha256-signature", "ab"),
            ],
            vec![
                ("content-type", "a"),
                ("authorization", "k"),
                ("x-hmac-sha256-signature", "s"),
            ],
            vec![
                ("content-type", "a"),
                ("content-type", "later wins"),
                ("x-hmac-sha256-signature", "s"),
            ],
        ] {
            let cb = Callback {
                client_id: "client-\u{e9}\n".into(),
                target_id: "t\\1".into(),
                subscription_ids: vec![],
                url: "https://x.example/cb?a=1&b=\u{2028}".into(),
                method: "POST",
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: br#"{"data":[{"a":"\"q\"","b":"\u0001"}]}"#.to_vec().into(),
                signature: String::new(),
                event_id: String::new(),
                message_id: String::new(),
                traceparent: None,
            };
            let mut ours = Vec::new();
            write_callback(&mut ours, &cb).expect("write");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&by_serde(&cb))
            );
        }
    }
}
