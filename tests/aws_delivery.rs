#![cfg(feature = "aws")]
//! The delivery Lambda's handler against a moto server (SQS, S3, DynamoDB; started by the test
//! on loopback) and a real HTTPS receiver on loopback (test CA; mTLS case). The event source
//! mapping is simulated: receive up to 10 messages, call the handler, delete what it did not
//! report as failed.

mod aws_support;
mod delivery_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{json, Value};

use aws_support::*;
use callbacks::aws::delivery::dlq;
use callbacks::aws::delivery::sender::HttpSenders;
use callbacks::aws::delivery::sqs::{attr, SqsQueue};
use callbacks::aws::delivery::state::{DynamoState, LocalState};
use callbacks::aws::delivery::{
    AttemptRecord, BatchResult, ConcurrencyCap, Delivery, DeliveryOptions, DeliveryState, Fate,
    SqsMessage,
};
use callbacks::aws::handler::{self, RejectFault, RejectSink, RejectedRecord};
use callbacks::aws::s3_config::S3ConfigSource;
use callbacks::pipeline::CoreOptions;
use delivery_support::{Pki, Receiver, Reply};

const CLIENT: &str = "client-h";
const APP: &str = "app-client-h";
const KEY: &str = "key-client-h-secret";

struct NoRejects;
impl RejectSink for NoRejects {
    async fn send(&self, rejects: &[RejectedRecord]) -> Result<(), RejectFault> {
        panic!("unexpected rejects: {rejects:?}");
    }
}

type Env = DeliveryEnv;

fn config(endpoint: &str, delivery: Value, key: &str) -> Value {
    https_client_config(CLIENT, APP, key, endpoint, delivery)
}

async fn env(endpoint: &str, delivery: Value) -> Env {
    let config = config(endpoint, delivery, KEY);
    DeliveryEnv::new(CLIENT, &config, "client-h-https", 100, 30).await
}

type App<D> = Delivery<SqsQueue, HttpSenders, S3ConfigSource, D>;

async fn make_app<D: DeliveryState>(env: &Env, pki: &Pki, state: D, cap: u32) -> Arc<App<D>> {
    let queue = SqsQueue::new(env.sqs.clone(), Some(moto().endpoint.clone()));
    Arc::new(Delivery::new(
        queue,
        HttpSenders::new(Some(pki.ca_pem.clone()), true),
        Arc::clone(&env.configs),
        state,
        DeliveryOptions {
            concurrency: ConcurrencyCap::Fixed(cap),
        },
    ))
}

/// The Callbacks-bus event for one CloudEvent, made by the transform-filter handler, wrapped
/// in the EventBridge envelope the rule puts on the queue. With `sorted`, the detail's keys are
/// re-ordered (as a JSON processor on the way might do): the delivery must not depend on it.
async fn bus_message(env: &Env, event_id: &str, sorted: bool) -> (String, Value) {
    let event = message_event(event_id, CLIENT, "DELIVERED");
    let out = handler::handle(
        vec![handler::SqsRecord::new("m", event.to_string())],
        &env.configs,
        &NoRejects,
        &CoreOptions::default(),
    )
    .await
    .expect("transform");
    let detail = out.output.into_iter().next().expect("one callback");
    let detail_text = if sorted {
        serde_json::to_value(&detail).expect("value").to_string()
    } else {
        serde_json::to_string(&detail).expect("json")
    };
    let body = format!(
        r#"{{"version":"0","id":"{event_id}-bus","detail-type":"ClientCallback","source":"uk.nhs.notify.client-callbacks","account":"123456789012","time":"2025-11-03T09:12:44Z","region":"eu-west-2","resources":[],"detail":{detail_text}}}"#
    );
    let detail_value = serde_json::to_value(&detail).expect("value");
    (body, detail_value)
}

async fn send(env: &Env, body: &str) {
    env.sqs
        .send_message()
        .queue_url(&env.queue_url)
        .message_body(body)
        .send()
        .await
        .expect("send");
}

