#![cfg(feature = "aws")]
//! The real delivery Lambda binary (the `delivery-lambda` target; `DELIVERY_BOOTSTRAP` to test
//! another build, e.g. the `bootstrap` unpacked from `target/lambda/delivery/bootstrap.zip`)
//! driven through the Lambda Runtime API harness of `tests/runtime_support`, with its
//! configuration from the environment only (`env_clear`), the client's queue, DLQ, configuration
//! bucket and state table on a moto server the tests start on loopback, and the client endpoint
//! an HTTPS receiver on loopback whose CA reaches the binary through `EXTRA_CA_BUNDLE_FILE`.
//!
//! The tests play the event source mapping: receive a batch from the client's queue (moto, so the
//! receipt handles are real and `ChangeMessageVisibility` / `DeleteMessage` really act), invoke
//! the function with the SQS event, and delete what its `batchItemFailures` does not name.

mod aws_support;
mod delivery_support;
mod runtime_support;

use std::collections::{HashMap, HashSet, VecDeque};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde_json::{json, Value};

use aws_support::*;
use callbacks::aws::delivery::sqs::attr;
use callbacks::aws::delivery::AttemptRecord;
use callbacks::aws::handler::{self, RejectFault, RejectSink, RejectedRecord};
use callbacks::pipeline::CoreOptions;
use delivery_support::{Pki, Receiver, Reply};
use runtime_support::{
    assert_init_fails, binary, lambda_env, Function, Outcome, RuntimeApi, Stream,
};

const FUNCTION: &str = "client-delivery";
const CLIENT: &str = "client-d";
const APP: &str = "app-client-d";
/// The target's API key: it must never be printed (nor the HMAC key made from it).
const KEY: &str = "key-client-d-5ecr3t-Zq81";
const NAMESPACE: &str = "Callbacks/DeliveryRuntimeTest";

/// The binary under test.
fn delivery_path() -> String {
    binary("DELIVERY_BOOTSTRAP", env!("CARGO_BIN_EXE_delivery-lambda"))
}

// ---------------------------------------------------------------------------------------------
// The client on moto
// ---------------------------------------------------------------------------------------------

/// The client: its configuration in S3, its https queue with a redrive policy to its DLQ; its
/// `configs` is the transform-filter Lambda's view of the configuration (to make bus events).
type Env = DeliveryEnv;

fn client_config(endpoint: &str, delivery: Value) -> Value {
    https_client_config(CLIENT, APP, KEY, endpoint, delivery)
}

/// The queue's visibility timeout is far longer than the tests: a message that comes back
/// within seconds came back because the function changed its visibility.
async fn client_env(endpoint: &str, delivery: Value) -> Env {
    let config = client_config(endpoint, delivery);
    DeliveryEnv::new(CLIENT, &config, "client-d-https", 5, 180).await
}

// ---------------------------------------------------------------------------------------------
// Callbacks-bus events on the client's queue
// ---------------------------------------------------------------------------------------------

struct NoRejects;
impl RejectSink for NoRejects {
    async fn send(&self, rejects: &[RejectedRecord]) -> Result<(), RejectFault> {
        panic!("unexpected rejects: {rejects:?}");
    }
}

/// One callback as the Callbacks-bus rule puts it on the client's queue.
struct BusMessage {
    event_id: String,
    /// The Notify message id (`detail.messageId`, `data[0].attributes.messageId`).
    message_id: String,
    /// The queue message body: the EventBridge envelope around the transform-filter output.
    body: String,
    /// `detail.signature`, made by the transform-filter handler.
    signature: String,
    /// The signed bytes: `detail.payload` as the transform-filter Lambda wrote it.
    payload: Vec<u8>,
    /// The SQS message id, once sent.
    sqs_id: String,
}

