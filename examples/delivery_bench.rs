//! Benchmark of the delivery Lambda's handler: invocations of 10-message batches, one after the
//! other (one execution environment), against a fast HTTPS receiver on loopback (test CA, TLS
//! 1.3, keep-alive). The handler is the real one (`Delivery::handle`, the engine's HTTP sender,
//! signing, the token bucket, the per-environment circuit state); the queue is in memory (a 2xx
//! makes no SQS call: the event source mapping deletes) and the configuration is in memory (the
//! S3 cache answers from memory between TTLs).
//!
//! cargo run --release --features aws --example delivery_bench -- --invocations 500
//!
//! Options: --invocations N (default 500)  --targets N (callbacks of a batch spread over N
//!          targets of one client, default 10)  --rate R (invocationRateLimit, default 300)
//!          --cap C (the invocation's share is R/C, default 1)

#[path = "../tests/delivery_support/mod.rs"]
mod delivery_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use callbacks::aws::delivery::sender::HttpSenders;
use callbacks::aws::delivery::state::LocalState;
use callbacks::aws::delivery::{
    ConcurrencyCap, DeadLetter, Delivery, DeliveryOptions, Fate, QueueFault, QueueInfo, QueueOps,
    SqsMessage,
};
use callbacks::aws::handler::{CacheUse, ConfigFault, ConfigLookup, ConfigSource};
use callbacks::config::ClientSettings;
use callbacks::pipeline::{self, CoreOptions};

struct MemQueue;
impl QueueOps for MemQueue {
    async fn info(&self, arn: &str) -> Result<QueueInfo, QueueFault> {
        Ok(QueueInfo {
            url: arn.to_string(),
            dlq_url: Some("dlq".into()),
            max_receive_count: Some(100),
            retention: Some(Duration::from_secs(14_400)),
        })
    }
    async fn change_visibility(
        &self,
        _: &QueueInfo,
        _: &str,
        _: Duration,
    ) -> Result<(), QueueFault> {
        Ok(())
    }
    async fn delete(&self, _: &QueueInfo, _: &str) -> Result<(), QueueFault> {
        Ok(())
    }
    async fn dead_letter(&self, _: &QueueInfo, _: &DeadLetter) -> Result<(), QueueFault> {
        Ok(())
    }
}

