//! The handler without the runtime, SQS or HTTP: fake ports. The options, settings and
//! message parsing are in [`options`].

mod options;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::state::LocalState;
use super::*;
use crate::aws::handler::{CacheUse, ConfigFault, ConfigLookup, ConfigSource};
use crate::config::{parse_client, ClientSettings, DeliverySettings};
use crate::deliver::{Attempt, AttemptOutcome, Request, RetryAfter};
use crate::pipeline::{self, CoreOptions};
use crate::transform::{self, Payload};

#[derive(Default)]
struct FakeQueue {
    calls: Mutex<Vec<String>>,
    letters: Mutex<Vec<DeadLetter>>,
    max_receive_count: Option<u32>,
    dlq_fails: bool,
}

impl QueueOps for FakeQueue {
    async fn info(&self, arn: &str) -> Result<QueueInfo, QueueFault> {
        Ok(QueueInfo {
            url: format!("url:{arn}"),
            dlq_url: Some("dlq".into()),
            max_receive_count: self.max_receive_count,
            retention: Some(Duration::from_secs(14_400)),
        })
    }
    async fn change_visibility(
        &self,
        _: &QueueInfo,
        receipt: &str,
        t: Duration,
    ) -> Result<(), QueueFault> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("visibility {receipt} {}", t.as_secs()));
        Ok(())
    }
    async fn delete(&self, _: &QueueInfo, receipt: &str) -> Result<(), QueueFault> {
        self.calls.lock().unwrap().push(format!("delete {receipt}"));
        Ok(())
    }
    async fn dead_letter(&self, _: &QueueInfo, letter: &DeadLetter) -> Result<(), QueueFault> {
        if self.dlq_fails {
            return Err(QueueFault("DLQ unavailable".into()));
        }
        self.letters.lock().unwrap().push(letter.clone());
        Ok(())
    }
}

/// URL, headers, body.
type SentRequest = (String, Vec<(String, String)>, Vec<u8>);

/// Answers from a script, 202 once it runs out; records the requests.
#[derive(Default)]
struct FakeSender {
    script: Mutex<Vec<AttemptOutcome>>,
    sent: Mutex<Vec<SentRequest>>,
}

impl Sender for FakeSender {
    async fn send(&self, _: &TargetKey, _: &DeliverySettings, req: Request<'_>) -> Attempt {
        self.sent.lock().unwrap().push((
            req.url.to_string(),
            req.headers.to_vec(),
            req.body.to_vec(),
        ));
        let mut script = self.script.lock().unwrap();
        let outcome = if script.is_empty() {
            AttemptOutcome::Status {
                status: 202,
                retry_after: None,
            }
        } else {
            script.remove(0)
        };
        Attempt {
            outcome,
            started: SystemTime::now(),
            duration: Duration::from_millis(3),
        }
    }
}

struct Configs(Option<Arc<ClientSettings>>, bool);

impl ConfigSource for Configs {
    async fn client(&self, client_id: &str) -> Result<ConfigLookup, ConfigFault> {
        if self.1 {
            return Err(ConfigFault {
                client_id: client_id.into(),
                reason: "S3 down".into(),
            });
        }
        Ok(ConfigLookup {
            settings: self.0.clone(),
            cache: CacheUse::Hit,
        })
    }
}

fn client(delivery: serde_json::Value) -> Arc<ClientSettings> {
    let doc = json!({
        "clientId": "c1", "applicationId": "app-1",
        "subscriptions": [{"subscriptionId": "s", "subscriptionType": "MessageStatus",
            "messageStatuses": ["DELIVERED"], "targetIds": ["t1"]}],
        "targets": [{"targetId": "t1", "type": "API", "invocationEndpoint": "https://c1.example/cb",
            "invocationMethod": "POST", "invocationRateLimit": 50,
            "apiKey": {"headerName": "X-Api-Key", "headerValue": "k-1"}, "delivery": delivery}]
    });
    Arc::new(parse_client("c1.json", doc.to_string().as_bytes(), &HashMap::new()).expect("valid"))
}

