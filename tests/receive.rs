//! `callbacks receive` as a client developer uses it: real signed callbacks from the core
//! (`pipeline::process`) posted over loopback to the binary; its answers and its lines.

mod common;
mod receive_support;

use std::net::SocketAddr;
use std::time::Duration;

use callbacks::pipeline::{self, CoreOptions, Outcome};
use callbacks::sign;
use serde_json::{json, Value};

use receive_support::Proc;

/// A config directory with clients `a` and `b`, both at `/callbacks` (different keys), and the
/// signed callback the core makes for `event`.
struct Fixture {
    _dir: tempfile::TempDir,
    configs: callbacks::config::ConfigSet,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = common::config_dir(&[
            common::client_config("client-a", "http://127.0.0.1:9/callbacks"),
            common::client_config("client-b", "http://127.0.0.1:9/callbacks"),
        ]);
        let configs = callbacks::config::load_dir(dir.path()).unwrap();
        Fixture { _dir: dir, configs }
    }

    fn path(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The one callback of `event` (headers lower case, exact body).
    fn callback(&self, event: &Value) -> pipeline::Callback {
        let bytes = serde_json::to_vec(event).unwrap();
        match pipeline::process(&bytes, &self.configs, &CoreOptions::default()).unwrap() {
            Outcome::Callbacks { mut callbacks, .. } => {
                assert_eq!(callbacks.len(), 1);
                callbacks.remove(0)
            }
            _ => panic!("the event makes a callback"),
        }
    }
}

fn message(client: &str) -> Value {
    common::message_event("evt-1", client, "DELIVERED")
}

/// Posts `body` with `headers` to `path`; the status and the `Retry-After` answered.
async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (u16, Option<String>) {
    let mut req = reqwest::Client::new().post(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let r = req.body(body).send().await.unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry_after)
}

async fn post_cb(addr: SocketAddr, cb: &pipeline::Callback) -> (u16, Option<String>) {
    post(addr, "/callbacks", &cb.headers, cb.body.to_vec()).await
}

fn with_header(cb: &pipeline::Callback, name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = cb
        .headers
        .iter()
        .filter(|(k, _)| k != name)
        .cloned()
        .collect();
    if let Some(v) = value {
        h.push((name.to_string(), v.to_string()));
    }
    h
}

#[tokio::test]
async fn a_good_callback_is_accepted_and_printed_with_its_fields() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &["--json"]);
    let cb = f.callback(&message("client-b"));
    assert_eq!(post_cb(addr, &cb).await, (202, None));
    let line = p.wait_json(1);
    let key = sign::idempotency_key(
        common::message_event("evt-1", "x", "X")["source"]
            .as_str()
            .unwrap(),
        "evt-1",
    );
    assert_eq!(
        line["clientId"], "client-b",
        "found by API key among the targets at the path"
    );
    assert_eq!(line["targetId"], "target-1");
    assert_eq!(line["path"], "/callbacks");
    assert_eq!(line["type"], "MessageStatus");
    assert_eq!(line["messageId"], common::MESSAGE_ID);
    assert_eq!(line["status"], "delivered");
    assert_eq!(line["idempotencyKey"], key.as_str());
    assert_eq!(line["signature"], "ok");
    assert_eq!(line["answer"], 202);
    assert!(line.get("reason").is_none(), "{line}");
    let text = p.lines().join("\n");
    assert!(
        !text.contains("key-client-b"),
        "the API key is never printed: {text}"
    );
}

