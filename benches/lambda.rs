//! The transform-filter Lambda handler, end to end in process: a 10,000-record Pipe batch as
//! JSON bytes → records → validate, filter, transform, sign → output serialized as the Lambda
//! runtime does. Configuration cached (in memory), no rejects.
//! Run: `cargo bench --no-default-features --features aws --bench lambda`. A second bench is
//! the floor of the same batch, as `callbacks transform` has one (`scripts/bench-transform.sh`).
//! Cold start and peak RSS of the real binary: `tests/aws_runtime.rs`
//! (`bench_cold_start_and_ten_thousand_records`).

#[global_allocator]
static GLOBAL: callbacks::alloc::Mimalloc = callbacks::alloc::Mimalloc;

use std::collections::HashMap;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Value};

use callbacks::aws::handler::{
    self, CacheUse, ConfigFault, ConfigLookup, ConfigSource, RejectFault, RejectSink,
    RejectedRecord, SqsRecord,
};
use callbacks::config::{parse_client, ClientSettings};
use callbacks::pipeline::CoreOptions;

struct Configs(HashMap<String, Arc<ClientSettings>>);

impl ConfigSource for Configs {
    async fn client(&self, client_id: &str) -> Result<ConfigLookup, ConfigFault> {
        Ok(ConfigLookup {
            settings: self.0.get(client_id).cloned(),
            cache: CacheUse::Hit,
        })
    }
}

struct NoRejects;

impl RejectSink for NoRejects {
    async fn send(&self, _: &[RejectedRecord]) -> Result<(), RejectFault> {
        Ok(())
    }
}

fn configs() -> Arc<Configs> {
    let mut m = HashMap::new();
    for c in 0..10 {
        let targets: Vec<Value> = (0..2)
            .map(|t| {
                json!({"targetId": format!("t{t}"), "type": "API",
                "invocationEndpoint": format!("https://client-{c}.example/cb/{t}"), "invocationMethod": "POST",
                "invocationRateLimit": 50, "apiKey": {"headerName": "x-api-key", "headerValue": format!("key-{c}-{t}")}})
            })
            .collect();
        let doc = json!({
            "clientId": format!("client-{c}"), "applicationId": format!("app-{c}"),
            "subscriptions": [
                {"subscriptionId": "s-msg", "subscriptionType": "MessageStatus",
                 "messageStatuses": ["DELIVERED", "FAILED"], "targetIds": ["t0", "t1"]},
                {"subscriptionId": "s-chan", "subscriptionType": "ChannelStatus", "channelType": "NHSAPP",
                 "channelStatuses": ["DELIVERED"], "supplierStatuses": ["read"], "targetIds": ["t0"]}
            ],
            "targets": targets
        });
        let s = parse_client("bench", doc.to_string().as_bytes(), &HashMap::new())
            .expect("valid config");
        m.insert(format!("client-{c}"), Arc::new(s));
    }
    Arc::new(Configs(m))
}

/// 60 % message status (DELIVERED / FAILED / SENDING), 40 % channel status, 10 clients.
fn batch(n: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let client = format!("client-{}", i % 10);
            let id = format!("9b1a0c9e-0000-4000-8000-{i:012}");
            let status = ["DELIVERED", "FAILED", "SENDING"][i % 3];
            let event = if i % 5 < 3 {
                json!({"specversion": "1.0", "id": id, "source": "/data-plane/client-callbacks/nhs-notify-prod/core",
                    "type": "uk.nhs.notify.message.status.PUBLISHED.v1", "time": "2025-11-03T09:12:44.018Z",
                    "datacontenttype": "application/json",
                    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                    "data": {"clientId": client, "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
                        "messageReference": "1642109b-69eb-447f-8f97-ab70a74f5db4",
                        "messageStatus": status, "previousMessageStatus": "SENDING",
                        "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
                        "timestamp": "2025-11-03T09:12:44.018Z",
                        "routingPlan": {"id": "b838b13c-f98c-4def-93f0-515d4e4f4ee1", "name": "Plan Abc",
                            "version": "ztoe2qRAM8M8vS0bqajhyEBcvXacrGPp", "createdDate": "2023-11-17T14:27:51.413Z"}}})
            } else {
                json!({"specversion": "1.0", "id": id, "source": "/data-plane/client-callbacks/nhs-notify-prod/core",
                    "type": "uk.nhs.notify.channel.status.PUBLISHED.v1", "time": "2025-11-03T09:12:44.018Z",
                    "data": {"clientId": client, "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
                        "messageReference": "1642109b-69eb-447f-8f97-ab70a74f5db4", "channel": "NHSAPP",
                        "channelStatus": "DELIVERED", "supplierStatus": "read", "cascadeType": "primary",
                        "cascadeOrder": 1, "timestamp": "2025-11-03T09:12:44.018Z", "retryCount": 0}})
            };
            json!({"messageId": format!("m{i}"), "receiptHandle": "AQEB", "body": event.to_string(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "x",
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-2:123456789012:q", "awsRegion": "eu-west-2"})
        })
        .collect();
    serde_json::to_vec(&records).expect("json")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let configs = configs();
    let opts = CoreOptions::default();
    let input = batch(10_000);
    let mut group = c.benchmark_group("transform-filter");
    group.sample_size(20);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("10k-record batch, config cached", |b| {
        b.iter_batched(
            || input.clone(),
            |bytes| {
                let records: Vec<SqsRecord> = serde_json::from_slice(&bytes).expect("records");
                let out = rt
                    .block_on(handler::handle(records, &configs, &NoRejects, &opts))
                    .expect("ok");
                serde_json::to_vec(&out.output).expect("output").len()
            },
            BatchSize::LargeInput,
        )
    });
    // The floor, as for `callbacks transform` (examples/serde_floor.rs): on one thread, the
    // batch and every record's event parsed into `serde_json::Value`s and each event written
    // back compactly.
    group.bench_function("floor: serde_json round trip of the batch's events", |b| {
        b.iter_batched(
            || input.clone(),
            |bytes| {
                let records: Vec<Value> = serde_json::from_slice(&bytes).expect("records");
                let mut out = Vec::new();
                for r in &records {
                    let body = r["body"].as_str().expect("text body");
                    let event: Value = serde_json::from_str(body).expect("event");
                    serde_json::to_writer(&mut out, &event).expect("write");
                }
                out.len()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