/// A queue message as the Callbacks-bus rule delivers it, and the signed body.
fn message(id: &str, receive_count: u32, client: &ClientSettings) -> (SqsMessage, Vec<u8>) {
    let event = json!({
        "specversion": "1.0", "id": format!("ev-{id}"), "source": "/test", "type": "uk.nhs.notify.message.status.PUBLISHED.v1",
        "time": "2025-11-03T09:12:44.018Z",
        "data": {"clientId": "c1", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM", "messageReference": "r",
            "messageStatus": "DELIVERED", "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
            "timestamp": "2025-11-03T09:12:44.018Z",
            "routingPlan": {"id": "a", "name": "b", "version": "c", "createdDate": "2023-11-17T14:27:51.413Z"}}
    });
    let ev = crate::event::parse_event(event.to_string().as_bytes()).expect("event");
    let opts = CoreOptions::default();
    let cb = pipeline::callbacks_for(&ev, client, &opts)
        .expect("callbacks")
        .remove(0);
    let payload = pipeline::payload_of(&ev, &opts).expect("payload");
    let detail = json!({"clientId": "c1", "targetId": "t1", "subscriptionIds": ["s"], "signature": cb.signature,
        "payload": payload_value(&payload), "eventId": cb.event_id, "messageId": cb.message_id, "traceparent": null});
    let body = json!({"version": "0", "detail-type": "ClientCallback", "source": "uk.nhs.notify.client-callbacks", "detail": detail});
    let now_ms = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let attributes = HashMap::from([
        (
            "ApproximateReceiveCount".to_string(),
            receive_count.to_string(),
        ),
        ("SentTimestamp".to_string(), now_ms.to_string()),
    ]);
    (
        SqsMessage {
            message_id: id.into(),
            receipt_handle: format!("rh-{id}"),
            body: body.to_string(),
            attributes,
            event_source_arn: "arn:aws:sqs:eu-west-2:1:q".into(),
        },
        cb.body.to_vec(),
    )
}

fn payload_value(p: &Payload) -> serde_json::Value {
    serde_json::from_slice(&transform::body(p)).expect("json")
}

type App = Delivery<FakeQueue, FakeSender, Configs, LocalState>;

fn app(queue: FakeQueue, configs: Configs, script: Vec<AttemptOutcome>) -> Arc<App> {
    Arc::new(Delivery::new(
        queue,
        FakeSender {
            script: Mutex::new(script),
            ..Default::default()
        },
        Arc::new(configs),
        LocalState::new(),
        DeliveryOptions {
            concurrency: ConcurrencyCap::Fixed(1),
        },
    ))
}

fn status(s: u16) -> AttemptOutcome {
    AttemptOutcome::Status {
        status: s,
        retry_after: None,
    }
}

#[tokio::test]
async fn sends_the_signed_bytes_with_the_serve_headers() {
    let c = client(json!({"mode": "https"}));
    let (m, signed) = message("m1", 1, &c);
    let a = app(FakeQueue::default(), Configs(Some(c), false), vec![]);
    let r = a.handle(vec![m], None).await;
    assert_eq!(
        r.fates,
        vec![("m1".into(), Fate::Delivered { status: 202 })]
    );
    assert!(r.response.batch_item_failures.is_empty());
    let sent = a.sender.sent.lock().unwrap();
    let (url, headers, body) = &sent[0];
    assert_eq!(url, "https://c1.example/cb");
    assert_eq!(*body, signed);
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["content-type", "x-api-key", "x-hmac-sha256-signature"]
    );
    assert!(crate::sign::verify(body, "app-1", "k-1", &headers[2].1));
    assert!(
        a.queue.calls.lock().unwrap().is_empty(),
        "the mapping deletes"
    );
}

#[tokio::test]
async fn retries_change_the_visibility_and_the_last_receive_dead_letters() {
    let c = client(json!({"initialBackoffMs": 2000, "maxBackoffMs": 2000}));
    let ra = AttemptOutcome::Status {
        status: 503,
        retry_after: Some(RetryAfter::Delay(Duration::from_millis(4500))),
    };
    let q = FakeQueue {
        max_receive_count: Some(3),
        ..Default::default()
    };
    let a = app(
        q,
        Configs(Some(Arc::clone(&c)), false),
        vec![status(500), ra, status(502)],
    );
    let (m1, _) = message("m1", 1, &c);
    let r = a.handle(vec![m1], None).await;
    assert_eq!(r.response.batch_item_failures.len(), 1);
    assert!(
        matches!(r.fates[0].1, Fate::Retried { after } if after <= Duration::from_secs(2) && after >= Duration::from_secs(1))
    );
    let (m2, _) = message("m1", 2, &c);
    let r = a.handle(vec![m2], None).await;
    // Retry-After 4.5 s beats the 2 s back-off, rounded up to whole seconds.
    assert_eq!(
        r.fates[0].1,
        Fate::Retried {
            after: Duration::from_secs(5)
        }
    );
    let (m3, _) = message("m1", 3, &c);
    let r = a.handle(vec![m3], None).await;
    assert!(
        matches!(&r.fates[0].1, Fate::DeadLettered { reason } if reason.contains("maxReceiveCount")),
        "{r:?}"
    );
    let letters = a.queue.letters.lock().unwrap();
    assert_eq!(letters[0].attempts, 3);
    let outcomes: Vec<&str> = letters[0]
        .history
        .iter()
        .map(|h| h.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["HTTP 500", "HTTP 503", "HTTP 502"]);
    assert_eq!(letters[0].client_id.as_deref(), Some("c1"));
    let calls = a.queue.calls.lock().unwrap();
    assert_eq!(calls.last().map(String::as_str), Some("delete rh-m1"));
}

