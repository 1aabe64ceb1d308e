//! The generated types and the run-time validator agree; every enum round-trips its exact wire
//! strings; every required field's absence is reported by name.

mod common;

use callbacks::event::{from_value, parse_fast, EventData, EventError};
use callbacks::schema::types;
use callbacks::schema::{registry, EventKind, Schemas};
use common::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Every value of the named `$defs` enum deserializes into `T`, displays and serializes back
/// to exactly the same string; a value outside the enum is refused.
fn roundtrip<T: DeserializeOwned + Serialize + std::fmt::Display>(def: &str) -> usize {
    let defs = schema_file("defs.schema.json");
    let values = defs["$defs"][def]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{def} has an enum"));
    assert!(!values.is_empty());
    for v in values {
        let s = v.as_str().expect("string enum");
        let parsed: T =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{def}: {s}: {e}"));
        assert_eq!(parsed.to_string(), s, "{def}: Display");
        assert_eq!(
            serde_json::to_value(&parsed).expect("serialize"),
            *v,
            "{def}: serialize"
        );
    }
    assert!(
        serde_json::from_value::<T>(json!("NOT_A_VALUE")).is_err(),
        "{def} accepts an unknown value"
    );
    values.len()
}

#[test]
fn every_enum_round_trips_its_wire_strings() {
    let covered: Vec<(&str, usize)> = vec![
        (
            "MessageStatus",
            roundtrip::<types::MessageStatus>("MessageStatus"),
        ),
        (
            "MessageStatusLower",
            roundtrip::<types::MessageStatusLower>("MessageStatusLower"),
        ),
        (
            "ChannelStatus",
            roundtrip::<types::ChannelStatus>("ChannelStatus"),
        ),
        (
            "ChannelStatusLower",
            roundtrip::<types::ChannelStatusLower>("ChannelStatusLower"),
        ),
        (
            "ChannelType",
            roundtrip::<types::ChannelType>("ChannelType"),
        ),
        (
            "ChannelTypeLower",
            roundtrip::<types::ChannelTypeLower>("ChannelTypeLower"),
        ),
        (
            "SupplierStatusUpper",
            roundtrip::<types::SupplierStatusUpper>("SupplierStatusUpper"),
        ),
        (
            "SupplierStatusLower",
            roundtrip::<types::SupplierStatusLower>("SupplierStatusLower"),
        ),
        (
            "CascadeType",
            roundtrip::<types::CascadeType>("CascadeType"),
        ),
    ];
    // The lists, as producers send them.
    assert_eq!(covered[0].1, 6);
    assert_eq!(covered[2].1, 8);
    assert_eq!(covered[4].1, 4);
    assert_eq!(covered[7].1, 25);
    // Every enum in defs.schema.json is covered here: a new enum must be added to this test.
    let defs = schema_file("defs.schema.json");
    let mut in_schema: Vec<&str> = defs["$defs"]
        .as_object()
        .expect("$defs")
        .iter()
        .filter(|(_, d)| d.get("enum").is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    in_schema.sort_unstable();
    let mut tested: Vec<&str> = covered.iter().map(|(n, _)| *n).collect();
    tested.sort_unstable();
    assert_eq!(in_schema, tested);
}

#[test]
fn any_case_enums_accept_both_cases_and_keep_the_wire_string() {
    for s in ["read", "READ", "permanent_failure", "PERMANENT_FAILURE"] {
        let v: types::SupplierStatusAnyCase = serde_json::from_value(json!(s)).expect(s);
        assert_eq!(v.to_string(), s);
        assert_eq!(serde_json::to_value(&v).expect("ser"), json!(s));
    }
    for s in ["delivered", "DELIVERED"] {
        let v: types::MessageStatusAnyCase = serde_json::from_value(json!(s)).expect(s);
        assert_eq!(v.to_string(), s);
    }
    assert!(serde_json::from_value::<types::SupplierStatusAnyCase>(json!("Read")).is_err());
}

fn errors(event: Value) -> Vec<(String, String)> {
    match from_value(event) {
        Ok(_) => Vec::new(),
        Err(r) => match r.error {
            EventError::Invalid(errs) => errs.into_iter().map(|e| (e.pointer, e.reason)).collect(),
            other => vec![(String::new(), other.to_string())],
        },
    }
}

fn required(schema: &str) -> Vec<String> {
    schema_file(schema)["required"]
        .as_array()
        .expect("required")
        .iter()
        .map(|v| v.as_str().expect("name").to_string())
        .collect()
}

#[test]
fn every_required_field_absence_is_named() {
    let cases = [
        (
            message_event("e-1", "client-a", "DELIVERED"),
            "message-status-data.v1.schema.json",
        ),
        (
            channel_event("e-2", "client-a", "DELIVERED", "read"),
            "channel-status-data.v1.schema.json",
        ),
    ];
    for (event, data_schema) in cases {
        assert!(errors(event.clone()).is_empty(), "sample is valid");
        let data_fields = required(data_schema);
        assert!(data_fields.len() >= 7);
        for field in &data_fields {
            let mut e = event.clone();
            e["data"].as_object_mut().expect("data").remove(field);
            let errs = errors(e.clone());
            let pointer = format!("/data/{field}");
            assert!(
                errs.iter()
                    .any(|(p, r)| *p == pointer && r.contains("required")),
                "{pointer}: {errs:?}"
            );
            // The generated type agrees: it cannot be built without the field.
            let data = e["data"].clone();
            let typed = match data_schema {
                "message-status-data.v1.schema.json" => {
                    serde_json::from_value::<types::MessageStatusData>(data).is_ok()
                }
                _ => serde_json::from_value::<types::ChannelStatusData>(data).is_ok(),
            };
            assert!(!typed, "generated type accepted data without {field}");
        }
        for field in required("cloudevent.schema.json") {
            let mut e = event.clone();
            e.as_object_mut().expect("event").remove(&field);
            let errs = errors(e);
            let pointer = format!("/{field}");
            assert!(
                errs.iter().any(|(p, _)| *p == pointer),
                "{pointer}: {errs:?}"
            );
        }
    }
}

/// (mutation, pointer the error must name). Each is also refused by the generated types.
fn invalid_corpus() -> Vec<(Value, &'static str)> {
    let m = || message_event("e-1", "client-a", "DELIVERED");
    let c = || channel_event("e-2", "client-a", "DELIVERED", "read");
    let set = |mut v: Value, ptr: &str, val: Value| {
        *v.pointer_mut(ptr).unwrap_or_else(|| panic!("{ptr}")) = val;
        v
    };
    vec![
        (
            set(m(), "/data/messageStatus", json!("ARCHIVED")),
            "/data/messageStatus",
        ),
        (
            set(m(), "/data/messageStatus", json!("DELIVERD")),
            "/data/messageStatus",
        ),
        (
            set(m(), "/data/previousMessageStatus", json!("GONE")),
            "/data/previousMessageStatus",
        ),
        (
            set(m(), "/data/channels", json!("NHSAPP")),
            "/data/channels",
        ),
        (
            set(
                m(),
                "/data/channels",
                json!([{"type": "PIGEON", "channelStatus": "DELIVERED"}]),
            ),
            "/data/channels/0/type",
        ),
        (
            set(m(), "/data/channels", json!([{"type": "SMS"}])),
            "/data/channels/0/channelStatus",
        ),
        (
            set(m(), "/data/messageId", json!("short")),
            "/data/messageId",
        ),
        (
            set(m(), "/data/messageId", json!("2WL3qFTEFM0qMY8xjRbt1LIKC/M")),
            "/data/messageId",
        ),
        (
            set(m(), "/data/timestamp", json!("yesterday")),
            "/data/timestamp",
        ),
        (
            set(m(), "/data/routingPlan", json!({"id": "", "name": ""})),
            "/data/routingPlan/version",
        ),
        (set(m(), "/data/clientId", json!("")), "/data/clientId"),
        (set(m(), "/data/clientId", json!(42)), "/data/clientId"),
        (
            set(c(), "/data/cascadeOrder", json!(0)),
            "/data/cascadeOrder",
        ),
        (
            set(c(), "/data/cascadeOrder", json!("1")),
            "/data/cascadeOrder",
        ),
        (set(c(), "/data/retryCount", json!(-1)), "/data/retryCount"),
        (
            set(c(), "/data/cascadeType", json!("tertiary")),
            "/data/cascadeType",
        ),
        (set(c(), "/data/channel", json!("nhs app")), "/data/channel"),
        (
            set(c(), "/data/channelStatus", json!("LOST")),
            "/data/channelStatus",
        ),
        (
            set(c(), "/data/supplierStatus", json!("Reed")),
            "/data/supplierStatus",
        ),
        (set(c(), "/specversion", json!("0.3")), "/specversion"),
        (set(c(), "/id", json!("")), "/id"),
        (set(c(), "/source", json!("/has space")), "/source"),
        (set(c(), "/time", json!(17)), "/time"),
        (
            set(m(), "/traceparent", json!("not-a-traceparent")),
            "/traceparent",
        ),
    ]
}

#[test]
fn generated_types_and_validator_agree_on_invalid_events() {
    for (event, pointer) in invalid_corpus() {
        let errs = errors(event.clone());
        assert!(
            errs.iter().any(|(p, _)| p == pointer),
            "expected an error at {pointer}, got {errs:?}"
        );
        // Deserializing straight into the generated types (no validator) refuses it too.
        let kind = Schemas::get()
            .event_kind(event["type"].as_str().expect("type"))
            .expect("known");
        let mut envelope = event.clone();
        let data = envelope
            .as_object_mut()
            .expect("obj")
            .insert("data".into(), json!({}))
            .expect("data");
        let envelope_ok = serde_json::from_value::<types::CloudEvent>(envelope).is_ok();
        let data_ok = match kind {
            EventKind::MessageStatus => {
                serde_json::from_value::<types::MessageStatusData>(data).is_ok()
            }
            EventKind::ChannelStatus => {
                serde_json::from_value::<types::ChannelStatusData>(data).is_ok()
            }
        };
        assert!(
            !(envelope_ok && data_ok),
            "generated types accepted the event invalid at {pointer}"
        );
        // The accept fast path (borrowed parse + compiled schema) refuses it as well.
        let bytes = serde_json::to_vec(&event).expect("json");
        assert!(
            parse_fast(&bytes).is_none(),
            "the fast path accepted the event invalid at {pointer}"
        );
    }
}

#[test]
fn generated_types_and_validator_agree_on_valid_events() {
    let m = message_event("e-1", "client-a", "DELIVERED");
    let c = channel_event("e-2", "client-a", "DELIVERED", "READ");
    let mut variants = vec![m.clone(), c.clone()];
    // Optional fields absent, empty routing plan strings, empty channels, extension attributes,
    // the client-callbacks namespace, lower-case supplier statuses.
    let mut v = m.clone();
    v["data"]
        .as_object_mut()
        .expect("data")
        .remove("previousMessageStatus");
    v["data"]["channels"] = json!([]);
    v["data"]["routingPlan"] = json!({"id": "", "name": "", "version": "", "createdDate": ""});
    v["data"]["messageStatusDescription"] = json!("");
    v["plane"] = json!("data");
    v["dataschemaversion"] = json!("1.0.0");
    v["type"] = json!("uk.nhs.notify.client-callbacks.message.status.PUBLISHED.v1");
    variants.push(v);
    let mut v = c.clone();
    v["data"]["supplierStatus"] = json!("permanent_failure");
    v["data"]["cascadeType"] = json!("secondary");
    v["data"]["cascadeOrder"] = json!(2);
    v["data"]["retryCount"] = json!(3);
    v["data"]["channelFailureReasonCode"] = json!("CFR_PDSV_0002");
    v["type"] = json!("uk.nhs.notify.client-callbacks.channel.status.PUBLISHED.v1");
    variants.push(v);
    for status in [
        "CREATED",
        "PENDING_ENRICHMENT",
        "ENRICHED",
        "SENDING",
        "DELIVERED",
        "FAILED",
    ] {
        variants.push(message_event("e-s", "client-a", status));
    }
    for event in variants {
        let parsed = from_value(event.clone()).unwrap_or_else(|e| panic!("{e}: {event}"));
        // The typed data serializes back to the same JSON (nothing lost, nothing re-formatted).
        let back = match &parsed.data {
            EventData::MessageStatus(d) => serde_json::to_value(d).expect("ser"),
            EventData::ChannelStatus(d) => serde_json::to_value(d).expect("ser"),
        };
        assert_eq!(back, event["data"], "round trip of {}", event["type"]);
        assert_eq!(parsed.id(), event["id"].as_str().expect("id"));
        // The accept fast path takes it, with the same contents.
        let fast = parse_fast(&serde_json::to_vec(&event).expect("json"))
            .unwrap_or_else(|| panic!("the fast path refused {event}"));
        assert_eq!(fast.meta, parsed.meta);
        let fast_back = match &fast.data {
            EventData::MessageStatus(d) => serde_json::to_value(d).expect("ser"),
            EventData::ChannelStatus(d) => serde_json::to_value(d).expect("ser"),
        };
        assert_eq!(fast_back, back);
    }
}

#[test]
fn unknown_event_type_is_named() {
    let mut e = message_event("e-1", "client-a", "DELIVERED");
    e["type"] = json!("uk.nhs.notify.message.status.PUBLISHED.v9");
    let errs = errors(e);
    assert_eq!(errs[0].0, "/type");
    assert!(
        errs[0].1.contains("is not an accepted event type"),
        "{errs:?}"
    );
    // The reason names the field, not its value (input rule 6).
    assert!(!errs[0].1.contains("PUBLISHED.v9"), "{errs:?}");
}

#[test]
fn registry_lists_the_four_accepted_types_with_existing_schemas() {
    let reg = registry();
    let mut types: Vec<&str> = reg.iter().map(|e| e.event_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "uk.nhs.notify.channel.status.PUBLISHED.v1",
            "uk.nhs.notify.client-callbacks.channel.status.PUBLISHED.v1",
            "uk.nhs.notify.client-callbacks.message.status.PUBLISHED.v1",
            "uk.nhs.notify.message.status.PUBLISHED.v1",
        ]
    );
    for e in &reg {
        assert!(
            callbacks::schema::files::get(&e.data_schema).is_some(),
            "{}",
            e.data_schema
        );
    }
    assert_eq!(Schemas::get().event_types().len(), 4);
}

