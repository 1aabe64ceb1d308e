#![cfg(feature = "aws")]
//! The enrichment handler without the Lambda runtime, S3 or SQS: in-memory configuration and
//! reject sink.

mod aws_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use aws_support::*;
use callbacks::aws::handler::{
    self, CacheUse, ConfigFault, ConfigLookup, ConfigSource, HandlerError, RejectFault, RejectSink,
    RejectedRecord, SqsRecord,
};
use callbacks::config::{parse_client, ClientSettings};
use callbacks::pipeline::CoreOptions;
use callbacks::sign;

#[derive(Default)]
struct MemConfigs {
    clients: HashMap<String, Arc<ClientSettings>>,
    fail: bool,
}

impl MemConfigs {
    fn with(clients: &[&str]) -> Arc<Self> {
        let mut m = MemConfigs::default();
        for c in clients {
            let doc = client_config(c).to_string();
            let s = parse_client(c, doc.as_bytes(), &HashMap::new()).expect("valid config");
            m.clients.insert(c.to_string(), Arc::new(s));
        }
        Arc::new(m)
    }
}

impl ConfigSource for MemConfigs {
    async fn client(&self, client_id: &str) -> Result<ConfigLookup, ConfigFault> {
        if self.fail {
            return Err(ConfigFault {
                client_id: client_id.into(),
                reason: "S3 unreachable".into(),
            });
        }
        Ok(ConfigLookup {
            settings: self.clients.get(client_id).cloned(),
            cache: CacheUse::Hit,
        })
    }
}

#[derive(Default)]
struct MemRejects {
    got: Mutex<Vec<RejectedRecord>>,
    fail: bool,
}

impl RejectSink for MemRejects {
    async fn send(&self, rejects: &[RejectedRecord]) -> Result<(), RejectFault> {
        if self.fail {
            return Err(RejectFault("queue unavailable".into()));
        }
        self.got.lock().expect("lock").extend_from_slice(rejects);
        Ok(())
    }
}

fn records(batch: Value) -> Vec<SqsRecord> {
    serde_json::from_value(batch).expect("records deserialize")
}

/// The output as the Lambda runtime puts it on the wire (serde_json, compact).
fn wire(output: &[handler::CallbackDetail]) -> Vec<u8> {
    serde_json::to_vec(output).expect("serializes")
}

#[tokio::test]
async fn mixed_batch_yields_callbacks_in_order_and_rejects_the_bad_events_with_reasons() {
    let configs = MemConfigs::with(&["client-a", "client-b"]);
    let rejects = MemRejects::default();
    let batch = json!([
        sqs_record("m1", &message_event("e1", "client-a", "DELIVERED").to_string()),
        sqs_record("m2", &eventbridge_envelope(&channel_event("e2", "client-b", "DELIVERED", "read")).to_string()),
        sqs_record("m3", "{not json"),
        sqs_record("m4", &json!({"specversion": "1.0", "id": "e4", "type": "nope"}).to_string()),
        {"messageId": "m5", "body": message_event("e5", "client-b", "FAILED")},
        sqs_record("m6", &message_event("e6", "client-a", "SENDING").to_string()),
        sqs_record("m7", &message_event("e7", "client-unknown", "DELIVERED").to_string()),
        "not a record",
        sqs_record("m9", &{ let mut e = message_event("e9", "client-a", "DELIVERED"); e["data"]["messageStatus"] = json!("BOGUS"); e }.to_string()),
    ]);
    let out = handler::handle(records(batch), &configs, &rejects, &CoreOptions::default())
        .await
        .expect("batch ok");

    let summary: Vec<(String, String, String)> = out
        .output
        .iter()
        .map(|d| (d.event_id.clone(), d.client_id.clone(), d.target_id.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("e1".into(), "client-a".into(), "target-1".into()),
            ("e1".into(), "client-a".into(), "target-2".into()),
            ("e2".into(), "client-b".into(), "target-1".into()),
            ("e5".into(), "client-b".into(), "target-1".into()),
            ("e5".into(), "client-b".into(), "target-2".into()),
        ]
    );
    let m = &out.metrics;
    assert_eq!(
        (m.events_in, m.rejected, m.filtered_out, m.callbacks_out),
        (9, 4, 2, 5)
    );
    assert_eq!((m.config_cache_hits, m.config_cache_misses), (3, 0));

    let got = rejects.got.lock().expect("lock").clone();
    let by_sqs: HashMap<Option<String>, &RejectedRecord> =
        got.iter().map(|r| (r.sqs_message_id.clone(), r)).collect();
    assert!(
        by_sqs[&Some("m3".into())]
            .reason
            .starts_with("not valid JSON"),
        "{:?}",
        by_sqs[&Some("m3".into())]
    );
    assert_eq!(by_sqs[&Some("m3".into())].body, "{not json");
    let m4 = by_sqs[&Some("m4".into())];
    assert_eq!(m4.event_id.as_deref(), Some("e4"));
    assert!(!m4.fields.is_empty());
    let m9 = by_sqs[&Some("m9".into())];
    assert_eq!(m9.event_id.as_deref(), Some("e9"));
    assert_eq!(
        m9.message_id.as_deref(),
        Some(message_id_for("e9").as_str())
    );
    assert!(
        m9.fields
            .iter()
            .any(|f| f.pointer.contains("messageStatus")),
        "{:?}",
        m9.fields
    );
    assert!(by_sqs[&None].reason.contains("not a JSON object"));

    // No API key anywhere in the output.
    let text = String::from_utf8(wire(&out.output)).expect("utf8");
    assert!(
        !text.contains("key-client-"),
        "API key leaked into the output"
    );
}

