//! Delivery settings come from the schema: its maximums bound them and its `default`s fill in
//! what a configuration leaves out (no hand-written copies of the defaults).

mod common;

use std::time::Duration;

use callbacks::config::{parse_client, DeliverySettings};
use common::*;
use serde_json::{json, Value};

fn parse(delivery: Value) -> Result<DeliverySettings, String> {
    let mut cfg = client_config("client-a", "https://example.invalid/cb");
    cfg["targets"][0]["delivery"] = delivery;
    parse_client(
        "a.json",
        &serde_json::to_vec(&cfg).unwrap(),
        &Default::default(),
    )
    .map(|c| DeliverySettings::of(&c.targets[0]))
    .map_err(|e| e.to_string())
}

fn schema_default(def: &str, field: &str) -> u64 {
    let text = callbacks::schema::files::get("client-config.schema.json").unwrap();
    let v: Value = serde_json::from_str(text).unwrap();
    v["$defs"][def]["properties"][field]["default"]
        .as_u64()
        .unwrap_or_else(|| panic!("{def}.{field} has a default"))
}

#[test]
fn over_the_maximum_is_refused_naming_the_field() {
    for (delivery, pointer) in [
        (
            json!({"timeoutMs": 120_001}),
            "/targets/0/delivery/timeoutMs",
        ),
        (
            json!({"initialBackoffMs": 3_600_001}),
            "/targets/0/delivery/initialBackoffMs",
        ),
        (
            json!({"maxBackoffMs": 43_200_001}),
            "/targets/0/delivery/maxBackoffMs",
        ),
        (
            json!({"circuitBreaker": {"enabled": true, "cooldownMs": 18_446_744_073_709_551_615u64}}),
            "/targets/0/delivery/circuitBreaker/cooldownMs",
        ),
    ] {
        let err = parse(delivery.clone()).expect_err("over the maximum");
        assert!(err.contains(pointer), "{delivery}: {err}");
    }
    let ok = parse(json!({"circuitBreaker": {"enabled": true, "cooldownMs": 3_600_000}})).unwrap();
    assert_eq!(
        ok.circuit_breaker.unwrap().cooldown,
        Duration::from_secs(3600)
    );
}

#[test]
fn defaults_are_the_schemas() {
    let d = parse(json!({"circuitBreaker": {"enabled": true}})).unwrap();
    assert_eq!(
        d.initial_backoff,
        Duration::from_millis(schema_default("Delivery", "initialBackoffMs"))
    );
    assert_eq!(
        d.max_backoff,
        Duration::from_millis(schema_default("Delivery", "maxBackoffMs"))
    );
    assert_eq!(
        d.timeout,
        Duration::from_millis(schema_default("Delivery", "timeoutMs"))
    );
    assert_eq!(
        d.max_retry_duration,
        Duration::from_secs(schema_default("Delivery", "maxRetryDurationSeconds"))
    );
    let c = d.circuit_breaker.unwrap();
    assert_eq!(
        c.cooldown,
        Duration::from_millis(schema_default("CircuitBreaker", "cooldownMs"))
    );
    assert_eq!(
        u64::from(c.failure_threshold),
        schema_default("CircuitBreaker", "failureThreshold")
    );
    // No `delivery` at all: the same defaults.
    let cfg = client_config("client-a", "https://example.invalid/cb");
    let none = parse_client(
        "a.json",
        &serde_json::to_vec(&cfg).unwrap(),
        &Default::default(),
    )
    .map(|c| DeliverySettings::of(&c.targets[0]))
    .unwrap();
    assert_eq!(none.initial_backoff, d.initial_backoff);
    assert_eq!(none.timeout, d.timeout);
    assert_eq!(none.circuit_breaker, None);
    // The mode too: the schema's `default`, in its wire spelling.
    let text = callbacks::schema::files::get("client-config.schema.json").unwrap();
    let v: Value = serde_json::from_str(text).unwrap();
    let mode = &v["$defs"]["Delivery"]["properties"]["mode"]["default"];
    assert_eq!(&serde_json::to_value(none.mode).unwrap(), mode);
    assert_eq!(
        serde_json::to_value(d.mode).unwrap(),
        json!("api-destination")
    );
}
