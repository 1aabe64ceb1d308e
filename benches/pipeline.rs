//! Core throughput: validation alone, and validate → filter → transform → sign for a realistic
//! mix (10 clients, 1–3 subscriptions each), against a floor of plain serde_json parse +
//! serialize of the same events. Run: `cargo bench --bench pipeline`.
//!
//! `typical_event_from_bytes` is the accept fast path (borrowed `Tree`); `..._via_value` is the
//! reference path through `serde_json::Value` that explains rejections.

#[global_allocator]
static GLOBAL: callbacks::alloc::Mimalloc = callbacks::alloc::Mimalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Value};

use callbacks::config::{parse_client, ConfigSet};
use callbacks::pipeline::{process, CoreOptions, Outcome};
use callbacks::schema::Schemas;

const MESSAGE_STATUSES: [&str; 6] = [
    "CREATED",
    "PENDING_ENRICHMENT",
    "ENRICHED",
    "SENDING",
    "DELIVERED",
    "FAILED",
];
const CHANNEL_STATUSES: [&str; 5] = ["CREATED", "SENDING", "DELIVERED", "FAILED", "SKIPPED"];
const SUPPLIER_STATUSES: [&str; 5] = [
    "received",
    "notified",
    "read",
    "delivered",
    "permanent_failure",
];
const CHANNELS: [&str; 4] = ["NHSAPP", "EMAIL", "SMS", "LETTER"];

fn configs() -> ConfigSet {
    let mut set = ConfigSet::default();
    for c in 0..10 {
        let subs = (0..=(c % 3))
            .map(|s| {
                if s % 2 == 0 {
                    json!({"subscriptionId": format!("s{s}"), "subscriptionType": "MessageStatus",
                        "messageStatuses": ["DELIVERED", "FAILED", "SENDING"], "targetIds": [format!("t{}", s % 2)]})
                } else {
                    json!({"subscriptionId": format!("s{s}"), "subscriptionType": "ChannelStatus", "channelType": CHANNELS[c % 4],
                        "channelStatuses": ["DELIVERED", "FAILED"], "supplierStatuses": ["read", "permanent_failure"],
                        "targetIds": [format!("t{}", s % 2)]})
                }
            })
            .collect::<Vec<_>>();
        let doc = json!({
            "clientId": format!("client-{c}"), "applicationId": format!("app-{c}"), "subscriptions": subs,
            "targets": (0..2).map(|t| json!({"targetId": format!("t{t}"), "type": "API",
                "invocationEndpoint": format!("https://client-{c}.example/cb/{t}"), "invocationMethod": "POST",
                "invocationRateLimit": 50, "apiKey": {"headerName": "x-api-key", "headerValue": format!("key-{c}-{t}")}})).collect::<Vec<_>>()
        });
        set.insert(
            parse_client("bench", doc.to_string().as_bytes(), &Default::default())
                .expect("valid config"),
        );
    }
    set
}

/// A deterministic mix: 60 % message status, 40 % channel status, across 10 clients.
pub fn events(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let client = format!("client-{}", i % 10);
            let v: Value = if i % 5 < 3 {
                json!({"specversion": "1.0", "id": format!("9b1a0c9e-0000-4000-8000-{i:012}"),
                    "source": "/data-plane/client-callbacks/nhs-notify-prod/core",
                    "type": "uk.nhs.notify.message.status.PUBLISHED.v1", "time": "2025-11-03T09:12:44.018Z",
                    "datacontenttype": "application/json",
                    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                    "data": {"clientId": client, "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
                        "messageReference": "1642109b-69eb-447f-8f97-ab70a74f5db4",
                        "messageStatus": MESSAGE_STATUSES[i % 6], "previousMessageStatus": "ENRICHED",
                        "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}, {"type": "SMS", "channelStatus": "SKIPPED"}],
                        "timestamp": "2025-11-03T09:12:44.018Z",
                        "routingPlan": {"id": "b838b13c-f98c-4def-93f0-515d4e4f4ee1", "name": "Plan Abc",
                            "version": "ztoe2qRAM8M8vS0bqajhyEBcvXacrGPp", "createdDate": "2023-11-17T14:27:51.413Z"}}})
            } else {
                json!({"specversion": "1.0", "id": format!("9b1a0c9e-0000-4000-8000-{i:012}"),
                    "source": "/data-plane/client-callbacks/nhs-notify-prod/core",
                    "type": "uk.nhs.notify.channel.status.PUBLISHED.v1", "time": "2025-11-03T09:12:44.018Z",
                    "data": {"clientId": client, "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
                        "messageReference": "1642109b-69eb-447f-8f97-ab70a74f5db4", "channel": CHANNELS[i % 4],
                        "channelStatus": CHANNEL_STATUSES[i % 5], "previousChannelStatus": "SENDING",
                        "supplierStatus": SUPPLIER_STATUSES[i % 5], "previousSupplierStatus": "received",
                        "cascadeType": "primary", "cascadeOrder": 1, "timestamp": "2025-11-03T09:12:44.018Z", "retryCount": 0}})
            };
            serde_json::to_vec(&v).expect("json")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let configs = configs();
    let opts = CoreOptions::default();
    let events = events(1000);
    let schemas = Schemas::get();

    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Elements(1));
    let typical: Value = serde_json::from_slice(&events[4]).expect("json");
    g.bench_function("typical_event_prevalidated_value", |b| {
        b.iter(|| schemas.validate_event(&typical).is_ok())
    });
    let tree = callbacks::schema::Tree::parse(&events[4]).expect("json");
    g.bench_function("typical_event_prevalidated_tree", |b| {
        b.iter(|| schemas.valid_event_kind(&tree).is_some())
    });
    g.bench_function("typical_event_from_bytes", |b| {
        b.iter(|| callbacks::event::parse_event(&events[4]).is_ok())
    });
    g.bench_function("typical_event_from_bytes_via_value", |b| {
        b.iter(|| callbacks::event::parse_value(&events[4]).is_ok())
    });
    g.finish();

    let mut g = c.benchmark_group("pipeline_1000_events");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("floor_serde_parse_serialize", |b| {
        b.iter_batched(
            || (),
            |_| {
                let mut n = 0usize;
                for e in &events {
                    let v: Value = serde_json::from_slice(e).expect("json");
                    n += serde_json::to_vec(&v).expect("ser").len();
                }
                n
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("validate_filter_transform_sign", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                if let Ok(Outcome::Callbacks { callbacks, .. }) = process(e, &configs, &opts) {
                    n += callbacks.len();
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