#[tokio::test]
async fn the_readable_line_names_client_target_and_signature() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &[]);
    let cb = f.callback(&common::channel_event(
        "evt-2",
        "client-a",
        "DELIVERED",
        "read",
    ));
    assert_eq!(post_cb(addr, &cb).await.0, 202);
    let line = p.wait_line(Duration::from_secs(10), |l| {
        l.contains("client-a/target-1 ChannelStatus")
    });
    for part in [
        " ChannelStatus ",
        &format!("messageId={}", common::MESSAGE_ID),
        "status=delivered",
        "supplierStatus=read",
        &format!(
            "idempotencyKey={}",
            sign::idempotency_key("/data-plane/client-callbacks/nhs-notify-test/core", "evt-2")
        ),
        "signature ok -> 202",
    ] {
        assert!(line.contains(part), "{part:?} in {line:?}");
    }
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_403() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &["--json"]);
    let cb = f.callback(&message("client-a"));
    // Signed with the other client's key: the right API key, the wrong HMAC.
    let wrong = sign::signature(&cb.body, "app-client-b", "key-client-b");
    let h = with_header(&cb, sign::SIGNATURE_HEADER, Some(&wrong));
    assert_eq!(post(addr, "/callbacks", &h, cb.body.to_vec()).await.0, 403);
    // One byte more than was signed.
    let mut body = cb.body.to_vec();
    body.push(b' ');
    assert_eq!(post(addr, "/callbacks", &cb.headers, body).await.0, 403);
    let h = with_header(&cb, sign::SIGNATURE_HEADER, None);
    assert_eq!(post(addr, "/callbacks", &h, cb.body.to_vec()).await.0, 403);
    let lines: Vec<Value> = (1..=3).map(|n| p.wait_json(n)).collect();
    assert_eq!(lines[0]["signature"], "bad");
    assert_eq!(lines[0]["clientId"], "client-a");
    assert_eq!(lines[1]["signature"], "bad");
    assert_eq!(lines[2]["signature"], "missing");
    assert!(lines.iter().all(|l| l["answer"] == 403));
}

#[tokio::test]
async fn a_wrong_or_missing_api_key_is_401() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &["--json"]);
    let cb = f.callback(&message("client-a"));
    let h = with_header(&cb, "x-api-key", Some("not-the-key"));
    assert_eq!(post(addr, "/callbacks", &h, cb.body.to_vec()).await.0, 401);
    let h = with_header(&cb, "x-api-key", None);
    assert_eq!(post(addr, "/callbacks", &h, cb.body.to_vec()).await.0, 401);
    for n in 1..=2 {
        let l = p.wait_json(n);
        assert_eq!(l["answer"], 401);
        assert_eq!(l["signature"], "unchecked");
        assert_eq!(l["clientId"], Value::Null);
        assert!(l["reason"].as_str().unwrap().contains("API key"), "{l}");
    }
    assert!(!p.lines().join("\n").contains("not-the-key"));
}

#[tokio::test]
async fn an_unknown_path_finds_the_target_by_api_key() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &["--json"]);
    let cb = f.callback(&message("client-b"));
    assert_eq!(
        post(addr, "/somewhere/else", &cb.headers, cb.body.to_vec())
            .await
            .0,
        202
    );
    let l = p.wait_json(1);
    assert_eq!(
        (l["clientId"].as_str(), l["path"].as_str()),
        (Some("client-b"), Some("/somewhere/else"))
    );
}

