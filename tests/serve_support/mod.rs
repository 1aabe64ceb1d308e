//! Shared by the `serve_*` tests: a recording callback receiver on loopback, a `callbacks
//! serve` child process on a temporary data directory, configuration and event builders.
#![allow(dead_code)]

pub mod openapi;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;

pub const API_KEY: &str = "test-api-key-0123456789";

/// What the receiver does on one path.
#[derive(Clone)]
pub enum Behavior {
    Ok,
    /// Answer `status` (with `Retry-After` if given) `remaining` times, then 200.
    Fail {
        status: u16,
        remaining: usize,
        retry_after: Option<String>,
    },
    /// Hold each request until the gate opens, then 200.
    Gate(watch::Receiver<bool>),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub at: Instant,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn idempotency_key(&self) -> String {
        let v: Value = serde_json::from_slice(&self.body).expect("callback body is JSON");
        v["data"][0]["meta"]["idempotencyKey"]
            .as_str()
            .expect("idempotencyKey")
            .to_string()
    }
}

#[derive(Default)]
struct RecvState {
    records: Mutex<Vec<Received>>,
    behaviors: Mutex<HashMap<String, Behavior>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<RecvState>,
}

async fn handle(
    State(state): State<Arc<RecvState>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    // Read and count down under one lock: concurrent requests never both take the last failure.
    let behavior = {
        let mut b = state.behaviors.lock().unwrap();
        let current = b.get(&path).cloned().unwrap_or(Behavior::Ok);
        if let Behavior::Fail {
            status,
            remaining,
            retry_after,
        } = &current
        {
            let next = Behavior::Fail {
                status: *status,
                remaining: remaining.saturating_sub(1),
                retry_after: retry_after.clone(),
            };
            b.insert(path.clone(), next);
        }
        current
    };
    let (status, retry_after) = match behavior {
        Behavior::Ok => (200, None),
        Behavior::Fail {
            status,
            remaining,
            retry_after,
        } => {
            if remaining > 0 {
                (status, retry_after)
            } else {
                (200, None)
            }
        }
        Behavior::Gate(mut rx) => {
            let _ = rx.wait_for(|open| *open).await;
            (200, None)
        }
    };
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    state.records.lock().unwrap().push(Received {
        path,
        at,
        headers,
        body: body.to_vec(),
        status,
    });
    let mut resp = (StatusCode::from_u16(status).unwrap(), "").into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(RecvState::default());
        let app = Router::new()
            .route("/{path}", post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path)
    }

    pub fn set(&self, path: &str, b: Behavior) {
        self.state
            .behaviors
            .lock()
            .unwrap()
            .insert(path.to_string(), b);
    }

    pub fn records(&self) -> Vec<Received> {
        self.state.records.lock().unwrap().clone()
    }

    pub fn on(&self, path: &str) -> Vec<Received> {
        self.records()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Distinct idempotency keys answered 2xx on `path`.
    pub fn delivered_keys(&self, path: &str) -> std::collections::HashSet<String> {
        self.on(path)
            .iter()
            .filter(|r| r.status < 300)
            .map(Received::idempotency_key)
            .collect()
    }
}

/// Waits until `f` holds, polling; panics with `what` after `limit`.
pub async fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A target entry for [`client_config`].
pub struct TargetSpec<'a> {
    pub id: &'a str,
    pub url: String,
    pub rate: u32,
    pub delivery: Value,
}

impl<'a> TargetSpec<'a> {
    pub fn new(id: &'a str, url: String) -> Self {
        TargetSpec {
            id,
            url,
            rate: 300,
            delivery: json!({"initialBackoffMs": 20, "maxBackoffMs": 200}),
        }
    }
}

/// A client subscribed to every message status, on all its targets.
pub fn client_config(client_id: &str, targets: &[TargetSpec]) -> Value {
    json!({
        "clientId": client_id,
        "applicationId": format!("app-{client_id}"),
        "subscriptions": [{
            "subscriptionId": "all-statuses",
            "subscriptionType": "MessageStatus",
            "messageStatuses": ["CREATED", "PENDING_ENRICHMENT", "ENRICHED", "SENDING", "DELIVERED", "FAILED"],
            "targetIds": targets.iter().map(|t| t.id).collect::<Vec<_>>(),
        }],
        "targets": targets.iter().map(|t| json!({
            "targetId": t.id,
            "type": "API",
            "invocationEndpoint": t.url,
            "invocationMethod": "POST",
            "invocationRateLimit": t.rate,
            "apiKey": {"headerName": "x-api-key", "headerValue": API_KEY},
            "delivery": t.delivery,
        })).collect::<Vec<_>>(),
    })
}

/// A recording receiver and fresh directories (root, config, data) whose configuration holds
/// client `c1` with one target `t` posting to the receiver's `/cb`.
pub async fn one_client() -> (Receiver, tempfile::TempDir, PathBuf, PathBuf) {
    let receiver = Receiver::start().await;
    let (root, config, data) = dirs();
    write_config(
        &config,
        "c1",
        &client_config("c1", &[TargetSpec::new("t", receiver.url("cb"))]),
    );
    (receiver, root, config, data)
}

/// The configuration directory of a `callbacks receive` that plays client `client_id` (its
/// key and application id, as [`client_config`] makes them), under `root`.
pub fn receiver_config(root: &Path, client_id: &str) -> PathBuf {
    let dir = root.join("receiver");
    std::fs::create_dir_all(&dir).unwrap();
    let any_url = TargetSpec::new("t1", "http://127.0.0.1:9/cb".into());
    write_config(&dir, client_id, &client_config(client_id, &[any_url]));
    dir
}