/// The event source mapping: receive (up to `want` messages), invoke, delete the successes.
async fn poll<D: DeliveryState>(env: &Env, app: &Arc<App<D>>, want: usize) -> BatchResult {
    let mut records: Vec<SqsMessage> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while records.len() < want && Instant::now() < deadline {
        let got = env
            .sqs
            .receive_message()
            .queue_url(&env.queue_url)
            .max_number_of_messages(i32::try_from(want - records.len()).unwrap_or(10).min(10))
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        for m in got.messages() {
            records.push(SqsMessage {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                attributes: m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                event_source_arn: env.queue_arn.clone(),
            });
        }
        if got.messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(records.len(), want, "messages on the queue");
    let receipts: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.message_id.clone(), r.receipt_handle.clone()))
        .collect();
    let result = app
        .handle(records, Some(Instant::now() + Duration::from_secs(30)))
        .await;
    let failed: HashSet<&str> = result
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for (id, receipt) in receipts {
        if !failed.contains(id.as_str()) {
            let _ = env
                .sqs
                .delete_message()
                .queue_url(&env.queue_url)
                .receipt_handle(receipt)
                .send()
                .await;
        }
    }
    result
}

async fn visible(env: &Env, url: &str) -> usize {
    visible_messages(&env.sqs, url).await
}

async fn receiver(pki: &Pki, replies: Vec<Reply>) -> Receiver {
    delivery_support::start(pki, false, move |i, _| {
        replies
            .get(i)
            .cloned()
            .unwrap_or_else(|| Reply::status(202))
    })
    .await
}

