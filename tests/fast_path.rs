//! The accept fast path of `parse_event` (borrowed parse, compiled schema, typed read from the
//! parsed document) and the reference path through `serde_json::Value` agree on every input:
//! what the fast path accepts, the reference path accepts with the same contents; everything the
//! fast path refuses is decided and explained by the reference path.

mod common;

use std::path::Path;

use callbacks::event::{parse_event, parse_fast, parse_value, EventData, InboundEvent};
use common::*;
use serde_json::Value;

fn data_json(e: &InboundEvent) -> Value {
    match &e.data {
        EventData::MessageStatus(d) => serde_json::to_value(d).expect("ser"),
        EventData::ChannelStatus(d) => serde_json::to_value(d).expect("ser"),
    }
}

/// Checks the two paths agree on `bytes`; returns whether the fast path accepted.
fn agree(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let fast = parse_fast(bytes);
    let reference = parse_value(bytes);
    let combined = parse_event(bytes);
    match (&fast, &reference) {
        (Some(f), Ok(r)) => {
            assert_eq!(f.meta, r.meta, "{text}");
            assert_eq!(data_json(f), data_json(r), "{text}");
        }
        (Some(_), Err(e)) => panic!("fast path accepted what the reference refuses ({e}): {text}"),
        (None, _) => {}
    }
    // parse_event answers as the reference path does, error text included.
    match (&combined, &reference) {
        (Ok(c), Ok(r)) => {
            assert_eq!(c.meta, r.meta, "{text}");
            assert_eq!(data_json(c), data_json(r), "{text}");
        }
        (Err(c), Err(r)) => {
            assert_eq!(c.to_string(), r.to_string(), "{text}");
            assert_eq!(c.event_id, r.event_id, "{text}");
        }
        _ => panic!("parse_event and the reference path disagree on {text}"),
    }
    fast.is_some()
}

#[test]
fn every_golden_event_takes_the_fast_path_with_the_same_contents() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("legacy-compat/cases");
    let mut n = 0;
    for entry in std::fs::read_dir(&root).expect("cases") {
        let path = entry.expect("entry").path().join("event.json");
        let bytes = std::fs::read(&path).expect("event.json");
        assert!(agree(&bytes), "fast path refused {}", path.display());
        n += 1;
    }
    assert!(n >= 50, "only {n} golden cases found");
}

#[test]
fn every_invalid_line_is_refused_by_the_fast_path_and_explained_by_the_reference() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("legacy-compat/invalid/cases.jsonl");
    let text = std::fs::read_to_string(path).expect("cases.jsonl");
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("case");
        let input = case["line"].as_str().expect("line");
        assert!(
            !agree(input.as_bytes()),
            "fast path accepted invalid case {}",
            case["name"]
        );
        assert!(parse_event(input.as_bytes()).is_err(), "{}", case["name"]);
        n += 1;
    }
    assert!(n >= 40, "only {n} invalid cases found");
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).expect("json")
}