pub fn write_config(dir: &Path, client_id: &str, doc: &Value) {
    // Write then rename, so the server never reads half a file.
    let tmp = dir.join(format!(".{client_id}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{client_id}.json"))).unwrap();
}

pub const SOURCE: &str = "/data-plane/client-callbacks/test";

/// A valid message status event.
pub fn message_event(client_id: &str, id: &str, status: &str) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": SOURCE,
        "type": "uk.nhs.notify.message.status.PUBLISHED.v1",
        "time": "2025-11-03T14:35:05.685Z",
        "subject": format!("client/{client_id}/message/{}", message_id_of(id)),
        "datacontenttype": "application/json",
        "data": {
            "clientId": client_id,
            "messageId": message_id_of(id),
            "messageReference": format!("ref-{id}"),
            "messageStatus": status,
            "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
            "timestamp": "2025-11-03T14:35:05.685Z",
            "routingPlan": {"id": "rp-1", "name": "plan", "version": "v1", "createdDate": "2025-09-17T14:27:51.413Z"}
        }
    })
}

/// The message id of [`message_event`]'s event `id` (27 alphanumerics, as the schema wants).
pub fn message_id_of(id: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(id.as_bytes()))[..27].to_string()
}

pub fn key_of(id: &str) -> String {
    callbacks::sign::idempotency_key(SOURCE, id)
}

/// A running `callbacks serve`.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
    pub config_dir: PathBuf,
    pub stderr_path: PathBuf,
    http: reqwest::Client,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_callbacks")
}

impl Server {
    /// Starts the server on a free port (reload every 100 ms, `--allow-http`).
    pub fn start(config_dir: &Path, data_dir: &Path) -> Server {
        Self::start_with(
            config_dir,
            data_dir,
            &[
                "--allow-http",
                "--allow-private-egress",
                "--reload-interval-ms",
                "100",
            ],
        )
    }

    pub fn start_with(config_dir: &Path, data_dir: &Path, extra: &[&str]) -> Server {
        let stderr_path = data_dir.with_extension(format!("stderr-{}.log", std::process::id()));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .unwrap();
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(config_dir)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start callbacks serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut addr_of = |prefix: &str| -> SocketAddr {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let line = line.trim().replacen("https://", "http://", 1);
            line.strip_prefix(prefix)
                .unwrap_or_else(|| {
                    panic!(
                        "server did not start: {line:?}\n{}",
                        std::fs::read_to_string(&stderr_path).unwrap_or_default()
                    )
                })
                .parse()
                .unwrap()
        };
        let addr = addr_of("listening on http://");
        let admin = addr_of("admin on http://");
        Server {
            child,
            addr,
            admin,
            data_dir: data_dir.to_path_buf(),
            config_dir: config_dir.to_path_buf(),
            stderr_path,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/events"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post_event(&self, event: &Value) -> (u16, Value) {
        self.post(
            "application/cloudevents+json",
            serde_json::to_vec(event).unwrap(),
        )
        .await
    }

    pub async fn post_batch(&self, events: &[Value]) -> (u16, Value) {
        self.post(
            "application/cloudevents-batch+json",
            serde_json::to_vec(events).unwrap(),
        )
        .await
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// A GET on the admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.admin_url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        status.code()
    }

    /// SIGKILL.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a `callbacks serve` that is expected to refuse to start: `--listen LISTEN`, the admin
/// listener on a free port, the directories, then `extra`. Its exit code and stderr.
pub fn serve_refusal(
    config_dir: &Path,
    data_dir: &Path,
    listen: &str,
    extra: &[&str],
) -> (Option<i32>, String) {
    let out = Command::new(bin())
        .args(["serve", "--listen", listen, "--admin-listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(config_dir)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `callbacks validate-config EXTRA... DIR`: its exit code and stderr.
pub fn validate_config(config_dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(bin())
        .arg("validate-config")
        .args(extra)
        .arg(config_dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `callbacks dlq list --json` (optionally of one client).
pub fn dlq_list(data_dir: &Path, client: Option<&str>) -> Vec<Value> {
    let mut cmd = Command::new(bin());
    cmd.args(["dlq", "list", "--json", "--data-dir"])
        .arg(data_dir);
    if let Some(c) = client {
        cmd.args(["--client", c]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "dlq list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

pub fn dlq_cmd(args: &[&str], data_dir: &Path) -> (bool, String) {
    let out = Command::new(bin())
        .arg("dlq")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A temp root with `config/` and `data/`.
pub fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    let data = root.path().join("data");
    std::fs::create_dir_all(&config).unwrap();
    (root, config, data)
}

/// The files of the data directory whose bytes contain `needle` (e.g. an API key).
pub fn data_files_containing(data_dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            hits.push(path.display().to_string());
        }
    }
    hits
}

/// The same client configuration with another API key on every target.
pub fn with_api_key(mut doc: Value, key: &str) -> Value {
    for t in doc["targets"].as_array_mut().unwrap() {
        t["apiKey"]["headerValue"] = json!(key);
    }
    doc
}

/// Whether a received callback carries `key` and a valid signature over its body with it.
pub fn signed_with(r: &Received, application_id: &str, key: &str) -> bool {
    r.headers.get("x-api-key").map(String::as_str) == Some(key)
        && r.headers
            .get("x-hmac-sha256-signature")
            .is_some_and(|s| callbacks::sign::verify(&r.body, application_id, key, s))
}
