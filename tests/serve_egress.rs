//! The egress guard of `callbacks serve` at connection time (issue 13), on loopback: a host
//! name that passes validation but resolves to 127.0.0.1 (DNS rebinding, played with
//! `--resolve NAME=127.0.0.1`) is never connected to; the refusal is a recorded delivery
//! failure with its reason; `--allow-private-egress` lets the same callback through.

mod serve_support;

use std::time::Duration;

use serde_json::Value;

use serve_support::{client_config, dirs, message_event, wait_for, write_config, Receiver, Server};
use serve_support::{key_of, TargetSpec};

const PIN: &str = "rebind.test=127.0.0.1";
const REASON: &str =
    "egress refused: rebind.test resolves only to non-public addresses (127.0.0.1)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_is_refused_unless_private_egress_is_allowed() {
    let receiver = Receiver::start().await;
    let (_root, config, data) = dirs();
    let url = format!("http://rebind.test:{}/cb", receiver.addr.port());
    write_config(
        &config,
        "c1",
        &client_config("c1", &[TargetSpec::new("t", url)]),
    );
    let server = Server::start_with(&config, &data, &["--allow-http", "--resolve", PIN]);
    let (status, body) = server
        .post_event(&message_event("c1", "rebind-1", "DELIVERED"))
        .await;
    assert_eq!(status, 202, "{body}");
    wait_for(Duration::from_secs(15), "a refused attempt logged", || {
        server.stderr().contains(REASON)
    })
    .await;
    // Recorded as an attempt of the queued callback (the attempts API), never sent.
    let (status, text) = server
        .get("/clients/c1/callbacks?state=queued&limit=10")
        .await;
    assert_eq!(status, 200, "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let history = list["callbacks"][0]["history"].as_array().unwrap().clone();
    assert!(!history.is_empty(), "{list:#}");
    assert!(
        history
            .iter()
            .all(|a| a["outcome"].as_str().is_some_and(|e| e.contains(REASON))),
        "{list:#}"
    );
    assert!(receiver.records().is_empty(), "a request reached loopback");
    assert_eq!(server.terminate(), Some(0));

    // The same queue, with private egress allowed: delivered.
    let server = Server::start_with(
        &config,
        &data,
        &["--allow-http", "--allow-private-egress", "--resolve", PIN],
    );
    wait_for(Duration::from_secs(20), "delivery once allowed", || {
        receiver.delivered_keys("cb").contains(&key_of("rebind-1"))
    })
    .await;
    assert_eq!(server.terminate(), Some(0));
}

#[test]
fn resolve_takes_name_equals_ip() {
    let (_root, config, data) = dirs();
    let (code, err) = serve_support::serve_refusal(
        &config,
        &data,
        "127.0.0.1:0",
        &["--resolve", "rebind.test:127.0.0.1"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not NAME=IP"), "{err}");
}
