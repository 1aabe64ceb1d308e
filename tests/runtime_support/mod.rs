#![allow(dead_code)]
//! A Lambda Runtime API harness for the `aws_*runtime` tests, and the function process it
//! serves: the real Lambda binaries (`transform-filter-lambda`, `delivery-lambda`) run as child
//! processes with `AWS_LAMBDA_RUNTIME_API` pointing at an in-test axum server implementing
//! `/2018-06-01/runtime/invocation/next`, `/{id}/response`, `/{id}/error` and `/init/error`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

// ---------------------------------------------------------------------------------------------
// The Lambda Runtime API harness
// ---------------------------------------------------------------------------------------------

/// What the function answered to one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
}

pub struct Inner {
    pending: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    waiters: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Vec<u8>>>,
    init_error_type: Mutex<Option<String>>,
    pub next_requests: AtomicU64,
    function_arn: String,
}

pub struct RuntimeApi {
    pub addr: std::net::SocketAddr,
    pub inner: Arc<Inner>,
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
        header(inner.function_arn.clone()),
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

async fn init_error(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    *inner.init_error_type.lock().expect("lock") = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    *inner.init_error.lock().expect("lock") = Some(body.to_vec());
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    /// Starts a harness on loopback for the function `function_name` (its invoked ARN).
    pub async fn start(function_name: &str) -> RuntimeApi {
        let (queue, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            pending: tokio::sync::Mutex::new(rx),
            waiters: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            init_error_type: Mutex::new(None),
            next_requests: AtomicU64::new(0),
            function_arn: format!("arn:aws:lambda:eu-west-2:123456789012:function:{function_name}"),
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

    /// Queues one invocation; returns its request id and a receiver of its outcome.
    pub fn enqueue_with_id(&self, payload: &Value) -> (String, oneshot::Receiver<Outcome>) {
        let id = format!("req-{}", self.ids.fetch_add(1, Ordering::SeqCst));
        let (tx, rx) = oneshot::channel();
        self.inner
            .waiters
            .lock()
            .expect("lock")
            .insert(id.clone(), tx);
        self.queue
            .send((id.clone(), serde_json::to_vec(payload).expect("json")))
            .expect("queue");
        (id, rx)
    }

    /// Queues one invocation; the returned receiver yields its outcome.
    pub fn enqueue(&self, payload: &Value) -> oneshot::Receiver<Outcome> {
        self.enqueue_with_id(payload).1
    }

    /// One invocation and its request id (`lambda-runtime-aws-request-id`).
    pub async fn invoke_with_id(&self, payload: &Value) -> (String, Outcome) {
        let (id, rx) = self.enqueue_with_id(payload);
        let outcome = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the function answered in time")
            .expect("outcome");
        (id, outcome)
    }

    pub async fn invoke(&self, payload: &Value) -> Outcome {
        self.invoke_with_id(payload).await.1
    }

    /// `GET /invocation/next` requests received so far.
    pub fn next_requests(&self) -> u64 {
        self.inner.next_requests.load(Ordering::SeqCst)
    }

    /// The body of the `POST /init/error`, if the function reported one.
    pub fn init_error(&self) -> Option<Vec<u8>> {
        self.inner.init_error.lock().expect("lock").clone()
    }

    /// The `Lambda-Runtime-Function-Error-Type` header of the `POST /init/error`, if any.
    pub fn init_error_type(&self) -> Option<String> {
        self.inner.init_error_type.lock().expect("lock").clone()
    }
}

/// Asserts that the function reported a wrong setting `name` (with `reason`) to
/// `/runtime/init/error`, in the documented error document with `Runtime.ConfigInvalid`.
pub fn assert_init_error(api: &RuntimeApi, name: &str, reason: &str) {
    let body = api
        .init_error()
        .unwrap_or_else(|| panic!("{name}: nothing was posted to /runtime/init/error"));
    let doc: Value = serde_json::from_slice(&body).expect("the init error is JSON");
    assert_eq!(doc["errorType"], "Runtime.ConfigInvalid", "{name}: {doc}");
    let message = doc["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("environment variable {name}: ")) && message.contains(reason),
        "{name}: errorMessage is {message:?}"
    );
    let header = api.init_error_type();
    assert_eq!(header.as_deref(), Some("Runtime.ConfigInvalid"), "{name}");
}

/// Starts `binary` with only the Lambda environment, `AWS_REGION` and `vars`, and asserts that
/// it fails its init phase on the setting `name` (with `reason`): reported to
/// `/runtime/init/error`, no invocation asked for, exit status 1, the reason on stderr.
pub async fn assert_init_fails(
    binary: &str,
    function_name: &str,
    vars: &[(&str, &str)],
    name: &str,
    reason: &str,
) -> Function {
    let api = RuntimeApi::start(function_name).await;
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .envs(lambda_env(&api, function_name))
        .env("AWS_REGION", "eu-west-2")
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied());
    let mut function = Function::spawn(cmd);
    let status = function
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{name}: the binary is still running"));
    assert_eq!(status.code(), Some(1), "{name}: exit status {status}");
    let stderr = function.lines_of(Stream::Stderr).join("\n");
    assert!(
        stderr.contains(&format!("environment variable {name}: ")) && stderr.contains(reason),
        "{name}: stderr is {stderr:?}"
    );
    assert_eq!(api.next_requests(), 0, "{name}: no invocation asked for");
    assert_init_error(&api, name, reason);
    function
}

// ---------------------------------------------------------------------------------------------
// The function process
// ---------------------------------------------------------------------------------------------

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The binary under test: the path in `$var` (e.g. the `bootstrap` unpacked from the zip),
/// else `default` (the cargo-built target).
pub fn binary(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// The environment Lambda gives every function (what `lambda_runtime` requires), pointing at
/// the harness.
pub fn lambda_env(api: &RuntimeApi, function_name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", api.addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024".to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
    ]
}

/// A running function: its stdout and stderr are collected line by line. Killed on drop.
pub struct Function {
    child: Child,
    output: Arc<Mutex<Vec<(Stream, String)>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Function {
    /// Spawns `cmd` with piped stdout and stderr.
    pub fn spawn(mut cmd: Command) -> Function {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the function binary");
        let output: Arc<Mutex<Vec<(Stream, String)>>> = Arc::default();
        let mut readers = Vec::new();
        for (kind, stream) in [
            (
                Stream::Stdout,
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            ),
            (
                Stream::Stderr,
                child.stderr.take().map(|s| Box::new(s) as _),
            ),
        ] {
            let Some(stream) = stream else { continue };
            let sink = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().expect("lock").push((kind, line));
                }
            }));
        }
        Function {
            child,
            output,
            readers,
        }
    }

    /// Every line printed so far (stdout and stderr, each in order).
    pub fn lines(&self) -> Vec<String> {
        self.output
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// The lines printed so far on one stream.
    pub fn lines_of(&self, stream: Stream) -> Vec<String> {
        self.output
            .lock()
            .expect("lock")
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Waits until `done` holds for the lines printed so far; panics after `timeout`.
    pub async fn wait_for_lines(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.lines();
            if done(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; output so far:\n{}",
                lines.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the process to exit (then for its output to be read to the end); `None` if
    /// it is still running after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Peak resident set size so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
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