#[tokio::test]
async fn a_body_that_does_not_match_the_payload_schema_is_400_naming_the_field() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &["--json"]);
    let cb = f.callback(&message("client-a"));
    let mut body: Value = serde_json::from_slice(&cb.body).unwrap();
    body["data"][0]["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("messageStatus");
    body["data"][0]["attributes"]["channels"] = json!("not a list");
    let bytes = serde_json::to_vec(&body).unwrap();
    let sig = sign::signature(&bytes, "app-client-a", "key-client-a");
    let h = with_header(&cb, sign::SIGNATURE_HEADER, Some(&sig));
    assert_eq!(post(addr, "/callbacks", &h, bytes).await.0, 400);
    // Signed, but not JSON; and the right JSON with another content type.
    let sig = sign::signature(b"nope", "app-client-a", "key-client-a");
    let h = with_header(&cb, sign::SIGNATURE_HEADER, Some(&sig));
    assert_eq!(post(addr, "/callbacks", &h, b"nope".to_vec()).await.0, 400);
    let h = with_header(&cb, "content-type", Some("application/json"));
    assert_eq!(post(addr, "/callbacks", &h, cb.body.to_vec()).await.0, 415);
    let l = p.wait_json(1);
    assert_eq!(
        (l["answer"].as_u64(), l["signature"].as_str()),
        (Some(400), Some("ok"))
    );
    let reason = l["reason"].as_str().unwrap();
    assert!(
        reason.contains("/data/0/attributes/messageStatus: is required"),
        "{reason}"
    );
    assert!(reason.contains("/data/0/attributes/channels"), "{reason}");
    assert!(p.wait_json(2)["reason"]
        .as_str()
        .unwrap()
        .contains("not JSON"));
    assert!(p.wait_json(3)["reason"]
        .as_str()
        .unwrap()
        .contains("application/vnd.api+json"));
}

#[tokio::test]
async fn fail_first_fails_the_first_n_then_accepts() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &["--json", "--fail-first", "2"]);
    let cb = f.callback(&message("client-a"));
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(post_cb(addr, &cb).await);
    }
    assert_eq!(got, [(500, None), (500, None), (202, None)]);
    assert!(p.wait_json(1)["reason"]
        .as_str()
        .unwrap()
        .contains("--fail-first 2"));
}

#[tokio::test]
async fn status_and_retry_after_answer_every_callback() {
    let f = Fixture::new();
    let (_p, addr) = Proc::receive(f.path(), &["--status", "429", "--retry-after", "7"]);
    let cb = f.callback(&message("client-a"));
    for _ in 0..2 {
        assert_eq!(post_cb(addr, &cb).await, (429, Some("7".into())));
    }
    let (_p, addr) = Proc::receive(
        f.path(),
        &[
            "--fail-first",
            "1",
            "--status",
            "503",
            "--retry-after",
            "-1",
        ],
    );
    assert_eq!(post_cb(addr, &cb).await, (503, Some("-1".into())));
    assert_eq!(post_cb(addr, &cb).await, (202, None));
}

#[tokio::test]
async fn a_force_prefix_on_the_message_reference_answers_that_status() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &["--json"]);
    let mut event = message("client-a");
    event["data"]["messageReference"] = json!("force-503-timeout-test");
    let cb = f.callback(&event);
    assert_eq!(post_cb(addr, &cb).await.0, 503);
    assert_eq!(
        post_cb(addr, &cb).await.0,
        503,
        "every time, not only the first"
    );
    assert_eq!(
        post_cb(addr, &f.callback(&message("client-a"))).await.0,
        202
    );
    let l = p.wait_json(1);
    assert_eq!(l["messageReference"], "force-503-timeout-test");
    assert!(l["reason"].as_str().unwrap().contains("force-503-"), "{l}");
}

#[tokio::test]
async fn bodies_past_the_limit_are_413_and_other_methods_405() {
    let f = Fixture::new();
    let (p, addr) = Proc::receive(f.path(), &["--json"]);
    let cb = f.callback(&message("client-a"));
    let big = vec![b' '; 1024 * 1024 + 1];
    assert_eq!(post(addr, "/callbacks", &cb.headers, big).await.0, 413);
    let r = reqwest::get(format!("http://{addr}/callbacks"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(p.wait_json(1)["answer"], 413);
    assert_eq!(p.wait_json(2)["answer"], 405);
    // Still serving.
    assert_eq!(post_cb(addr, &cb).await.0, 202);
}

#[test]
fn an_invalid_configuration_is_refused_at_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.json"), br#"{"clientId": "x"}"#).unwrap();
    let out = std::process::Command::new(receive_support::bin())
        .args(["receive", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.json") && err.contains("is required"),
        "{err}"
    );
}
