//! `callbacks serve` end to end over HTTPS with a client certificate: the receiver requires mTLS
//! and has a private CA (both made in the test with rcgen). A target whose `delivery.mtls` names
//! the client certificate, key and CA gets its callback, signed, with nothing else changed; a
//! target on the same server without them cannot complete the handshake, and its callback is
//! dead-lettered with the TLS failure in its history (nothing lost). No secret reaches the log.

mod delivery_support;
mod serve_support;

use std::time::Duration;

use delivery_support as tls;
use serde_json::json;
use serve_support::{
    client_config, dirs, dlq_list, key_of, message_event, wait_for, write_config, Server,
    TargetSpec, API_KEY,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_with_a_client_certificate_and_dead_letters_an_untrusted_target() {
    let pki = tls::Pki::new();
    let receiver = tls::start(&pki, true, |_, _| tls::Reply::status(200)).await;
    let (_root, config, data) = dirs();
    let mtls = TargetSpec {
        delivery: json!({
            "initialBackoffMs": 20, "maxBackoffMs": 200,
            "mtls": {
                "certPemFile": pki.client_cert_pem,
                "keyPemFile": pki.client_key_pem,
                "caPemFile": pki.ca_pem,
            }
        }),
        ..TargetSpec::new("mtls", receiver.url("/mtls"))
    };
    let untrusted = TargetSpec {
        delivery: json!({"initialBackoffMs": 20, "maxBackoffMs": 100, "maxRetryDurationSeconds": 1}),
        ..TargetSpec::new("untrusted", receiver.url("/untrusted"))
    };
    let doc = client_config("client-m", &[mtls, untrusted]);
    write_config(&config, "client-m", &doc);
    // https only: no --allow-http.
    let server = Server::start_with(
        &config,
        &data,
        &["--allow-private-egress", "--reload-interval-ms", "100"],
    );

    let event = message_event("client-m", "mtls-1", "DELIVERED");
    assert_eq!(server.post_event(&event).await.0, 202);

    wait_for(Duration::from_secs(10), "the mTLS delivery", || {
        receiver.requests().iter().any(|r| r.path == "/mtls")
    })
    .await;
    let got = receiver.requests();
    let req = got.iter().find(|r| r.path == "/mtls").expect("request");
    assert_eq!(req.header("content-type"), Some("application/vnd.api+json"));
    assert_eq!(req.header("x-api-key"), Some(API_KEY));
    let signature = req.header("x-hmac-sha256-signature").expect("signature");
    assert!(callbacks::sign::verify(
        &req.body,
        "app-client-m",
        API_KEY,
        signature
    ));
    assert_eq!(req.idempotency_key(), key_of("mtls-1"));

    // The target that trusts only the system roots never gets through the handshake: its
    // callback is retried for its budget, then kept in the client's DLQ with the reason.
    wait_for(
        Duration::from_secs(15),
        "the untrusted target's dead letter",
        || !dlq_list(&data, Some("client-m")).is_empty(),
    )
    .await;
    let dlq = dlq_list(&data, Some("client-m"));
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert_eq!(dlq[0]["targetId"], "untrusted");
    let history = dlq[0]["history"].as_array().expect("history");
    assert!(!history.is_empty());
    let error = history[0]["outcome"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("tls") || error.contains("connect"),
        "attempt error should say why: {error}"
    );
    assert!(
        receiver.requests().iter().all(|r| r.path != "/untrusted"),
        "nothing reached the receiver without a trusted handshake"
    );
    assert_eq!(
        receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/mtls")
            .count(),
        1,
        "delivered exactly once"
    );

    let log = server.stderr();
    assert!(!log.contains(API_KEY), "API key in the log");
    let key_pem = std::fs::read_to_string(&pki.client_key_pem).expect("key");
    let key_body = key_pem.lines().nth(1).expect("key line");
    assert!(!log.contains(key_body), "client key in the log");
}