/// Another execution environment (no shared state table) knows only this receive's attempt:
/// the earlier receives count as attempts, and this receive's attempt on top.
#[tokio::test]
async fn without_the_history_a_dead_letter_counts_the_receives_and_this_attempt() {
    let c = client(json!({}));
    let a = app(
        FakeQueue::default(),
        Configs(Some(Arc::clone(&c)), false),
        vec![status(400)],
    );
    let (m, _) = message("m1", 2, &c);
    let r = a.handle(vec![m], None).await;
    assert!(matches!(r.fates[0].1, Fate::DeadLettered { .. }), "{r:?}");
    let letters = a.queue.letters.lock().unwrap();
    assert_eq!(letters[0].history.len(), 1);
    assert_eq!(letters[0].attempts, 2);
}

#[tokio::test]
async fn nothing_is_lost_when_config_or_the_dlq_fail() {
    let c = client(json!({}));
    let (m, _) = message("m1", 1, &c);
    // Configuration unavailable: deferred, not attempted.
    let a = app(FakeQueue::default(), Configs(None, true), vec![]);
    let r = a.handle(vec![m.clone()], None).await;
    assert_eq!(
        r.fates[0].1,
        Fate::Deferred {
            after: CONFIG_FAULT_RETRY,
            why: "configuration unavailable"
        }
    );
    assert!(a.sender.sent.lock().unwrap().is_empty());
    // The client has no configuration: dead-lettered.
    let a = app(FakeQueue::default(), Configs(None, false), vec![]);
    let r = a.handle(vec![m.clone()], None).await;
    assert!(
        matches!(&r.fates[0].1, Fate::DeadLettered { reason } if reason.contains("no configuration"))
    );
    // A malformed body: dead-lettered as it was.
    let mut bad = m.clone();
    bad.body = "not json".into();
    let a = app(
        FakeQueue::default(),
        Configs(Some(Arc::clone(&c)), false),
        vec![],
    );
    let r = a.handle(vec![bad], None).await;
    assert!(matches!(r.fates[0].1, Fate::DeadLettered { .. }));
    assert_eq!(a.queue.letters.lock().unwrap()[0].body, "not json");
    // The DLQ refuses: the message stays on the queue.
    let q = FakeQueue {
        dlq_fails: true,
        ..Default::default()
    };
    let a = app(q, Configs(Some(c), false), vec![status(400)]);
    let r = a.handle(vec![m], None).await;
    assert!(matches!(r.fates[0].1, Fate::Failed { .. }));
    assert_eq!(r.response.batch_item_failures.len(), 1);
    assert!(a.queue.calls.lock().unwrap().is_empty(), "not deleted");
}

#[tokio::test]
async fn an_open_circuit_defers_without_sending() {
    let c = client(
        json!({"circuitBreaker": {"enabled": true, "failureThreshold": 1, "cooldownMs": 60000}}),
    );
    let a = app(
        FakeQueue::default(),
        Configs(Some(Arc::clone(&c)), false),
        vec![AttemptOutcome::Timeout],
    );
    let (m1, _) = message("m1", 1, &c);
    let (m2, _) = message("m2", 1, &c);
    let r = a.handle(vec![m1], None).await;
    assert!(matches!(r.fates[0].1, Fate::Retried { .. }));
    let r = a.handle(vec![m2], None).await;
    assert!(
        matches!(r.fates[0].1, Fate::Deferred { after, why: "circuit open" } if after >= Duration::from_secs(59)),
        "{r:?}"
    );
    assert_eq!(a.sender.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn no_token_is_waited_for_past_the_deadline() {
    let c = client(json!({"timeoutMs": 5000}));
    let a = app(
        FakeQueue::default(),
        Configs(Some(Arc::clone(&c)), false),
        vec![],
    );
    let (m, _) = message("m1", 1, &c);
    let r = a
        .handle(vec![m], Some(Instant::now() + Duration::from_secs(3)))
        .await;
    // A token is there: the attempt starts (the request timeout is not checked against the
    // deadline; only waiting for a token is).
    assert_eq!(r.fates[0].1, Fate::Delivered { status: 202 });
    // With the token taken, the next one has to wait 20 ms: past a deadline 3 s away minus
    // the 5 s timeout.
    let (m2, _) = message("m2", 1, &c);
    let r = a
        .handle(vec![m2], Some(Instant::now() + Duration::from_secs(3)))
        .await;
    assert!(
        matches!(
            r.fates[0].1,
            Fate::Deferred {
                why: "rate limit",
                ..
            }
        ),
        "{r:?}"
    );
}