/// Transforms a message status event with the transform-filter handler and wraps the detail
/// in the Callbacks-bus envelope. With `sorted`, the detail's keys are re-ordered on the way.
async fn bus_message(env: &Env, event_id: &str, sorted: bool) -> BusMessage {
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
    let as_written = serde_json::to_string(&detail).expect("json");
    let ordered: Ordered = serde_json::from_str(&as_written).expect("parse");
    let payload = ordered.get("payload").expect("payload").to_compact();
    let signature = ordered
        .get("signature")
        .and_then(Ordered::as_str)
        .expect("signature")
        .to_string();
    let detail_text = if sorted {
        serde_json::to_value(&detail).expect("value").to_string()
    } else {
        as_written
    };
    let body = format!(
        r#"{{"version":"0","id":"{event_id}-bus","detail-type":"ClientCallback","source":"uk.nhs.notify.client-callbacks","account":"123456789012","time":"2025-11-03T09:12:44Z","region":"eu-west-2","resources":[],"detail":{detail_text}}}"#
    );
    BusMessage {
        event_id: event_id.to_string(),
        message_id: message_id_for(event_id),
        body,
        signature,
        payload,
        sqs_id: String::new(),
    }
}

async fn send(env: &Env, mut m: BusMessage) -> BusMessage {
    m.sqs_id = env
        .sqs
        .send_message()
        .queue_url(&env.queue_url)
        .message_body(&m.body)
        .send()
        .await
        .expect("send")
        .message_id()
        .expect("message id")
        .to_string();
    m
}

// ---------------------------------------------------------------------------------------------
// The event source mapping
// ---------------------------------------------------------------------------------------------

/// An SQS record as the event source mapping passes it to the function.
fn record(env: &Env, m: &Message) -> Value {
    let attributes: serde_json::Map<String, Value> = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": env.queue_arn,
        "awsRegion": REGION
    })
}

/// Receives `want` messages (waiting up to 10 s for them), as the event source mapping does.
async fn receive(env: &Env, want: usize) -> Vec<Message> {
    let mut got: Vec<Message> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "{} of {want} messages came back on the queue",
            got.len()
        );
        let out = env
            .sqs
            .receive_message()
            .queue_url(&env.queue_url)
            .max_number_of_messages(i32::try_from(want - got.len()).unwrap_or(10).min(10))
            .visibility_timeout(180)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        if out.messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got.extend(out.messages().iter().cloned());
    }
    got
}

/// One poll of the event source mapping: receive, invoke, delete the messages the response
/// does not report as failed. Returns the request id, the response bytes and the records.
async fn poll(api: &RuntimeApi, env: &Env, want: usize) -> (String, Vec<u8>, Vec<Message>) {
    let messages = receive(env, want).await;
    let event = json!({"Records": messages.iter().map(|m| record(env, m)).collect::<Vec<_>>()});
    let (request_id, outcome) = api.invoke_with_id(&event).await;
    let body = match outcome {
        Outcome::Response(b) => b,
        Outcome::Error(b) => panic!(
            "the function reported an invocation error: {}",
            String::from_utf8_lossy(&b)
        ),
    };
    let response: Value = serde_json::from_slice(&body).expect("the response is JSON");
    let failed: HashSet<&str> = response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    for m in &messages {
        if !failed.contains(m.message_id().unwrap_or_default()) {
            // A dead-lettered message was deleted by the function already: ignore the error.
            let _ = env
                .sqs
                .delete_message()
                .queue_url(&env.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await;
        }
    }
    (request_id, body, messages)
}

async fn visible(env: &Env, url: &str) -> usize {
    visible_messages(&env.sqs, url).await
}

/// Takes `want` dead letters off the DLQ (waiting up to 10 s), then checks there are no more.
async fn take_dead_letters(env: &Env, want: usize) -> Vec<Message> {
    let mut got: Vec<Message> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "{} of {want} dead letters",
            got.len()
        );
        let out = env
            .sqs
            .receive_message()
            .queue_url(&env.dlq_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            env.sqs
                .delete_message()
                .queue_url(&env.dlq_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
            got.push(m.clone());
        }
        if out.messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(visible(env, &env.dlq_url).await, 0, "no other dead letter");
    got
}

fn attribute<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
}

