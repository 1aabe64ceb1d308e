#![cfg(feature = "aws")]
//! The real `bootstrap` binary (the `transform-filter-lambda` target, what the zip carries)
//! driven through a Lambda Runtime API harness (`/2018-06-01/runtime/invocation/next`,
//! `/response`, `/error`), with S3 and SQS on a moto server, and its output routed on a moto
//! EventBridge bus with the Terraform's per-client rules.

mod aws_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use aws_support::*;
use callbacks::sign;

// ---------------------------------------------------------------------------------------------
// The Lambda Runtime API harness
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
}

struct Inner {
    pending: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    waiters: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Vec<u8>>>,
    next_requests: AtomicU64,
}

struct RuntimeApi {
    addr: std::net::SocketAddr,
    inner: Arc<Inner>,
    queue: mpsc::UnboundedSender<(String, Vec<u8>)>,
    ids: AtomicU64,
}

async fn next(State(inner): State<Arc<Inner>>) -> (StatusCode, HeaderMap, Vec<u8>) {
    inner.next_requests.fetch_add(1, Ordering::SeqCst);
    let mut rx = inner.pending.lock().await;
    let Some((id, body)) = rx.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Vec::new());
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 300_000)
        .unwrap_or(0);
    let mut h = HeaderMap::new();
    let header = |v: String| HeaderValue::from_str(&v).expect("header value");
    h.insert("lambda-runtime-aws-request-id", header(id));
    h.insert("lambda-runtime-deadline-ms", header(deadline.to_string()));
    h.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:eu-west-2:123456789012:function:transform-filter".into()),
    );
    h.insert(
        "lambda-runtime-trace-id",
        header("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into()),
    );
    (StatusCode::OK, h, body)
}

async fn respond(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    if let Some(w) = inner.waiters.lock().expect("lock").remove(&id) {
        let _ = w.send(Outcome::Response(body.to_vec()));
    }
    StatusCode::ACCEPTED
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    if let Some(w) = inner.waiters.lock().expect("lock").remove(&id) {
        let _ = w.send(Outcome::Error(body.to_vec()));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    *inner.init_error.lock().expect("lock") = Some(body.to_vec());
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    async fn start() -> RuntimeApi {
        let (queue, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            pending: tokio::sync::Mutex::new(rx),
            waiters: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            next_requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // Responses of a 10,000-record batch are larger than axum's default 2 MB limit.
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi {
            addr,
            inner,
            queue,
            ids: AtomicU64::new(0),
        }
    }

    /// Queues one invocation; the returned receiver yields its outcome.
    fn enqueue(&self, payload: &Value) -> oneshot::Receiver<Outcome> {
        let id = format!("req-{}", self.ids.fetch_add(1, Ordering::SeqCst));
        let (tx, rx) = oneshot::channel();
        self.inner
            .waiters
            .lock()
            .expect("lock")
            .insert(id.clone(), tx);
        self.queue
            .send((id, serde_json::to_vec(payload).expect("json")))
            .expect("queue");
        rx
    }

    async fn invoke(&self, payload: &Value) -> Outcome {
        let rx = self.enqueue(payload);
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the function answered in time")
            .expect("outcome")
    }
}

// ---------------------------------------------------------------------------------------------
// The bootstrap process
// ---------------------------------------------------------------------------------------------

/// The binary under test: `BOOTSTRAP` (e.g. the `bootstrap` unpacked from the zip) or the
/// cargo-built `transform-filter-lambda`.
fn bootstrap_path() -> String {
    std::env::var("BOOTSTRAP")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_transform-filter-lambda").to_string())
}

struct Function {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Function {
    fn start(api: &RuntimeApi, bucket: &str, queue_url: &str, extra: &[(&str, &str)]) -> Function {
        let mut cmd = Command::new(bootstrap_path());
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "transform-filter")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("CLIENT_CONFIG_BUCKET", bucket)
            .env("CLIENT_CONFIG_PREFIX", "clients/")
            .env("REJECTED_EVENTS_QUEUE_URL", queue_url)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in moto_env(&moto().endpoint) {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start bootstrap");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().expect("lock").push(line);
                }
            });
        }
        Function { child, output }
    }

    fn lines(&self) -> Vec<String> {
        self.output.lock().expect("lock").clone()
    }

    /// Peak resident set size so far (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let api = RuntimeApi::start().await;
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
    let api = RuntimeApi::start().await;
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
    let api2 = RuntimeApi::start().await;
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
    let api = RuntimeApi::start().await;
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
        let api = RuntimeApi::start().await;
        let rx = api.enqueue(&small);
        let started = Instant::now();
        let function = Function::start(&api, &bucket, &queue, &[("RUST_LOG", "warn")]);
        while api.inner.next_requests.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        inits.push(started.elapsed());
        let _ = response(rx.await.expect("outcome"));
        colds.push(started.elapsed());
        drop(function);
    }

    let api = RuntimeApi::start().await;
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
