#![cfg(feature = "aws")]
//! The real `bootstrap` binary (the `transform-filter-lambda` target, what the zip carries)
//! driven through a Lambda Runtime API harness (`/2018-06-01/runtime/invocation/next`,
//! `/response`, `/error`; `tests/runtime_support`), with S3 and SQS on a moto server, and its output routed on a moto
//! EventBridge bus with the Terraform's per-client rules.

mod aws_support;
mod runtime_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use aws_support::*;
use callbacks::sign;
use runtime_support::{assert_init_fails, binary, lambda_env, Function, Outcome, RuntimeApi};

// ---------------------------------------------------------------------------------------------
// The bootstrap process (the Runtime API harness is in tests/runtime_support)
// ---------------------------------------------------------------------------------------------

/// The function name the harness and the process use.
const FUNCTION: &str = "transform-filter";

/// The binary under test: `BOOTSTRAP` (e.g. the `bootstrap` unpacked from the zip) or the
/// cargo-built `transform-filter-lambda`.
fn bootstrap_path() -> String {
    binary("BOOTSTRAP", env!("CARGO_BIN_EXE_transform-filter-lambda"))
}

impl Function {
    fn start(api: &RuntimeApi, bucket: &str, queue_url: &str, extra: &[(&str, &str)]) -> Function {
        let mut cmd = Command::new(bootstrap_path());
        cmd.env_clear()
            .envs(lambda_env(api, FUNCTION))
            .env("CLIENT_CONFIG_BUCKET", bucket)
            .env("CLIENT_CONFIG_PREFIX", "clients/")
            .env("REJECTED_EVENTS_QUEUE_URL", queue_url)
            .env("RUST_LOG", "info");
        for (k, v) in moto_env(&moto().endpoint) {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Function::spawn(cmd)
    }
}

async fn setup(clients: &[&str]) -> (String, String, aws_sdk_sqs::Client) {
    let endpoint = &moto().endpoint;
    let s3 = s3_client(endpoint).await;
    let sqs = sqs_client(endpoint).await;
    let bucket = unique("lambda-cfg");
    create_bucket(&s3, &bucket).await;
    for c in clients {
        put_object(
            &s3,
            &bucket,
            &format!("clients/{c}.json"),
            client_config(c).to_string(),
        )
        .await;
    }
    let queue = create_queue(&sqs, &unique("lambda-rejects")).await;
    (bucket, queue, sqs)
}

fn batch(events: &[(&str, String)]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|(id, body)| sqs_record(id, body))
            .collect(),
    )
}