fn history(m: &Message) -> Vec<AttemptRecord> {
    serde_json::from_str(attribute(m, attr::ATTEMPT_HISTORY).expect("attemptHistory"))
        .expect("attemptHistory is JSON")
}

// ---------------------------------------------------------------------------------------------
// The receiver and the function
// ---------------------------------------------------------------------------------------------

/// Statuses to answer per Notify message id, in order; 202 once a script runs out.
type Script = Arc<Mutex<HashMap<String, VecDeque<u16>>>>;

async fn receiver(pki: &Pki, script: &[(&str, &[u16])]) -> Receiver {
    let script: Script = Arc::new(Mutex::new(
        script
            .iter()
            .map(|(event_id, statuses)| {
                (message_id_for(event_id), statuses.iter().copied().collect())
            })
            .collect(),
    ));
    delivery_support::start(pki, false, move |_, r| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let id = body["data"][0]["attributes"]["messageId"]
            .as_str()
            .unwrap_or_default();
        let status = script
            .lock()
            .expect("lock")
            .get_mut(id)
            .and_then(VecDeque::pop_front)
            .unwrap_or(202);
        Reply::status(status)
    })
    .await
}

/// The delivery Lambda with what the Terraform sets (and the test CA), nothing else.
fn start_function(api: &RuntimeApi, env: &Env, pki: &Pki, extra: &[(&str, &str)]) -> Function {
    let mut cmd = Command::new(delivery_path());
    cmd.env_clear()
        .envs(lambda_env(api, FUNCTION))
        .envs(moto_env(&moto().endpoint))
        .env("CLIENT_CONFIG_BUCKET", &env.bucket)
        .env("CLIENT_CONFIG_PREFIX", "clients/")
        .env("METRICS_NAMESPACE", NAMESPACE)
        .env("EXTRA_CA_BUNDLE_FILE", &pki.ca_pem)
        // The receiver is on loopback: past the egress guard only with this.
        .env("ALLOW_PRIVATE_EGRESS", "true")
        // One invocation per client: the whole rate limit (100/s) for this one.
        .env("CLIENT_MAX_CONCURRENCY", "1")
        .env("RUST_LOG", "info");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Function::spawn(cmd)
}

/// Every stdout line parsed as JSON (all of them must be JSON), nothing on stderr.
fn json_lines(function: &Function) -> Vec<Value> {
    let stderr = function.lines_of(Stream::Stderr);
    assert!(stderr.is_empty(), "stderr: {stderr:?}");
    function
        .lines_of(Stream::Stdout)
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Neither the API key, nor the HMAC key made from it, nor the endpoint URL is in any line.
/// `SHOW_LOGS=1` prints the lines.
fn assert_no_secrets(lines: &[String], endpoint: Option<&str>) {
    let all = lines.join("\n");
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{all}");
    }
    assert!(!all.contains(KEY), "the API key was printed:\n{all}");
    assert!(
        !all.contains(&format!("{APP}.{KEY}")),
        "the HMAC key was printed"
    );
    if let Some(url) = endpoint {
        assert!(!all.contains(url), "the endpoint URL was printed:\n{all}");
    }
}