#[tokio::test]
async fn delivers_the_signed_bytes_over_https_whatever_the_key_order_on_the_way() {
    let pki = Pki::new();
    let rx = receiver(&pki, vec![]).await;
    let env = env(&rx.url("/callbacks"), json!({"mode": "https"})).await;
    let app = make_app(&env, &pki, LocalState::new(), 1).await;
    let (ordered, detail) = bus_message(&env, "ev-ordered-1", false).await;
    let (sorted, _) = bus_message(&env, "ev-sorted-1", true).await;
    send(&env, &ordered).await;
    send(&env, &sorted).await;

    let result = poll(&env, &app, 2).await;
    assert!(result.response.batch_item_failures.is_empty(), "{result:?}");
    assert!(result
        .fates
        .iter()
        .all(|(_, f)| *f == Fate::Delivered { status: 202 }));
    assert_eq!(result.metrics[CLIENT].delivered, 2);
    assert_eq!(result.metrics[CLIENT].signature_recomputed, 0);

    let got = rx.requests();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.path, "/callbacks");
        assert_eq!(r.header("content-type"), Some("application/vnd.api+json"));
        assert_eq!(r.header("x-api-key"), Some(KEY));
        let sig = r.header("x-hmac-sha256-signature").expect("signature");
        assert!(callbacks::sign::verify(&r.body, APP, KEY, sig));
    }
    // The bytes sent are the bytes the transform-filter Lambda signed.
    let ordered_req = got
        .iter()
        .find(|r| r.header("x-hmac-sha256-signature") == detail["signature"].as_str())
        .expect("the ordered event's request carries detail.signature");
    let payload_text = ordered
        .split_once(r#""payload":"#)
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once(r#","eventId""#))
        .map(|(p, _)| p)
        .expect("payload in the body");
    assert_eq!(String::from_utf8_lossy(&ordered_req.body), payload_text);
    assert!(String::from_utf8_lossy(&ordered_req.body).contains("réf/ü–\\\"x\\\""));
    assert_eq!(visible(&env, &env.queue_url).await, 0);
}

#[tokio::test]
async fn a_rotated_api_key_is_sent_with_a_signature_of_the_same_key() {
    let pki = Pki::new();
    let rx = receiver(&pki, vec![]).await;
    let env = env(&rx.url("/cb"), json!({"mode": "https"})).await;
    let app = make_app(&env, &pki, LocalState::new(), 1).await;
    let (body, detail) = bus_message(&env, "ev-rotate-1", false).await;
    put_object(
        &env.s3,
        &env.bucket,
        &format!("clients/{CLIENT}.json"),
        config(&rx.url("/cb"), json!({"mode": "https"}), "new-key").to_string(),
    )
    .await;
    send(&env, &body).await;
    let result = poll(&env, &app, 1).await;
    assert_eq!(result.metrics[CLIENT].signature_recomputed, 1);
    let r = &rx.requests()[0];
    let sig = r.header("x-hmac-sha256-signature").expect("sig");
    assert_ne!(Some(sig), detail["signature"].as_str());
    assert_eq!(r.header("x-api-key"), Some("new-key"));
    assert!(callbacks::sign::verify(&r.body, APP, "new-key", sig));
}

#[tokio::test]
async fn a_retryable_failure_changes_the_visibility_and_is_retried() {
    let pki = Pki::new();
    let rx = receiver(&pki, vec![Reply::status(503)]).await;
    let env = env(&rx.url("/cb"), fast_retries()).await;
    let app = make_app(&env, &pki, LocalState::new(), 1).await;
    let (body, _) = bus_message(&env, "ev-retry-1", false).await;
    send(&env, &body).await;

    let first = poll(&env, &app, 1).await;
    assert_eq!(first.response.batch_item_failures.len(), 1);
    assert_eq!(
        first.fates[0].1,
        Fate::Retried {
            after: Duration::from_secs(1)
        }
    );
    // Invisible for the back-off (not the queue's 30 s), then back.
    assert_eq!(visible(&env, &env.queue_url).await, 0);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = poll(&env, &app, 1).await;
    assert_eq!(second.fates[0].1, Fate::Delivered { status: 202 });
    assert!(second.response.batch_item_failures.is_empty());
    assert_eq!(rx.requests().len(), 2);
    assert_eq!(visible(&env, &env.queue_url).await, 0);
    assert_eq!(visible(&env, &env.dlq_url).await, 0);
}

#[tokio::test]
async fn retry_after_longer_than_the_backoff_is_honoured() {
    let pki = Pki::new();
    let rx = receiver(&pki, vec![Reply::retry_after(429, "3")]).await;
    let env = env(&rx.url("/cb"), fast_retries()).await;
    let app = make_app(&env, &pki, LocalState::new(), 1).await;
    let (body, _) = bus_message(&env, "ev-ra-1", false).await;
    send(&env, &body).await;
    let first = poll(&env, &app, 1).await;
    assert_eq!(
        first.fates[0].1,
        Fate::Retried {
            after: Duration::from_secs(3)
        }
    );
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(
        visible(&env, &env.queue_url).await,
        0,
        "still waiting for Retry-After"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = poll(&env, &app, 1).await;
    assert_eq!(second.fates[0].1, Fate::Delivered { status: 202 });
    let got = rx.requests();
    assert!(got[1].at.duration_since(got[0].at) >= Duration::from_secs(3));
}

async fn dead_letters(env: &Env) -> Vec<dlq::SqsDlqEntry> {
    dlq::list(&env.sqs, &env.dlq_url, None).await.expect("list")
}

#[tokio::test]
async fn a_negative_retry_after_dead_letters_at_once() {
    let pki = Pki::new();
    let rx = receiver(&pki, vec![Reply::retry_after(429, "-1")]).await;
    let env = env(&rx.url("/cb"), fast_retries()).await;
    let app = make_app(&env, &pki, LocalState::new(), 1).await;
    let (body, detail) = bus_message(&env, "ev-stop-1", false).await;
    send(&env, &body).await;
    let result = poll(&env, &app, 1).await;
    assert!(
        matches!(&result.fates[0].1, Fate::DeadLettered { reason } if reason.contains("negative Retry-After")),
        "{result:?}"
    );
    assert!(result.response.batch_item_failures.is_empty());
    assert_eq!(visible(&env, &env.queue_url).await, 0);
    let letters = dead_letters(&env).await;
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert_eq!(l.routing.client_id, CLIENT);
    assert_eq!(l.routing.target_id, "target-1");
    assert_eq!(l.routing.event_id, "ev-stop-1");
    assert_eq!(
        l.routing.message_id,
        detail["messageId"].as_str().unwrap_or_default()
    );
    assert_eq!(l.attempts, 1);
    assert_eq!(l.last_outcome, "HTTP 429");
    assert_eq!(rx.requests().len(), 1);
}

async fn dynamo_state() -> DynamoState {
    let db = aws_sdk_dynamodb::Client::new(&sdk_config(&moto().endpoint).await);
    let table = state_table(&db, "delivery-state").await;
    DynamoState::new(db, table)
}

#[tokio::test]
async fn a_permanent_4xx_dead_letters_with_the_attempt_history_and_replay_delivers() {
    let pki = Pki::new();
    let rx = receiver(
        &pki,
        vec![Reply::status(503), Reply::status(500), Reply::status(400)],
    )
    .await;
    let env = env(&rx.url("/cb"), fast_retries()).await;
    // Shared state in DynamoDB: each receive could run in another execution environment.
    let state = dynamo_state().await;
    let app = make_app(&env, &pki, state.clone(), 1).await;
    let (body, _) = bus_message(&env, "ev-perm-1", false).await;
    send(&env, &body).await;
    for _ in 0..2 {
        let r = poll(&env, &app, 1).await;
        assert!(matches!(r.fates[0].1, Fate::Retried { .. }), "{r:?}");
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let app2 = make_app(&env, &pki, state, 1).await; // another execution environment
    let last = poll(&env, &app2, 1).await;
    assert!(
        matches!(&last.fates[0].1, Fate::DeadLettered { reason } if reason == "permanent failure: HTTP 400"),
        "{last:?}"
    );
    assert_eq!(visible(&env, &env.queue_url).await, 0);

    // The history travels as message attributes.
    let raw = env
        .sqs
        .receive_message()
        .queue_url(&env.dlq_url)
        .message_attribute_names("All")
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive");
    let m = &raw.messages()[0];
    let a = m.message_attributes().expect("attributes");
    assert_eq!(a[attr::ATTEMPTS].string_value(), Some("3"));
    assert_eq!(
        a[attr::REASON].string_value(),
        Some("permanent failure: HTTP 400")
    );
    assert!(a[attr::SOURCE_QUEUE_URL].string_value().is_some());
    let history: Vec<AttemptRecord> =
        serde_json::from_str(a[attr::ATTEMPT_HISTORY].string_value().expect("history"))
            .expect("json");
    let statuses: Vec<Option<u16>> = history.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [Some(503), Some(500), Some(400)]);
    assert_eq!(m.body(), Some(body.as_str()), "the body is kept as it was");
    let text = format!("{:?}", m.message_attributes());
    assert!(!text.contains(KEY), "no API key in a dead letter");

    // dlq list, then replay: back on the client's queue, delivered.
    let letters = dead_letters(&env).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].history.len(), 3);
    assert_eq!(letters[0].last_outcome, "HTTP 400");
    let n = dlq::replay(&env.sqs, &env.dlq_url, Some(CLIENT), None, None)
        .await
        .expect("replay");
    assert_eq!(n, 1);
    assert_eq!(visible(&env, &env.dlq_url).await, 0);
    let replayed = poll(&env, &app2, 1).await;
    assert_eq!(replayed.fates[0].1, Fate::Delivered { status: 202 });
    assert_eq!(rx.requests().len(), 4);
}

