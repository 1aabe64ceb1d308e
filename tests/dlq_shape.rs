//! `callbacks dlq list --json` has one shape for the SQLite store of `callbacks serve` and for an
//! https-mode client DLQ on SQS: the same failure history (two attempts, a 503 then a 400, dead
//! -lettered as a permanent failure) gives the same keys and the same values from both, except
//! the backend's own id, time of dead-lettering and source queue. (API-destination dead letters
//! share the SQS shape: `tests/aws_replay.rs`.)
#![cfg(all(feature = "aws", feature = "local"))]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use callbacks::aws::delivery::{dlq, sqs::dead_letter_attributes, AttemptRecord, DeadLetter};
use callbacks::deliver::listing;
use callbacks::deliver::{fate, Attempt, AttemptOutcome, Backoff, RetryPolicy};
use callbacks::local::store::{Accept, NewCallback, Queued, RoutingIds, Settled, Store};
use serde_json::{json, Value};

const CLIENT: &str = "client-a";
const TARGET: &str = "target-1";
const EVENT: &str = "ev-shape-1";
const MESSAGE: &str = "msg-shape-1";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const REASON: &str = "permanent failure: HTTP 400";

fn payload() -> Value {
    json!({"data": [{"type": "MessageStatus", "attributes": {"messageId": MESSAGE, "messageStatus": "delivered"}}]})
}

fn history() -> Vec<AttemptRecord> {
    vec![
        AttemptRecord {
            at: "2026-12-01T13:05:00.000Z".into(),
            outcome: "HTTP 503".into(),
            status: Some(503),
            duration_ms: 12,
        },
        AttemptRecord {
            at: "2026-12-01T13:05:02.000Z".into(),
            outcome: "HTTP 400".into(),
            status: Some(400),
            duration_ms: 3,
        },
    ]
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
        },
        budget: Duration::from_secs(3600),
    }
}

/// `dlq list --json --data-dir`, after serve's engine dead-lettered the callback with
/// `history`.
async fn from_sqlite() -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let body = serde_json::to_vec(&payload()).expect("body");
    store
        .accept(Accept {
            callbacks: vec![NewCallback {
                routing: RoutingIds {
                    client_id: CLIENT.into(),
                    target_id: TARGET.into(),
                    event_id: EVENT.into(),
                    message_id: MESSAGE.into(),
                    traceparent: Some(TRACEPARENT.into()),
                    subscription_ids: vec!["sub-1".into()],
                },
                body: Arc::from(body),
            }],
            ..Accept::default()
        })
        .await
        .expect("accept");
    let mut queued = store.load(CLIENT, TARGET, 0, 10).await.expect("load");
    assert_eq!(queued.len(), 1);
    // The failure history made by serve's engine: each attempt settled through the store's
    // queue port, a 503 (rescheduled) then a 400 (dead-lettered).
    let mut job = queued.remove(0);
    for a in history() {
        let attempt = Attempt {
            outcome: AttemptOutcome::Status {
                status: a.status.expect("status"),
                retry_after: None,
            },
            started: SystemTime::from(chrono::DateTime::parse_from_rfc3339(&a.at).expect("time")),
            duration: Duration::from_millis(a.duration_ms),
        };
        let callback = Queued { store: &store, job };
        match fate::settle(callback, &policy(), &attempt).await {
            Settled::Retried(again) => job = again,
            Settled::DeadLettered => break,
            Settled::Delivered { .. } => panic!("a failure was delivered"),
        }
    }
    store.flush().await;
    let mut out = Vec::new();
    let n = callbacks::local::dlq::list(dir.path(), None, true, &mut out).expect("list");
    assert_eq!(n, 1);
    serde_json::from_slice(&out).expect("json")
}

/// `dlq list --json --sqs-queue-url`, for the message the delivery Lambda puts on the DLQ
/// with `history`.
fn from_sqs() -> Value {
    let detail = json!({
        "clientId": CLIENT, "targetId": TARGET, "subscriptionIds": ["sub-1"],
        "signature": "00", "payload": payload(), "eventId": EVENT, "messageId": MESSAGE,
        "traceparent": TRACEPARENT,
    });
    let body = json!({"source": "uk.nhs.notify.client-callbacks", "detail-type": "ClientCallback", "detail": detail}).to_string();
    let history = history();
    let letter = DeadLetter {
        body: body.clone(),
        client_id: Some(CLIENT.into()),
        target_id: Some(TARGET.into()),
        event_id: Some(EVENT.into()),
        message_id: Some(MESSAGE.into()),
        reason: REASON.into(),
        attempts: 2,
        first_attempt_at: history.first().map(|a| a.at.clone()),
        last_outcome: history.last().map(|a| a.outcome.clone()),
        history,
    };
    let message = Message::builder()
        .message_id("0b7e5c1a-sqs")
        .receipt_handle("rh")
        .body(body)
        .set_message_attributes(Some(dead_letter_attributes(
            &letter,
            "http://sqs.local/q-https",
        )))
        .attributes(MessageSystemAttributeName::SentTimestamp, "1764594302000")
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
        .build();
    let entry = dlq::entry(&message);
    let mut out = Vec::new();
    listing::write(&mut out, [&entry.record], true).expect("write");
    serde_json::from_slice(&out).expect("json")
}

#[tokio::test]
async fn the_same_failure_history_lists_the_same_from_sqlite_and_sqs() {
    let sqlite = from_sqlite().await;
    let sqs = from_sqs();
    let (a, b) = (&sqlite[0], &sqs[0]);
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(a), keys(b), "{sqlite:#}\n{sqs:#}");
    for k in keys(a) {
        if matches!(k.as_str(), "id" | "deadAt" | "sourceQueueUrl") {
            continue;
        }
        assert_eq!(a[&k], b[&k], "{k}: {sqlite:#}\n{sqs:#}");
    }
    assert_eq!(a["lastOutcome"], "HTTP 400");
    assert_eq!(a["firstAttemptAt"], "2026-12-01T13:05:00.000Z");
    assert_eq!(a["history"][0]["outcome"], "HTTP 503");
    assert_eq!(a["payload"], payload());
    assert!(a["id"].is_string() && b["id"].is_string());
    assert_eq!(a["sourceQueueUrl"], Value::Null);
    assert_eq!(b["sourceQueueUrl"], "http://sqs.local/q-https");
    assert_eq!(b["deadAt"], "2025-12-01T13:05:02.000Z");
}
