use super::*;
use crate::transform;
use serde_json::{json, Value};

/// What the body writer must give for `value`: serde_json's compact text, and that text as
/// serde_json escapes a string.
fn reference<T: Serialize>(value: &T) -> (Vec<u8>, Vec<u8>) {
    let raw = serde_json::to_vec(value).expect("json");
    let quoted = serde_json::to_vec(std::str::from_utf8(&raw).expect("utf-8")).expect("json");
    (raw, quoted[1..quoted.len() - 1].to_vec())
}

fn assert_written<T: Serialize>(body: &mut Body, value: &T) {
    body.write(value).expect("write");
    let (raw, escaped) = reference(value);
    assert_eq!(
        String::from_utf8_lossy(&body.raw),
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        String::from_utf8_lossy(&body.escaped),
        String::from_utf8_lossy(&escaped)
    );
}

const AWKWARD: [&str; 7] = [
    "",
    "plain",
    "q\"uote\" back\\slash \\\"",
    "ctl \u{1}\u{8}\t\n\r\u{c}\u{1f} del \u{7f}",
    "caf\u{e9} \u{2028} \u{2603} \u{1f600}",
    "\"",
    "{\"json\":[\"inside\"]}",
];

fn message_event(text: &str) -> crate::event::InboundEvent {
    let mut data = json!({"clientId": "c", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
        "messageReference": text, "messageStatus": "FAILED",
        "channels": [{"type": "SMS", "channelStatus": "FAILED"},
            {"type": "EMAIL", "channelStatus": "DELIVERED"}],
        "timestamp": "2025-01-01T00:00:00Z",
        "routingPlan": {"id": text, "name": "", "version": "v", "createdDate": ""}});
    if !text.is_empty() {
        data["messageStatusDescription"] = json!(text);
        data["messageFailureReasonCode"] = json!("E1");
    }
    crate::event::from_value(json!({
        "specversion": "1.0", "id": format!("e-{text}"), "source": "/s",
        "time": "2025-01-01T00:00:00Z", "type": "uk.nhs.notify.message.status.PUBLISHED.v1",
        "data": data
    }))
    .expect("valid message event")
}

fn channel_event(text: &str, order: u64) -> crate::event::InboundEvent {
    let mut data = json!({"clientId": "c", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
        "messageReference": text, "channel": "NHSAPP", "channelStatus": "DELIVERED",
        "supplierStatus": "read", "cascadeType": "secondary", "cascadeOrder": order,
        "timestamp": "2025-01-01T00:00:00Z", "retryCount": order * 7});
    if !text.is_empty() {
        data["channelStatusDescription"] = json!(text);
    }
    crate::event::from_value(json!({
        "specversion": "1.0", "id": "e", "source": "/s", "time": "2025-01-01T00:00:00Z",
        "type": "uk.nhs.notify.channel.status.PUBLISHED.v1", "data": data
    }))
    .expect("valid channel event")
}

#[test]
fn payloads_are_written_as_serde_json_writes_them_and_escaped_as_it_escapes_a_string() {
    let mut body = Body::default();
    for (i, text) in AWKWARD.into_iter().enumerate() {
        for link_base in [transform::DEFAULT_LINK_BASE, "https://x.example/a\"b/"] {
            let m = transform::payload(&message_event(text), link_base).expect("payload");
            assert_written(&mut body, &m);
            // The request body the rest of the system signs.
            assert_eq!(body.raw, transform::body(&m));
            let c =
                transform::payload(&channel_event(text, i as u64 + 1), link_base).expect("payload");
            assert_written(&mut body, &c);
            assert_eq!(body.raw, transform::body(&c));
        }
    }
}

#[test]
fn scalars_and_shapes_left_to_serde_json_come_out_the_same() {
    #[derive(serde::Serialize)]
    struct Mixed<'a> {
        flag: bool,
        small: i8,
        big: u128,
        neg: i64,
        float: f64,
        tiny: f32,
        letter: char,
        quote: char,
        nothing: Option<u8>,
        some: Option<&'a str>,
        unit: (),
        empty: Vec<u8>,
        nested: Vec<Vec<&'a str>>,
        bytes: &'a [u8],
    }
    let mut body = Body::default();
    assert_written(
        &mut body,
        &Mixed {
            flag: true,
            small: -3,
            big: u128::MAX,
            neg: i64::MIN,
            float: 1.5e300,
            tiny: 0.1,
            letter: '\u{e9}',
            quote: '"',
            nothing: None,
            some: Some("a\\b"),
            unit: (),
            empty: vec![],
            nested: vec![vec![], vec!["x", "\"y\""]],
            bytes: b"\x00\xff",
        },
    );
    // Through serde_json as a whole: maps, tuples, enum variants with data, raw values.
    for value in [
        json!({"b": [1, {"a": "\"q\""}], "a": null}),
        json!([]),
        json!("\u{1}"),
    ] {
        assert_written(&mut body, &value);
    }
    assert_written(&mut body, &(1, "two\n"));
    let raw = serde_json::value::RawValue::from_string("{\"k\" : \"v\"}".into()).expect("raw");
    assert_written(&mut body, &raw);
    #[derive(serde::Serialize)]
    enum E {
        Tuple(u8, u8),
        Struct { a: &'static str },
        New(&'static str),
        Unit,
    }
    for e in [E::Tuple(1, 2), E::Struct { a: "\\" }, E::New("n"), E::Unit] {
        assert_written(&mut body, &vec![e]);
    }
    let value: Value = serde_json::from_slice(&body.raw).expect("json");
    assert_eq!(value, json!(["Unit"]));
}

#[test]
fn put_appends_exactly_the_bytes_given_at_every_length() {
    let source: Vec<u8> = (0..40u8)
        .map(|b| b.wrapping_mul(37).wrapping_add(11))
        .collect();
    for prefix in [0usize, 1, 7, 15] {
        for n in 0..=source.len() {
            let mut v: Vec<u8> = vec![0xAA; prefix];
            // A tight capacity, so `put` must grow it.
            v.shrink_to_fit();
            put(&mut v, &source[..n]);
            put(&mut v, &source[n..]);
            let mut want = vec![0xAA; prefix];
            want.extend_from_slice(&source);
            assert_eq!(v, want, "prefix {prefix}, split at {n}");
        }
    }
}

#[test]
fn member_names_with_specials_are_escaped_like_any_string() {
    #[derive(serde::Serialize)]
    struct Odd {
        #[serde(rename = "q\"uote\\d")]
        a: u8,
        #[serde(rename = "plain")]
        b: &'static str,
    }
    assert_written(&mut Body::default(), &Odd { a: 1, b: "x\"y" });
}