#[tokio::test]
async fn a_spent_retry_budget_dead_letters() {
    let pki = Pki::new();
    let rx = receiver(&pki, vec![Reply::status(500)]).await;
    let mut d = fast_retries();
    d["maxRetryDurationSeconds"] = json!(0);
    let env = env(&rx.url("/cb"), d).await;
    let app = make_app(&env, &pki, LocalState::new(), 1).await;
    let (body, _) = bus_message(&env, "ev-budget-1", false).await;
    send(&env, &body).await;
    let r = poll(&env, &app, 1).await;
    assert!(
        matches!(&r.fates[0].1, Fate::DeadLettered { reason } if reason.contains("retry budget exhausted")),
        "{r:?}"
    );
    assert_eq!(dead_letters(&env).await.len(), 1);
}

#[tokio::test]
async fn mtls_presents_the_client_certificate() {
    let pki = Pki::new();
    let rx = delivery_support::start(&pki, true, |_, _| Reply::status(202)).await;
    let mtls = json!({"mode": "https", "initialBackoffMs": 1000, "maxBackoffMs": 1000,
        "mtls": {"certPemFile": pki.client_cert_pem.to_str(), "keyPemFile": pki.client_key_pem.to_str(),
                 "caPemFile": pki.ca_pem.to_str()}});
    let env = env(&rx.url("/cb"), mtls).await;
    let app = make_app(&env, &pki, LocalState::new(), 1).await;
    let (body, _) = bus_message(&env, "ev-mtls-1", false).await;
    send(&env, &body).await;
    let r = poll(&env, &app, 1).await;
    assert_eq!(r.fates[0].1, Fate::Delivered { status: 202 }, "{r:?}");
    assert_eq!(rx.requests().len(), 1);

    // Without a client certificate the handshake fails: retryable, nothing reaches the receiver.
    put_object(
        &env.s3,
        &env.bucket,
        &format!("clients/{CLIENT}.json"),
        config(&rx.url("/cb"), fast_retries(), KEY).to_string(),
    )
    .await;
    let (body, _) = bus_message(&env, "ev-mtls-2", false).await;
    send(&env, &body).await;
    let r = poll(&env, &app, 1).await;
    assert!(matches!(r.fates[0].1, Fate::Retried { .. }), "{r:?}");
    assert_eq!(rx.requests().len(), 1);
}