fn response(outcome: Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Response(b) => b,
        Outcome::Error(b) => panic!(
            "the function reported an error: {}",
            String::from_utf8_lossy(&b)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_answers_batches_through_the_runtime_api() {
    let (bucket, queue, sqs) = setup(&["client-a", "client-b"]).await;
    let api = RuntimeApi::start(FUNCTION).await;
    let function = Function::start(&api, &bucket, &queue, &[]);

    let first = response(
        api.invoke(&batch(&[
            (
                "m1",
                message_event("e1", "client-a", "DELIVERED").to_string(),
            ),
            (
                "m2",
                eventbridge_envelope(&channel_event("e2", "client-b", "DELIVERED", "read"))
                    .to_string(),
            ),
            ("m3", "{\"specversion\":\"1.0\",\"id\":\"e3\"}".to_string()),
            ("m4", message_event("e4", "client-a", "SENDING").to_string()),
        ]))
        .await,
    );
    let out: Vec<Value> = serde_json::from_slice(&first).expect("a JSON array");
    let got: Vec<(&str, &str, &str)> = out
        .iter()
        .map(|d| {
            (
                d["eventId"].as_str().unwrap_or(""),
                d["clientId"].as_str().unwrap_or(""),
                d["targetId"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("e1", "client-a", "target-1"),
            ("e1", "client-a", "target-2"),
            ("e2", "client-b", "target-1")
        ]
    );

    // The payload bytes as they are on the wire, re-serialized compactly, carry a valid signature.
    let ordered: Ordered = serde_json::from_slice(&first).expect("parse");
    for d in ordered.as_array().expect("array") {
        let client = d
            .get("clientId")
            .and_then(Ordered::as_str)
            .expect("clientId");
        let target = d
            .get("targetId")
            .and_then(Ordered::as_str)
            .expect("targetId");
        let body = d.get("payload").expect("payload").to_compact();
        let sig = d
            .get("signature")
            .and_then(Ordered::as_str)
            .expect("signature");
        assert!(sign::verify(
            &body,
            &application_id(client),
            &api_key(client, target),
            sig
        ));
    }

    // A second batch on the warm function (configuration now cached).
    let second = response(
        api.invoke(&batch(&[(
            "m5",
            message_event("e5", "client-b", "FAILED").to_string(),
        )]))
        .await,
    );
    assert_eq!(
        serde_json::from_slice::<Vec<Value>>(&second)
            .expect("array")
            .len(),
        2
    );
    // An empty batch is an empty answer.
    assert_eq!(response(api.invoke(&json!([])).await), b"[]");

    let rejected = drain_queue(&sqs, &queue).await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["eventId"], "e3");
    assert_eq!(rejected[0]["sqsMessageId"], "m3");
    assert!(rejected[0]["reason"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));

    // Logs: JSON lines; the rejected event's line names it; EMF lines for each batch; no secrets.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = function.lines();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect();
    let reject_line = parsed
        .iter()
        .find(|l| l["message"] == "event rejected")
        .expect("a reject log line");
    assert_eq!(reject_line["event_id"], "e3");
    assert_eq!(reject_line["sqs_message_id"], "m3");
    let emf: Vec<&Value> = parsed.iter().filter(|l| l.get("_aws").is_some()).collect();
    assert_eq!(emf.len(), 3);
    assert_eq!(
        (
            emf[0]["EventsIn"].as_u64(),
            emf[0]["EventsRejected"].as_u64()
        ),
        (Some(4), Some(1))
    );
    assert_eq!(
        (
            emf[0]["EventsFilteredOut"].as_u64(),
            emf[0]["CallbacksOut"].as_u64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(
        (
            emf[0]["ConfigCacheMisses"].as_u64(),
            emf[1]["ConfigCacheHits"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let all = lines.join("\n");
    for c in ["client-a", "client-b"] {
        for t in ["target-1", "target-2"] {
            assert!(!all.contains(&api_key(c, t)), "an API key reached the logs");
        }
    }
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{all}");
    }
    let batch_line = parsed
        .iter()
        .find(|l| l["message"] == "batch processed")
        .expect("batch line");
    assert!(
        batch_line["span"]["requestId"].is_string(),
        "batch lines carry the request id: {batch_line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infrastructure_fault_is_reported_as_an_invocation_error_and_the_function_carries_on() {
    let endpoint = &moto().endpoint;
    let s3 = s3_client(endpoint).await;
    let sqs = sqs_client(endpoint).await;
    let bucket = unique("lambda-late");
    let queue = create_queue(&sqs, &unique("lambda-rejects")).await;
    let api = RuntimeApi::start(FUNCTION).await;
    let _function = Function::start(&api, &bucket, &queue, &[]);

    let events = batch(&[(
        "m1",
        message_event("e1", "client-a", "DELIVERED").to_string(),
    )]);
    match api.invoke(&events).await {
        Outcome::Error(body) => {
            let text = String::from_utf8_lossy(&body);
            assert!(
                text.contains("client-a") && text.contains("NoSuchBucket"),
                "{text}"
            );
        }
        Outcome::Response(b) => panic!("expected an error, got {}", String::from_utf8_lossy(&b)),
    }
    // The bucket appears: the retried batch succeeds.
    create_bucket(&s3, &bucket).await;
    put_object(
        &s3,
        &bucket,
        "clients/client-a.json",
        client_config("client-a").to_string(),
    )
    .await;
    let out: Vec<Value> =
        serde_json::from_slice(&response(api.invoke(&events).await)).expect("array");
    assert_eq!(out.len(), 2);

    // The rejected-events queue failing fails the invocation too.
    let api2 = RuntimeApi::start(FUNCTION).await;
    let missing_queue = format!("{queue}-missing");
    let _f2 = Function::start(&api2, &bucket, &missing_queue, &[]);
    match api2.invoke(&batch(&[("m1", "nonsense".to_string())])).await {
        Outcome::Error(_) => {}
        Outcome::Response(b) => panic!("expected an error, got {}", String::from_utf8_lossy(&b)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_on_eventbridge_delivers_each_client_exactly_its_callbacks() {
    let clients = ["client-a", "client-b", "client-c"];
    let (bucket, queue, _sqs) = setup(&clients).await;
    let api = RuntimeApi::start(FUNCTION).await;
    let _function = Function::start(&api, &bucket, &queue, &[]);
    let events: Vec<(String, String)> = (0..30)
        .map(|i| {
            let client = clients[i % 3];
            let body = match i % 4 {
                0 => message_event(&format!("e{i}"), client, "DELIVERED"),
                1 => channel_event(&format!("e{i}"), client, "DELIVERED", "read"),
                2 => message_event(&format!("e{i}"), client, "FAILED"),
                _ => message_event(&format!("e{i}"), client, "SENDING"),
            };
            (format!("m{i}"), body.to_string())
        })
        .collect();
    let refs: Vec<(&str, String)> = events
        .iter()
        .map(|(m, b)| (m.as_str(), b.clone()))
        .collect();
    let wire = response(api.invoke(&batch(&refs)).await);
    let output: Vec<Value> = serde_json::from_slice(&wire).expect("array");
    assert!(!output.is_empty());

    // What each (client, target) should receive: the event ids, and the exact body bytes.
    let ordered: Ordered = serde_json::from_slice(&wire).expect("parse");
    let mut expected: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for d in ordered.as_array().expect("array") {
        let s = |k: &str| {
            d.get(k)
                .and_then(Ordered::as_str)
                .expect("field")
                .to_string()
        };
        expected
            .entry(format!("{}/{}", s("clientId"), s("targetId")))
            .or_default()
            .insert(
                s("eventId"),
                d.get("payload").expect("payload").to_compact(),
            );
    }
    // Rules for every target of every client, plus a client the batch never mentions.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for c in clients.iter().chain(&["client-silent"]) {
        for t in ["target-1", "target-2"] {
            pairs.push((c.to_string(), t.to_string()));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let output_path = dir.path().join("output.json");
    std::fs::write(&output_path, &wire).expect("write output");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws_support/routing.py");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/eventbridge-routing.json"
    );
    let run = Command::new("python3")
        .args([script, &moto().endpoint, fixture])
        .arg(&output_path)
        .arg(serde_json::to_string(&pairs).expect("pairs"))
        .output()
        .expect("python3 runs the routing script (pip install boto3)");
    assert!(
        run.status.success(),
        "routing script failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let received: BTreeMap<String, Vec<Value>> =
        serde_json::from_slice(&run.stdout).expect("routing result");

    let fixture_json: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("json");
    for (pair, msgs) in &received {
        let want = expected.get(pair).cloned().unwrap_or_default();
        let got_ids: BTreeSet<String> = msgs
            .iter()
            .map(|m| m["eventId"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            got_ids,
            want.keys().cloned().collect::<BTreeSet<_>>(),
            "{pair} receives exactly its callbacks"
        );
        assert_eq!(msgs.len(), want.len(), "{pair}: no duplicates");
        let (client, target) = pair.split_once('/').expect("pair");
        for m in msgs {
            assert_eq!(m["clientId"], client);
            assert_eq!(m["targetId"], target);
            assert_eq!(m["source"], fixture_json["callbacksBus"]["source"]);
            assert_eq!(m["detailType"], fixture_json["callbacksBus"]["detailType"]);
            let body = m["body"].as_str().expect("body").as_bytes();
            let id = m["eventId"].as_str().expect("id");
            assert_eq!(
                body,
                want[id].as_slice(),
                "{pair} {id}: EventBridge re-serialization gives the signed bytes"
            );
            let sig = m["signature"].as_str().expect("signature");
            assert!(
                sign::verify(body, &application_id(client), &api_key(client, target), sig),
                "{pair} {id}"
            );
        }
    }
    assert!(received["client-silent/target-1"].is_empty());
    let total: usize = received.values().map(Vec::len).sum();
    assert_eq!(
        total,
        output.len(),
        "every callback reached exactly one queue"
    );
}

/// Cold start and a 10,000-record batch through the real binary. Numbers for BENCHMARKS.md:
/// `cargo test --release --features aws --test aws_runtime -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
async fn bench_cold_start_and_ten_thousand_records() {
    let clients: Vec<String> = (0..10).map(|c| format!("client-{c}")).collect();
    let refs: Vec<&str> = clients.iter().map(String::as_str).collect();
    let (bucket, queue, _sqs) = setup(&refs).await;
    let small = batch(&[(
        "m0",
        message_event("e0", "client-0", "DELIVERED").to_string(),
    )]);
    let big = Value::Array(
        (0..10_000)
            .map(|i| {
                let c = &clients[i % 10];
                let body = if i % 5 < 3 {
                    message_event(
                        &format!("e{i}"),
                        c,
                        ["DELIVERED", "FAILED", "SENDING"][i % 3],
                    )
                } else {
                    channel_event(&format!("e{i}"), c, "DELIVERED", "read")
                };
                sqs_record(&format!("m{i}"), &body.to_string())
            })
            .collect(),
    );
    let big_bytes = serde_json::to_vec(&big).expect("json").len();

    let mut colds = Vec::new();
    let mut inits = Vec::new();
    for _ in 0..5 {
        let api = RuntimeApi::start(FUNCTION).await;
        let rx = api.enqueue(&small);
        let started = Instant::now();
        let function = Function::start(&api, &bucket, &queue, &[("RUST_LOG", "warn")]);
        while api.next_requests() == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        inits.push(started.elapsed());
        let _ = response(rx.await.expect("outcome"));
        colds.push(started.elapsed());
        drop(function);
    }

    let api = RuntimeApi::start(FUNCTION).await;
    let function = Function::start(&api, &bucket, &queue, &[("RUST_LOG", "info")]);
    // Warm the configuration cache for all ten clients.
    let warm: Vec<(String, String)> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                format!("w{i}"),
                message_event(&format!("w{i}"), c, "DELIVERED").to_string(),
            )
        })
        .collect();
    let warm_refs: Vec<(&str, String)> =
        warm.iter().map(|(m, b)| (m.as_str(), b.clone())).collect();
    let _ = response(api.invoke(&batch(&warm_refs)).await);
    let mut runs = Vec::new();
    let mut callbacks = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let out = response(api.invoke(&big).await);
        runs.push(started.elapsed());
        callbacks = serde_json::from_slice::<Vec<Value>>(&out)
            .expect("array")
            .len();
    }
    let rss = function.peak_rss_kib();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (cold, init, run) = (median(&mut colds), median(&mut inits), median(&mut runs));
    println!("binary: {}", bootstrap_path());
    println!(
        "cold start (spawn -> first /next): median {:.1} ms of {:?}",
        ms(&init),
        inits.iter().map(ms).collect::<Vec<_>>()
    );
    println!(
        "cold start (spawn -> first response, 1 record, 1 S3 GET): median {:.1} ms of {:?}",
        ms(&cold),
        colds.iter().map(ms).collect::<Vec<_>>()
    );
    println!(
        "10,000-record batch ({big_bytes} bytes in, {callbacks} callbacks out), config cached: median {:.1} ms ({:.0} events/s) of {:?}",
        ms(&run),
        10_000.0 / run.as_secs_f64(),
        runs.iter().map(ms).collect::<Vec<_>>()
    );
    println!(
        "peak RSS (VmHWM) after the 10,000-record batches: {} KiB",
        rss.unwrap_or(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_setting_is_reported_to_the_init_error_endpoint() {
    // Lambda shows what reached `/runtime/init/error`; the binary then exits with status 1
    // before asking for an invocation.
    type Vars = &'static [(&'static str, &'static str)];
    let cases: [(Vars, &str, &str); 3] = [
        (
            &[("REJECTED_EVENTS_QUEUE_URL", "https://sqs.example/q")],
            "CLIENT_CONFIG_BUCKET",
            "is required",
        ),
        (
            &[("CLIENT_CONFIG_BUCKET", "cfg")],
            "REJECTED_EVENTS_QUEUE_URL",
            "is required",
        ),
        (
            &[
                ("CLIENT_CONFIG_BUCKET", "cfg"),
                ("REJECTED_EVENTS_QUEUE_URL", "https://sqs.example/q"),
                ("CONFIG_CACHE_TTL_SECONDS", "soon"),
            ],
            "CONFIG_CACHE_TTL_SECONDS",
            "is not a whole number of seconds",
        ),
    ];
    for (vars, name, reason) in cases {
        assert_init_fails(&bootstrap_path(), FUNCTION, vars, name, reason).await;
    }
}