struct MemConfigs(Arc<ClientSettings>);
impl ConfigSource for MemConfigs {
    async fn client(&self, _: &str) -> Result<ConfigLookup, ConfigFault> {
        Ok(ConfigLookup {
            settings: Some(Arc::clone(&self.0)),
            cache: CacheUse::Hit,
        })
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let invocations = arg("--invocations", 500);
    let targets = arg("--targets", 10).max(1);
    let rate = arg("--rate", 300);
    let cap = u32::try_from(arg("--cap", 1)).unwrap_or(1);

    let pki = delivery_support::Pki::new();
    let rx =
        delivery_support::start(&pki, false, |_, _| delivery_support::Reply::status(202)).await;
    let target_docs: Vec<_> = (0..targets)
        .map(|t| {
            json!({"targetId": format!("t{t}"), "type": "API", "invocationEndpoint": rx.url("/cb"),
                "invocationMethod": "POST", "invocationRateLimit": rate,
                "apiKey": {"headerName": "x-api-key", "headerValue": "bench-key"},
                "delivery": {"mode": "https"}})
        })
        .collect();
    let target_ids: Vec<String> = (0..targets).map(|t| format!("t{t}")).collect();
    let doc = json!({"clientId": "bench", "applicationId": "app-bench",
        "subscriptions": [{"subscriptionId": "s", "subscriptionType": "MessageStatus",
            "messageStatuses": ["DELIVERED"], "targetIds": target_ids}],
        "targets": target_docs});
    let client = Arc::new(
        callbacks::config::parse_client("bench.json", doc.to_string().as_bytes(), &HashMap::new())
            .expect("config"),
    );
    let app = Arc::new(Delivery::new(
        MemQueue,
        HttpSenders::new(Some(pki.ca_pem.clone()), true),
        Arc::new(MemConfigs(Arc::clone(&client))),
        LocalState::new(),
        DeliveryOptions {
            concurrency: ConcurrencyCap::Fixed(cap),
        },
    ));

    // Batches: 10 callbacks of distinct events, round robin over the targets.
    let opts = CoreOptions::default();
    let mut n = 0u64;
    let batch = |n: &mut u64| -> Vec<SqsMessage> {
        (0..10)
            .map(|i| {
                *n += 1;
                let event = json!({
                    "specversion": "1.0", "id": format!("ev-{n}"), "source": "/bench",
                    "type": "uk.nhs.notify.message.status.PUBLISHED.v1", "time": "2025-11-03T09:12:44.018Z",
                    "data": {"clientId": "bench", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM", "messageReference": "r",
                        "messageStatus": "DELIVERED", "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
                        "timestamp": "2025-11-03T09:12:44.018Z",
                        "routingPlan": {"id": "a", "name": "b", "version": "c", "createdDate": "2023-11-17T14:27:51.413Z"}}
                });
                let ev = callbacks::event::parse_event(event.to_string().as_bytes()).expect("event");
                let cbs = pipeline::callbacks_for(&ev, &client, &opts).expect("callbacks");
                let cb = &cbs[(i as usize) % cbs.len()];
                let payload: serde_json::Value = serde_json::from_slice(&cb.body).expect("json");
                let body = json!({"version": "0", "detail-type": "ClientCallback",
                    "source": "uk.nhs.notify.client-callbacks",
                    "detail": {"clientId": "bench", "targetId": cb.target_id, "subscriptionIds": ["s"],
                        "signature": cb.signature, "payload": payload, "eventId": cb.event_id,
                        "messageId": cb.message_id, "traceparent": null}});
                let sent = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                SqsMessage {
                    message_id: format!("m{n}"),
                    receipt_handle: format!("r{n}"),
                    body: body.to_string(),
                    attributes: HashMap::from([
                        ("ApproximateReceiveCount".into(), "1".into()),
                        ("SentTimestamp".into(), sent.to_string()),
                    ]),
                    event_source_arn: "arn:aws:sqs:eu-west-2:123456789012:bench-https".into(),
                }
            })
            .collect()
    };

    // The first invocation opens the connections (TLS handshakes): reported apart.
    let first = batch(&mut n);
    let t0 = Instant::now();
    let r = app.handle(first, None).await;
    let cold_ms = t0.elapsed().as_secs_f64() * 1000.0;
    assert!(
        r.fates
            .iter()
            .all(|(_, f)| matches!(f, Fate::Delivered { .. })),
        "{:?}",
        r.fates
    );

    let mut durations = Vec::new();
    let started = Instant::now();
    let mut delivered = 0usize;
    for _ in 0..invocations {
        let b = batch(&mut n);
        let t = Instant::now();
        let r = app.handle(b, None).await;
        durations.push(t.elapsed().as_secs_f64() * 1000.0);
        delivered += r
            .fates
            .iter()
            .filter(|(_, f)| matches!(f, Fate::Delivered { .. }))
            .count();
    }
    let total = started.elapsed().as_secs_f64();
    durations.sort_by(|a, b| a.total_cmp(b));
    println!(
        "targets={targets} rate={rate}/s cap={cap} invocations={invocations} delivered={delivered}/{} \
         callbacks/s={:.0} invocation p50={:.2}ms p99={:.2}ms max={:.2}ms first(cold TLS)={cold_ms:.2}ms receiver saw {}",
        invocations * 10,
        delivered as f64 / total,
        percentile(&durations, 0.5),
        percentile(&durations, 0.99),
        durations.last().copied().unwrap_or(0.0),
        rx.requests().len()
    );
}