#[test]
fn escapes_extensions_layout_and_non_ascii_take_the_fast_path() {
    let m = message_event("e-1", "client-a", "DELIVERED");
    let c = channel_event("e-2", "client-a", "FAILED", "permanent_failure");
    let mut accepted = vec![
        text(&m),
        text(&c),
        serde_json::to_string_pretty(&m).expect("json"),
    ];
    // Escaped and non-ASCII strings, copied rather than borrowed.
    accepted.push(text(&m).replace(
        "1642109b-69eb-447f-8f97-ab70a74f5db4",
        r#"ref \"quoted\" \u00e9\u2603 \\ tab\t caf\u00c3 é ☃ 😀"#,
    ));
    accepted.push(text(&m).replace(r#""source":"/"#, r#""source":"\/"#));
    // Extension attributes of every JSON type, which the envelope allows and the pipeline skips.
    let mut v = m.clone();
    v["sequence"] = Value::from("42");
    v["ext1"] = serde_json::json!({"nested": [1, 2.5, -3, null, true, {"k": "v"}], "big": 18446744073709551615u64});
    v["ext2"] = Value::Null;
    accepted.push(text(&v));
    for t in &accepted {
        assert!(agree(t.as_bytes()), "fast path refused {t}");
    }
}

#[test]
fn repeated_member_names_are_refused_by_both_paths_with_the_pointer() {
    let m = text(&message_event("e-1", "client-a", "DELIVERED"));
    let c = text(&channel_event("e-2", "client-a", "FAILED", "read"));
    let cases = [
        // Either occurrence valid, either order: refused all the same (no "last one wins").
        (
            m.replace(r#""data":{"#, r#""data":{"messageStatus":"BOGUS","#),
            "/data/messageStatus",
            Some("e-1"),
        ),
        (
            m.replace(
                r#""messageStatus":"DELIVERED""#,
                r#""messageStatus":"DELIVERED","messageStatus":"FAILED""#,
            ),
            "/data/messageStatus",
            Some("e-1"),
        ),
        (
            m.replace(
                r#""clientId":"client-a""#,
                r#""clientId":"client-a","clientId":"client-b""#,
            ),
            "/data/clientId",
            Some("e-1"),
        ),
        (
            m.replace(r#""id":"e-1""#, r#""id":"e-1","id":"e-2""#),
            "/id",
            None,
        ),
        (
            m.replace(r#""type":"uk."#, r#""type":"unknown","type":"uk."#),
            "/type",
            Some("e-1"),
        ),
        (
            m.replace(r#""name":"#, r#""name":"x","name":"#),
            "/data/routingPlan/name",
            Some("e-1"),
        ),
        (
            m.replace(
                r#""channelStatus":"#,
                r#""channelStatus":"SENDING","channelStatus":"#,
            ),
            "/data/channels/0/channelStatus",
            Some("e-1"),
        ),
        (
            c.replace(
                r#""supplierStatus":"read""#,
                r#""supplierStatus":"read","supplierStatus":"read""#,
            ),
            "/data/supplierStatus",
            Some("e-2"),
        ),
        // An escaped spelling of the same name is the same name.
        (
            m.replace(r#""source":"#, r#""sourc\u0065":"/other","source":"#),
            "/source",
            Some("e-1"),
        ),
    ];
    for (input, pointer, id) in &cases {
        assert!(!agree(input.as_bytes()), "fast path accepted {input}");
        let r = parse_event(input.as_bytes()).expect_err(input);
        let fields = r.error.fields();
        assert_eq!(fields.len(), 1, "{input}");
        assert_eq!(fields[0].pointer, *pointer, "{input}");
        assert!(fields[0].reason.contains("repeats"), "{}", fields[0].reason);
        assert_eq!(r.event_id.as_deref(), *id, "{input}");
    }
}

#[test]
fn numbers_and_non_objects_agree_with_the_reference() {
    let m = text(&message_event("e-1", "client-a", "DELIVERED"));
    let c = text(&channel_event("e-2", "client-a", "FAILED", "read"));
    let inputs = vec![
        // Integers written as floats, out of range, or negative.
        c.replace(r#""cascadeOrder":1"#, r#""cascadeOrder":1.0"#),
        c.replace(r#""cascadeOrder":1"#, r#""cascadeOrder":1e0"#),
        c.replace(r#""retryCount":0"#, r#""retryCount":18446744073709551615"#),
        c.replace(r#""retryCount":0"#, r#""retryCount":184467440737095516150"#),
        c.replace(r#""retryCount":0"#, r#""retryCount":-0"#),
        // Not one JSON object.
        format!("{m} trailing"),
        format!("[{m}]"),
        "\"text\"".to_string(),
        "42".to_string(),
        "null".to_string(),
        "{}".to_string(),
        String::new(),
        // An unknown member in the data, and a `type` that is not a string.
        m.replace(r#""data":{"#, r#""data":{"unexpected":1,"#),
        m.replace(
            r#""type":"uk.nhs.notify.message.status.PUBLISHED.v1""#,
            r#""type":7"#,
        ),
    ];
    for input in &inputs {
        agree(input.as_bytes());
    }
}

#[test]
fn nulls_and_any_case_values_take_the_fast_path_with_the_reference_contents() {
    let m = message_event("e-1", "client-a", "DELIVERED");
    let c = channel_event("e-2", "client-a", "FAILED", "permanent_failure");
    let edit = |mut v: Value, edits: &[(&str, &str, Value)]| {
        for (parent, name, value) in edits {
            v.pointer_mut(parent).expect("parent")[*name] = value.clone();
        }
        text(&v)
    };
    let accepted = [
        edit(
            m.clone(),
            &[
                ("", "subject", Value::Null),
                ("", "dataschema", Value::Null),
                ("", "traceparent", Value::Null),
                ("", "ext", Value::Null),
                ("/data", "previousMessageStatus", Value::Null),
                ("/data", "messageStatusDescription", Value::Null),
            ],
        ),
        edit(
            c.clone(),
            &[
                ("/data", "previousChannelStatus", Value::Null),
                ("/data", "previousSupplierStatus", Value::Null),
                ("/data", "channelFailureReasonCode", Value::Null),
            ],
        ),
        edit(
            m.clone(),
            &[
                ("/data", "messageStatus", Value::from("Delivered")),
                ("/data/channels/0", "type", Value::from("nhsApp")),
                (
                    "/data/channels/0",
                    "channelStatus",
                    Value::from("delivered"),
                ),
            ],
        ),
        edit(
            c.clone(),
            &[
                ("/data", "channel", Value::from("NhsApp")),
                ("/data", "channelStatus", Value::from("Failed")),
                ("/data", "supplierStatus", Value::from("Permanent_Failure")),
            ],
        ),
    ];
    for t in &accepted {
        assert!(agree(t.as_bytes()), "fast path refused {t}");
    }
    // Normalised contents: the typed data holds the schema's spelling.
    let e = parse_fast(accepted[2].as_bytes()).expect("accepted");
    assert_eq!(data_json(&e)["messageStatus"], "DELIVERED");
    assert_eq!(data_json(&e)["channels"][0]["type"], "NHSAPP");
    let e = parse_fast(accepted[0].as_bytes()).expect("accepted");
    assert_eq!(e.meta.traceparent, None);
    assert!(data_json(&e)
        .get("previousMessageStatus")
        .is_none_or(Value::is_null));
    // Null required attributes and values in no case are refused by both, naming the field.
    let refused = [
        (edit(m.clone(), &[("", "id", Value::Null)]), "/id"),
        (
            edit(m.clone(), &[("/data", "clientId", Value::Null)]),
            "/data/clientId",
        ),
        (
            edit(
                m.clone(),
                &[("/data", "messageStatus", Value::from("Deliverd"))],
            ),
            "/data/messageStatus",
        ),
        (
            edit(
                c.clone(),
                &[("/data", "cascadeType", Value::from("Primary"))],
            ),
            "/data/cascadeType",
        ),
    ];
    for (t, pointer) in &refused {
        assert!(!agree(t.as_bytes()), "fast path accepted {t}");
        let r = parse_event(t.as_bytes()).expect_err(t);
        assert!(
            r.error.fields().iter().any(|f| f.pointer == *pointer),
            "{t}: {r}"
        );
    }
}

#[test]
fn documents_the_scanner_leaves_to_serde_json_still_take_the_fast_path() {
    // The one-pass scanner (src/schema/scan.rs) answers only for documents it is sure of; an
    // extension nested deeper than it goes is parsed by serde_json and accepted all the same.
    let mut v = message_event("e-1", "client-a", "DELIVERED");
    let depth = callbacks::schema::scan::MAX_DEPTH + 10;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    v["ext1"] = serde_json::from_str(&deep).expect("json");
    let t = text(&v);
    assert!(callbacks::schema::scan::scan(t.as_bytes()).is_none());
    assert!(agree(t.as_bytes()), "fast path refused {t}");
}

#[test]
fn a_repeated_name_the_typed_read_skips_is_refused_all_the_same() {
    // Extension attributes and unknown members are skipped by the typed read, so only the
    // duplicate check (the scanner's, or the tree's) can refuse their repeats.
    let m = text(&message_event("e-1", "client-a", "DELIVERED"));
    for (input, pointer) in [
        (
            m.replace(
                r#""specversion":"#,
                r#""ext1":"a","ext1":"b","specversion":"#,
            ),
            "/ext1",
        ),
        (
            m.replace(
                r#""specversion":"#,
                r#""ext1":{"k":1,"k":2},"specversion":"#,
            ),
            "/ext1/k",
        ),
    ] {
        assert!(!agree(input.as_bytes()), "fast path accepted {input}");
        let r = parse_event(input.as_bytes()).expect_err(&input);
        assert_eq!(r.error.fields()[0].pointer, pointer, "{input}");
    }
}
