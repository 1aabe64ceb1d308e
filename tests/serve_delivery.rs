//! `callbacks serve` end to end: events in, signed callbacks out, exactly as the core makes
//! them; validation reports; rejects store; configuration reload; SIGTERM.

mod serve_support;

use std::collections::HashMap;
use std::time::Duration;

use callbacks::pipeline::{self, CoreOptions, Outcome};
use serde_json::{json, Value};
use serve_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_signed_callbacks_exactly_as_the_core_makes_them() {
    let recv = Receiver::start().await;
    let (_root, config, data) = dirs();
    write_config(
        &config,
        "client-a",
        &client_config(
            "client-a",
            &[
                TargetSpec::new("t1", recv.url("a1")),
                TargetSpec::new("t2", recv.url("a2")),
            ],
        ),
    );
    write_config(
        &config,
        "client-b",
        &client_config("client-b", &[TargetSpec::new("t1", recv.url("b1"))]),
    );
    let server = Server::start(&config, &data);

    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200, "{body}");

    // One single event, then a batch with two invalid events among valid ones.
    let single = message_event("client-a", "ev-single", "DELIVERED");
    let (status, report) = server.post_event(&single).await;
    assert_eq!(status, 202, "{report}");
    assert_eq!(report["callbacks"], 2);

    let mut batch = Vec::new();
    for i in 0..20 {
        let client = if i % 2 == 0 { "client-a" } else { "client-b" };
        batch.push(message_event(client, &format!("ev-{i}"), "SENDING"));
    }
    let mut bad = message_event("client-a", "ev-bad-status", "NOT_A_STATUS");
    bad["data"]["messageStatus"] = json!("NOT_A_STATUS");
    batch.insert(3, bad);
    batch.insert(7, json!({"id": "not-an-event"}));
    // An event for a client without configuration: accepted, nothing to deliver.
    batch.push(message_event("client-unknown", "ev-unknown", "SENDING"));
    let (status, report) = server.post_batch(&batch).await;
    assert_eq!(status, 207, "{report}");
    assert_eq!(report["accepted"], 21);
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{report}");
    assert_eq!(rejected[0]["index"], 3);
    assert_eq!(rejected[0]["eventId"], "ev-bad-status");
    assert!(
        rejected[0]["errors"][0]["pointer"]
            .as_str()
            .unwrap()
            .contains("messageStatus"),
        "{report}"
    );
    assert_eq!(rejected[1]["index"], 7);
    assert_eq!(rejected[1]["eventId"], "not-an-event");

    // An invalid single event: 400 with the reasons.
    let (status, report) = server
        .post("application/cloudevents+json", b"{\"id\":\"x\"}".to_vec())
        .await;
    assert_eq!(status, 400, "{report}");
    assert_eq!(report["rejected"][0]["eventId"], "x");
    let (status, _) = server.post("text/plain", b"hello".to_vec()).await;
    assert_eq!(status, 415);

    // What the core makes for the same events and the same configuration.
    let configs = callbacks::config::load_dir(&config).unwrap();
    type Expected = (Vec<u8>, Vec<(String, String)>);
    let mut expected: HashMap<(String, String), Expected> = HashMap::new();
    let path_of = |client: &str, target: &str| format!("{}{}", &client[7..8], &target[1..]);
    for ev in std::iter::once(&single).chain(batch.iter()) {
        let Ok(Outcome::Callbacks { callbacks, .. }) = pipeline::process(
            &serde_json::to_vec(ev).unwrap(),
            &configs,
            &CoreOptions::default(),
        ) else {
            continue;
        };
        for c in callbacks {
            let key = key_of(&c.event_id);
            expected.insert(
                (path_of(&c.client_id, &c.target_id), key),
                (c.body.to_vec(), c.headers.clone()),
            );
        }
    }
    assert_eq!(expected.len(), 2 + 10 * 2 + 10);

    wait_for(Duration::from_secs(20), "every callback", || {
        let got = recv.records();
        expected.keys().all(|(path, key)| {
            got.iter()
                .any(|r| &r.path == path && &r.idempotency_key() == key)
        })
    })
    .await;

    for r in recv.records() {
        let key = r.idempotency_key();
        let (body, headers) = expected
            .get(&(r.path.clone(), key.clone()))
            .expect("an expected callback");
        assert_eq!(&r.body, body, "body differs from the core's for {key}");
        for (name, value) in headers {
            assert_eq!(r.headers.get(name), Some(value), "header {name}");
        }
        assert_eq!(
            r.headers.get("x-api-key").map(String::as_str),
            Some(API_KEY)
        );
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/vnd.api+json")
        );
        let client = if r.path.starts_with('a') {
            "client-a"
        } else {
            "client-b"
        };
        let sig = r
            .headers
            .get("x-hmac-sha256-signature")
            .expect("signature header");
        assert!(
            callbacks::sign::verify(&r.body, &format!("app-{client}"), API_KEY, sig),
            "bad signature"
        );
    }

    // Metrics, rejects store, and no secret in the logs.
    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("callbacks_events_received_total 25\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callbacks_events_rejected_total 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callbacks_delivered_total{client=\"client-a\",target=\"t1\"} 11\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callbacks_queue_depth{client=\"client-b\",target=\"t1\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callbacks_delivery_latency_seconds_count 32\n"),
        "{metrics}"
    );
    let conn = rusqlite::Connection::open(data.join("callbacks.db")).unwrap();
    let rejects: i64 = conn
        .query_row("SELECT count(*) FROM rejects", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rejects, 3);
    let events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 22);
    assert!(
        !server.stderr().contains(API_KEY),
        "the API key reached the logs"
    );
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_element_that_is_rejected_is_kept_exactly_as_it_was_sent() {
    let recv = Receiver::start().await;
    let (_root, config, data) = dirs();
    write_config(
        &config,
        "client-a",
        &client_config("client-a", &[TargetSpec::new("t1", recv.url("a"))]),
    );
    let server = Server::start(&config, &data);
    let good =
        serde_json::to_string_pretty(&message_event("client-a", "ev-good", "DELIVERED")).unwrap();
    // Spacing, key order and an escape that a re-serialization would change.
    let bad = "{ \"zz\" : 1 ,\n  \"id\":\"ev-\\u0062ad\", \"type\": 7 }";
    let body = format!("[\n  {good},\n  {bad}\n]");
    let (status, report) = server
        .post("application/cloudevents-batch+json", body.into_bytes())
        .await;
    assert_eq!(status, 207, "{report}");
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(report["rejected"][0]["index"], 1, "{report}");
    assert_eq!(report["rejected"][0]["eventId"], "ev-bad", "{report}");
    wait_for(Duration::from_secs(10), "the good event's callback", || {
        recv.records().len() == 1
    })
    .await;
    let conn = rusqlite::Connection::open(data.join("callbacks.db")).unwrap();
    let kept: Vec<u8> = conn
        .query_row("SELECT body FROM rejects", [], |r| r.get(0))
        .unwrap();
    assert_eq!(String::from_utf8(kept).unwrap(), bad);
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_need_allow_http() {
    let (_root, config, data) = dirs();
    write_config(
        &config,
        "client-a",
        &client_config(
            "client-a",
            &[TargetSpec::new("t1", "http://127.0.0.1:9/x".into())],
        ),
    );
    let out = std::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/targets/0/invocationEndpoint") && stderr.contains("https://"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_reloads_and_keeps_the_last_good_one() {
    let recv = Receiver::start().await;
    let (_root, config, data) = dirs();
    write_config(
        &config,
        "client-a",
        &client_config("client-a", &[TargetSpec::new("t1", recv.url("one"))]),
    );
    let server = Server::start(&config, &data);

    // Add a second target: picked up without a restart.
    write_config(
        &config,
        "client-a",
        &client_config(
            "client-a",
            &[
                TargetSpec::new("t1", recv.url("one")),
                TargetSpec::new("t2", recv.url("two")),
            ],
        ),
    );
    wait_for(Duration::from_secs(10), "the reload", || {
        server.stderr().contains("configuration reloaded")
    })
    .await;
    let (status, _) = server
        .post_event(&message_event("client-a", "ev-1", "DELIVERED"))
        .await;
    assert_eq!(status, 202);
    wait_for(Duration::from_secs(10), "delivery to both targets", || {
        recv.delivered_keys("one").contains(&key_of("ev-1"))
            && recv.delivered_keys("two").contains(&key_of("ev-1"))
    })
    .await;

    // An invalid file: reported, and the last good configuration stays in force.
    std::fs::write(
        config.join("client-a.json"),
        b"{\"clientId\": \"client-a\", \"targets\": 7}",
    )
    .unwrap();
    wait_for(
        Duration::from_secs(10),
        "the invalid file to be reported",
        || server.stderr().contains("invalid configuration"),
    )
    .await;
    let (status, _) = server
        .post_event(&message_event("client-a", "ev-2", "DELIVERED"))
        .await;
    assert_eq!(status, 202);
    wait_for(
        Duration::from_secs(10),
        "delivery with the last good configuration",
        || {
            recv.delivered_keys("one").contains(&key_of("ev-2"))
                && recv.delivered_keys("two").contains(&key_of("ev-2"))
        },
    )
    .await;
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        !metrics.contains("callbacks_config_reload_errors_total 0\n"),
        "{metrics}"
    );
    assert_eq!(server.terminate(), Some(0));
    let _: Value = json!(null);
}