#[tokio::test]
async fn detail_has_the_contract_shape_and_the_payload_reserializes_to_the_signed_bytes() {
    let configs = MemConfigs::with(&["client-a"]);
    let rejects = MemRejects::default();
    let batch = json!([
        sqs_record(
            "m1",
            &message_event("e1", "client-a", "DELIVERED").to_string()
        ),
        sqs_record(
            "m2",
            &channel_event("e2", "client-a", "DELIVERED", "READ").to_string()
        ),
    ]);
    let out = handler::handle(records(batch), &configs, &rejects, &CoreOptions::default())
        .await
        .expect("ok");
    assert_eq!(out.output.len(), 3);

    // Parse the wire output keeping key order, as EventBridge does.
    let wire = wire(&out.output);
    let parsed: aws_support::Ordered = serde_json::from_slice(&wire).expect("parse");
    for (detail, cb) in parsed.as_array().expect("array").iter().zip(&out.output) {
        assert_eq!(
            detail.keys(),
            [
                "clientId",
                "targetId",
                "subscriptionIds",
                "signature",
                "payload",
                "eventId",
                "messageId",
                "traceparent"
            ]
        );
        let payload = detail.get("payload").expect("payload");
        // InputPath = $.detail.payload: EventBridge re-serializes the subtree compactly.
        let bytes = payload.to_compact();
        let signature = detail
            .get("signature")
            .and_then(|s| s.as_str())
            .expect("signature");
        let client = detail
            .get("clientId")
            .and_then(|s| s.as_str())
            .expect("clientId");
        let target = detail
            .get("targetId")
            .and_then(|s| s.as_str())
            .expect("targetId");
        assert!(
            sign::verify(
                &bytes,
                &application_id(client),
                &api_key(client, target),
                signature
            ),
            "signature verifies over the re-serialized payload"
        );
        // And those bytes are the contract's body: compact JSON, keys in contract order.
        assert_eq!(payload.keys(), ["data"]);
        let item = &payload
            .get("data")
            .and_then(|d| d.as_array())
            .expect("data")[0];
        assert_eq!(item.keys(), ["type", "attributes", "links", "meta"]);
        assert_eq!(cb.payload.body().as_bytes(), bytes);
    }
    let first = out.output[0].payload.body();
    assert!(
        first.contains(r#""messageReference":"réf/ü–\"x\"""#),
        "UTF-8 kept, `/` not escaped: {first}"
    );
    assert_eq!(
        out.output[0].traceparent.as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(out.output[0].message_id, message_id_for("e1"));
    assert_eq!(out.output[0].subscription_ids, ["sub-msg"]);
    let third: Value =
        serde_json::from_slice(&serde_json::to_vec(&out.output[2]).expect("ser")).expect("de");
    assert_eq!(
        third["traceparent"],
        Value::Null,
        "traceparent is null when the event has none"
    );
    assert_eq!(third["subscriptionIds"], json!(["sub-chan"]));
}

#[tokio::test]
async fn infrastructure_faults_fail_the_invocation() {
    let batch = || {
        records(json!([
            sqs_record(
                "m1",
                &message_event("e1", "client-a", "DELIVERED").to_string()
            ),
            sqs_record("m2", "garbage"),
        ]))
    };
    let failing_configs = Arc::new(MemConfigs {
        fail: true,
        ..Default::default()
    });
    let err = handler::handle(
        batch(),
        &failing_configs,
        &MemRejects::default(),
        &CoreOptions::default(),
    )
    .await
    .expect_err("config fault");
    assert!(matches!(err, HandlerError::Config(_)), "{err}");

    let failing_rejects = MemRejects {
        fail: true,
        ..Default::default()
    };
    let err = handler::handle(
        batch(),
        &MemConfigs::with(&["client-a"]),
        &failing_rejects,
        &CoreOptions::default(),
    )
    .await
    .expect_err("reject fault");
    assert!(matches!(err, HandlerError::Rejects(_)), "{err}");

    // A batch with no bad event does not need the reject queue.
    let ok = handler::handle(
        records(json!([sqs_record(
            "m1",
            &message_event("e1", "client-a", "DELIVERED").to_string()
        )])),
        &MemConfigs::with(&["client-a"]),
        &failing_rejects,
        &CoreOptions::default(),
    )
    .await
    .expect("no rejects to send");
    assert_eq!(ok.output.len(), 2);
}

#[tokio::test]
async fn ten_thousand_records_in_one_batch() {
    let configs = MemConfigs::with(&["client-a", "client-b"]);
    let rejects = MemRejects::default();
    let batch: Vec<Value> = (0..10_000)
        .map(|i| {
            let client = if i % 2 == 0 { "client-a" } else { "client-b" };
            let status = if i % 3 == 0 { "SENDING" } else { "DELIVERED" };
            sqs_record(
                &format!("m{i}"),
                &message_event(&format!("e{i}"), client, status).to_string(),
            )
        })
        .collect();
    let out = handler::handle(
        records(Value::Array(batch)),
        &configs,
        &rejects,
        &CoreOptions::default(),
    )
    .await
    .expect("ok");
    let m = &out.metrics;
    assert_eq!(m.events_in, 10_000);
    assert_eq!(m.filtered_out, 3_334);
    assert_eq!(m.callbacks_out, 2 * 6_666);
    assert_eq!(out.output.len(), 2 * 6_666);
    assert_eq!(m.rejected, 0);
}