/// The process-wide validators compile group by group on first use; every group compiles.
#[test]
fn every_validator_group_compiles() {
    let schemas = Schemas::compile().expect("every embedded schema compiles");
    assert_eq!(schemas.event_types().len(), 4);
}

#[test]
fn config_errors_mask_secret_values() {
    let mut cfg = client_config("client-a", "https://example.invalid/cb");
    cfg["targets"][0]["apiKey"]["headerValue"] = json!(12345);
    cfg["targets"][0]["apiKey"]["extra"] = json!("super-secret-value");
    let err = callbacks::config::parse_client(
        "a.json",
        &serde_json::to_vec(&cfg).expect("json"),
        &Default::default(),
    )
    .expect_err("invalid");
    let text = err.to_string();
    assert!(text.contains("/targets/0/apiKey"), "{text}");
    assert!(
        !text.contains("super-secret-value") && !text.contains("12345"),
        "{text}"
    );
}

fn patterns(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(p)) = o.get("pattern") {
                out.push(p.clone());
            }
            o.values().for_each(|c| patterns(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| patterns(c, out)),
        _ => {}
    }
}

/// The generated newtypes check `pattern`s with the `regex` crate (see build.rs): every pattern
/// in the schemas must compile there, or a generated type would panic at first use.
#[test]
fn every_schema_pattern_compiles_with_the_regex_crate() {
    let mut all = Vec::new();
    for (name, text) in callbacks::schema::files::SCHEMA_FILES {
        let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        patterns(&v, &mut all);
    }
    assert!(all.len() >= 5);
    for p in all {
        regex::Regex::new(&p).unwrap_or_else(|e| panic!("pattern {p:?}: {e}"));
    }
}