#[tokio::test]
async fn the_rate_limit_share_spaces_requests() {
    let pki = Pki::new();
    let rx = receiver(&pki, vec![]).await;
    // 100/s shared by 20 invocations: 5/s for this one.
    let env = env(&rx.url("/cb"), json!({"mode": "https"})).await;
    let app = make_app(&env, &pki, LocalState::new(), 20).await;
    // Warm-up: the TLS connection is made before the measured requests, so the first one's
    // arrival is not delayed by a handshake the others do not pay.
    let (body, _) = bus_message(&env, "ev-rate-warm-up", false).await;
    send(&env, &body).await;
    poll(&env, &app, 1).await;
    rx.received.lock().expect("lock").clear();
    for i in 0..6 {
        let (body, _) = bus_message(&env, &format!("ev-rate-{i}"), false).await;
        send(&env, &body).await;
    }
    let r = poll(&env, &app, 6).await;
    assert!(r.response.batch_item_failures.is_empty());
    let mut at: Vec<Instant> = rx.requests().iter().map(|r| r.at).collect();
    at.sort();
    assert_eq!(at.len(), 6);
    let span = at[5].duration_since(at[0]);
    assert!(
        span >= Duration::from_millis(950),
        "6 requests at 5/s took {span:?}"
    );
}

#[tokio::test]
async fn a_crash_mid_batch_loses_nothing() {
    let pki = Pki::new();
    // The receiver hangs on every request after the first three: the "Lambda" is killed then.
    let rx = delivery_support::start(&pki, false, |i, _| Reply {
        delay: if i >= 3 {
            Duration::from_secs(60)
        } else {
            Duration::ZERO
        },
        ..Reply::status(202)
    })
    .await;
    let env = env(&rx.url("/cb"), json!({"mode": "https"})).await;
    let app = make_app(&env, &pki, LocalState::new(), 1).await;
    let mut keys = HashSet::new();
    for i in 0..10 {
        let (body, detail) = bus_message(&env, &format!("ev-crash-{i}"), false).await;
        keys.insert(
            detail["payload"]["data"][0]["meta"]["idempotencyKey"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        send(&env, &body).await;
    }
    // Receive the batch with a short visibility timeout and kill the invocation mid-way.
    let got = env
        .sqs
        .receive_message()
        .queue_url(&env.queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(2)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive");
    let records: Vec<SqsMessage> = got
        .messages()
        .iter()
        .map(|m| SqsMessage {
            message_id: m.message_id().unwrap_or_default().to_string(),
            receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
            body: m.body().unwrap_or_default().to_string(),
            attributes: Default::default(),
            event_source_arn: env.queue_arn.clone(),
        })
        .collect();
    let n = records.len();
    let app2 = Arc::clone(&app);
    let invocation = tokio::spawn(async move { app2.handle(records, None).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    invocation.abort();
    assert!(invocation.await.is_err(), "killed");
    assert!(rx.requests().len() >= 3);

    // Nothing was deleted: after the visibility timeout every message is back; the next
    // invocation delivers them all (the first three a second time: at least once).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(rx);
    let rx2 = receiver(&pki, vec![]).await;
    put_object(
        &env.s3,
        &env.bucket,
        &format!("clients/{CLIENT}.json"),
        config(&rx2.url("/cb"), json!({"mode": "https"}), KEY).to_string(),
    )
    .await;
    let mut remaining = 10;
    while remaining > 0 {
        let want = remaining.min(10);
        let r = poll(&env, &app, want).await;
        assert!(r.response.batch_item_failures.is_empty(), "{r:?}");
        remaining -= want;
    }
    let seen: HashSet<String> = rx2.requests().iter().map(|r| r.idempotency_key()).collect();
    assert_eq!(
        seen, keys,
        "every callback delivered after the crash ({n} were in flight)"
    );
    assert_eq!(visible(&env, &env.queue_url).await, 0);
}