/// The EMF documents once `n` invocations are logged: `batch processed` is an invocation's
/// last line, so every line before it (EMF included) has been read by then.
async fn wait_for_emf(function: &Function, n: usize) -> Vec<Value> {
    let is_batch_line = |l: &String| l.contains(r#""message":"batch processed""#);
    function
        .wait_for_lines(
            &format!("{n} batch lines"),
            Duration::from_secs(10),
            |lines| lines.iter().filter(|l| is_batch_line(l)).count() >= n,
        )
        .await;
    json_lines(function)
        .into_iter()
        .filter(|l| l.get("_aws").is_some())
        .collect()
}

fn log_line<'a>(lines: &'a [Value], message: &str, event_id: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["message"] == message && l["event_id"] == event_id)
        .unwrap_or_else(|| panic!("no {message:?} line for {event_id}: {lines:#?}"))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_delivers_a_batch_with_the_signed_bytes_and_reports_no_failures() {
    let pki = Pki::new();
    let rx = receiver(&pki, &[]).await;
    let env = client_env(&rx.url("/callbacks"), json!({"mode": "https"})).await;
    let mut sent = Vec::new();
    for (event_id, sorted) in [("ev-rt-1", false), ("ev-rt-2", true), ("ev-rt-3", false)] {
        sent.push(send(&env, bus_message(&env, event_id, sorted).await).await);
    }
    let api = RuntimeApi::start(FUNCTION).await;
    let function = start_function(&api, &env, &pki, &[]);

    let (request_id, response, records) = poll(&api, &env, 3).await;
    assert_eq!(records.len(), 3);
    assert_eq!(response, br#"{"batchItemFailures":[]}"#);

    // Each callback once, with its exact signed bytes, the API key and a valid signature.
    let got = rx.requests();
    assert_eq!(got.len(), 3, "{got:?}");
    let mut seen = HashSet::new();
    for r in &got {
        let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
        let id = body["data"][0]["attributes"]["messageId"]
            .as_str()
            .expect("messageId");
        let m = sent
            .iter()
            .find(|m| m.message_id == id)
            .expect("a callback that was sent");
        assert!(seen.insert(id.to_string()), "{id} delivered twice");
        assert_eq!(r.path, "/callbacks");
        assert_eq!(r.header("content-type"), Some("application/vnd.api+json"));
        assert_eq!(r.header("x-api-key"), Some(KEY));
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            String::from_utf8_lossy(&m.payload),
            "{}: the bytes the transform-filter Lambda signed",
            m.event_id
        );
        let sig = r.header("x-hmac-sha256-signature").expect("signature");
        assert!(callbacks::sign::verify(&r.body, APP, KEY, sig), "{id}");
        assert_eq!(
            sig, m.signature,
            "{}: detail.signature (same key)",
            m.event_id
        );
    }
    assert_eq!(visible(&env, &env.queue_url).await, 0);
    assert_eq!(visible(&env, &env.dlq_url).await, 0);

    // Logs: JSON lines; one `delivered` line per callback with the correlation fields and the
    // invocation's request id; one EMF document for the client; the batch line.
    let emf = wait_for_emf(&function, 1).await;
    assert_eq!(emf.len(), 1);
    let doc = &emf[0];
    assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["ClientId"]])
    );
    assert_eq!(doc["ClientId"], CLIENT);
    assert_eq!(doc["CallbacksDelivered"], 3);
    for name in [
        "DeliveryRetried",
        "DeliveryDeferred",
        "DeliveryFailed",
        "DeliveryErrors",
        "SignatureRecomputed",
    ] {
        assert_eq!(doc[name], 0, "{name}");
    }
    assert_eq!(
        doc["DeliveryLatencyMs"].as_array().map(Vec::len),
        Some(3),
        "{doc}"
    );
    let lines = json_lines(&function);
    for m in &sent {
        let l = log_line(&lines, "delivered", &m.event_id);
        assert_eq!(l["message_id"], m.message_id.as_str(), "{l}");
        assert_eq!(l["sqs_message_id"], m.sqs_id.as_str(), "{l}");
        assert_eq!(l["status"], 202, "{l}");
        assert_eq!(l["level"], "INFO", "{l}");
        assert_eq!(l["span"]["requestId"], request_id.as_str(), "{l}");
    }
    let batch = lines
        .iter()
        .find(|l| l["message"] == "batch processed")
        .expect("a batch line");
    assert_eq!(
        (batch["messages"].as_u64(), batch["failures"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(batch["span"]["requestId"], request_id.as_str());
    assert_no_secrets(&function.lines(), Some(&rx.url("")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_through_batch_item_failures_and_a_400_is_dead_lettered_with_its_history()
{
    let pki = Pki::new();
    // ev-rt-retry: 500, then 400 on the next receive; ev-rt-bad: 400; ev-rt-ok: 202.
    let rx = receiver(&pki, &[("ev-rt-retry", &[500, 400]), ("ev-rt-bad", &[400])]).await;
    let env = client_env(&rx.url("/cb"), fast_retries()).await;
    let db = aws_sdk_dynamodb::Client::new(&sdk_config(&moto().endpoint).await);
    let table = state_table(&db, "delivery-rt-state").await;
    let mut sent = HashMap::new();
    for event_id in ["ev-rt-ok", "ev-rt-retry", "ev-rt-bad"] {
        sent.insert(
            event_id,
            send(&env, bus_message(&env, event_id, false).await).await,
        );
    }
    let state = [("DELIVERY_STATE_TABLE", table.as_str())];

    // First receive, in one execution environment.
    let api = RuntimeApi::start(FUNCTION).await;
    let first = start_function(&api, &env, &pki, &state);
    let (request_id, response, _) = poll(&api, &env, 3).await;
    let response: Value = serde_json::from_slice(&response).expect("JSON");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": sent["ev-rt-retry"].sqs_id}]}),
        "only the 500 stays on the queue"
    );
    assert_eq!(rx.requests().len(), 3);

    // The 400: on the DLQ at once, as it was on the queue, with its history as attributes.
    let letters = take_dead_letters(&env, 1).await;
    let bad = &sent["ev-rt-bad"];
    let l = &letters[0];
    assert_eq!(
        l.body(),
        Some(bad.body.as_str()),
        "the body is kept as it was"
    );
    assert_eq!(attribute(l, attr::EVENT_ID), Some("ev-rt-bad"));
    assert_eq!(
        attribute(l, attr::MESSAGE_ID),
        Some(bad.message_id.as_str())
    );
    assert_eq!(attribute(l, attr::CLIENT_ID), Some(CLIENT));
    assert_eq!(attribute(l, attr::TARGET_ID), Some("target-1"));
    assert_eq!(
        attribute(l, attr::REASON),
        Some("permanent failure: HTTP 400")
    );
    assert_eq!(attribute(l, attr::ATTEMPTS), Some("1"));
    assert_eq!(attribute(l, attr::LAST_OUTCOME), Some("HTTP 400"));
    assert_eq!(
        attribute(l, attr::SOURCE_QUEUE_URL),
        Some(env.queue_url.as_str())
    );
    let h = history(l);
    assert_eq!(h.iter().map(|a| a.status).collect::<Vec<_>>(), [Some(400)]);
    assert_eq!(attribute(l, attr::FIRST_ATTEMPT_AT), Some(h[0].at.as_str()));

    let emf = wait_for_emf(&first, 1).await;
    assert_eq!(
        (
            emf[0]["CallbacksDelivered"].as_u64(),
            emf[0]["DeliveryRetried"].as_u64(),
            emf[0]["DeliveryFailed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{}",
        emf[0]
    );
    let lines = json_lines(&first);
    let retry = &sent["ev-rt-retry"];
    let l = log_line(&lines, "retrying", "ev-rt-retry");
    assert_eq!(l["message_id"], retry.message_id.as_str());
    assert_eq!(l["sqs_message_id"], retry.sqs_id.as_str());
    assert_eq!(l["outcome"], "HTTP 500");
    assert_eq!(l["retry_in_s"], 1);
    assert_eq!(l["span"]["requestId"], request_id.as_str());
    let l = log_line(&lines, "dead-lettered", "ev-rt-bad");
    assert_eq!(l["sqs_message_id"], bad.sqs_id.as_str());
    assert_eq!(l["message_id"], bad.message_id.as_str());
    assert_eq!(l["level"], "WARN");
    log_line(&lines, "delivered", "ev-rt-ok");
    assert_no_secrets(&first.lines(), Some(&rx.url("")));
    drop(first);

    // The 500's visibility was changed to the 1 s back-off (the queue's own is 180 s): it comes
    // back and, in another execution environment sharing the state table, is answered 400.
    let api2 = RuntimeApi::start(FUNCTION).await;
    let second = start_function(&api2, &env, &pki, &state);
    let (_, response, records) = poll(&api2, &env, 1).await;
    assert_eq!(records[0].message_id(), Some(retry.sqs_id.as_str()));
    assert_eq!(
        records[0]
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(response, br#"{"batchItemFailures":[]}"#);
    let letters = take_dead_letters(&env, 1).await;
    let l = &letters[0];
    assert_eq!(attribute(l, attr::EVENT_ID), Some("ev-rt-retry"));
    assert_eq!(attribute(l, attr::ATTEMPTS), Some("2"));
    assert_eq!(
        history(l).iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(500), Some(400)],
        "the first environment's attempt comes from DELIVERY_STATE_TABLE"
    );
    assert_eq!(visible(&env, &env.queue_url).await, 0);
    assert_eq!(rx.requests().len(), 4);
    let emf = wait_for_emf(&second, 1).await;
    assert_eq!(emf[0]["DeliveryFailed"], 1);
    let lines = json_lines(&second);
    let l = log_line(&lines, "dead-lettered", "ev-rt-retry");
    assert_eq!(l["attempts"], 2);
    assert_no_secrets(&second.lines(), Some(&rx.url("")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_state_table_another_environment_counts_the_receives_as_attempts() {
    let pki = Pki::new();
    let rx = receiver(&pki, &[("ev-rt-local", &[503, 400])]).await;
    let env = client_env(&rx.url("/cb"), fast_retries()).await;
    let m = send(&env, bus_message(&env, "ev-rt-local", false).await).await;

    let api = RuntimeApi::start(FUNCTION).await;
    let first = start_function(&api, &env, &pki, &[]);
    let (_, response, _) = poll(&api, &env, 1).await;
    let response: Value = serde_json::from_slice(&response).expect("JSON");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": m.sqs_id}]})
    );
    assert_no_secrets(&first.lines(), Some(&rx.url("")));
    drop(first);

    // A fresh execution environment, no DELIVERY_STATE_TABLE: it knows only its own attempt,
    // and `attempts` falls back to ApproximateReceiveCount.
    let api2 = RuntimeApi::start(FUNCTION).await;
    let second = start_function(&api2, &env, &pki, &[]);
    let (_, response, _) = poll(&api2, &env, 1).await;
    assert_eq!(response, br#"{"batchItemFailures":[]}"#);
    let letters = take_dead_letters(&env, 1).await;
    let l = &letters[0];
    assert_eq!(attribute(l, attr::EVENT_ID), Some("ev-rt-local"));
    assert_eq!(
        history(l).iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(400)]
    );
    assert_eq!(attribute(l, attr::ATTEMPTS), Some("2"));
    assert_eq!(rx.requests().len(), 2);
    wait_for_emf(&second, 1).await;
    assert_eq!(
        log_line(&json_lines(&second), "dead-lettered", "ev-rt-local")["attempts"],
        2
    );
    assert_no_secrets(&second.lines(), Some(&rx.url("")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_setting_stops_the_binary_before_the_runtime_starts() {
    // `DeliveryLambdaSettings::from_env` fails in `main`, before the runtime client exists:
    // the binary reports the reason to `/runtime/init/error` (so Lambda shows it), asks for
    // no invocation, and exits with status 1 and a line naming the variable on stderr.
    type Vars = &'static [(&'static str, &'static str)];
    let cases: [(Vars, &str, &str); 3] = [
        (&[], "CLIENT_CONFIG_BUCKET", "is required"),
        (
            &[
                ("CLIENT_CONFIG_BUCKET", "cfg"),
                ("CLIENT_MAX_CONCURRENCY", "0"),
            ],
            "CLIENT_MAX_CONCURRENCY",
            "is not a positive whole number",
        ),
        (
            &[
                ("CLIENT_CONFIG_BUCKET", "cfg"),
                ("CONFIG_CACHE_TTL_SECONDS", "soon"),
            ],
            "CONFIG_CACHE_TTL_SECONDS",
            "is not a whole number of seconds",
        ),
    ];
    for (vars, name, reason) in cases {
        let function = assert_init_fails(&delivery_path(), FUNCTION, vars, name, reason).await;
        assert_no_secrets(&function.lines(), None);
    }
}
