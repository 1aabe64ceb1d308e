//! `callbacks serve` against misbehaving receivers: retries, dead letters and replay,
//! Retry-After, rate limit, circuit breaker, and isolation of a slow client.

mod serve_support;

use std::time::{Duration, Instant};

use serde_json::json;
use serve_support::*;
use tokio::sync::watch;

fn events(client: &str, prefix: &str, n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| message_event(client, &format!("{prefix}-{i}"), "DELIVERED"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_the_receiver_recovers() {
    let recv = Receiver::start().await;
    recv.set(
        "r",
        Behavior::Fail {
            status: 500,
            remaining: 40,
            retry_after: None,
        },
    );
    let (_root, config, data) = dirs();
    write_config(
        &config,
        "client-r",
        &client_config("client-r", &[TargetSpec::new("t1", recv.url("r"))]),
    );
    let server = Server::start(&config, &data);
    let evs = events("client-r", "retry", 20);
    assert_eq!(server.post_batch(&evs).await.0, 202);
    let want: std::collections::HashSet<String> =
        (0..20).map(|i| key_of(&format!("retry-{i}"))).collect();
    wait_for(
        Duration::from_secs(30),
        "every callback after the failures",
        || recv.delivered_keys("r") == want,
    )
    .await;
    // At-least-once without needless duplicates: each key succeeded exactly once here.
    let ok = recv.on("r").iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 20);
    assert!(recv.on("r").iter().filter(|r| r.status == 500).count() == 40);
    assert!(dlq_list(&data, None).is_empty());
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("callbacks_retried_total{client=\"client-r\",target=\"t1\"} 40\n"),
        "{metrics}"
    );
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_go_to_the_clients_dlq_and_replay_delivers_them() {
    let recv = Receiver::start().await;
    recv.set(
        "p",
        Behavior::Fail {
            status: 400,
            remaining: usize::MAX,
            retry_after: None,
        },
    );
    let (_root, config, data) = dirs();
    write_config(
        &config,
        "client-p",
        &client_config("client-p", &[TargetSpec::new("t1", recv.url("p"))]),
    );
    write_config(
        &config,
        "client-q",
        &client_config("client-q", &[TargetSpec::new("t1", recv.url("q"))]),
    );
    let server = Server::start(&config, &data);
    assert_eq!(
        server.post_batch(&events("client-p", "perm", 2)).await.0,
        202
    );
    assert_eq!(
        server.post_batch(&events("client-q", "fine", 2)).await.0,
        202
    );
    wait_for(Duration::from_secs(10), "two dead letters", || {
        dlq_list(&data, None).len() == 2
    })
    .await;
    let dlq = dlq_list(&data, Some("client-p"));
    assert_eq!(dlq.len(), 2);
    for e in &dlq {
        assert_eq!(e["clientId"], "client-p");
        assert_eq!(e["attempts"], 1);
        assert_eq!(e["history"][0]["status"], 400);
        assert!(e["reason"].as_str().unwrap().contains("HTTP 400"));
        assert!(e.get("headers").is_none());
    }
    assert!(
        dlq_list(&data, Some("client-q")).is_empty(),
        "client-q's DLQ is its own"
    );
    let (ok, text) = dlq_cmd(&["list"], &data);
    assert!(
        ok && text.lines().count() == 3
            && text.contains(&format!("{}\t1\tHTTP 400", message_id_of("perm-0"))),
        "{text}"
    );
    assert!(!text.contains(API_KEY));

    // The client is fixed; replay one entry by id, then the rest by client.
    recv.set("p", Behavior::Ok);
    let first = dlq[0]["id"].as_str().unwrap().to_string();
    let (ok, text) = dlq_cmd(&["replay", "--id", &first], &data);
    assert!(ok, "{text}");
    assert!(text.contains("re-queued 1"), "{text}");
    let (ok, text) = dlq_cmd(&["replay", "--client", "client-p"], &data);
    assert!(ok && text.contains("re-queued 1"), "{text}");
    wait_for(Duration::from_secs(10), "replayed callbacks", || {
        recv.delivered_keys("p").len() == 2
    })
    .await;
    assert!(dlq_list(&data, None).is_empty());
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_respected_and_a_negative_one_stops_retrying() {
    let recv = Receiver::start().await;
    recv.set(
        "wait",
        Behavior::Fail {
            status: 429,
            remaining: 1,
            retry_after: Some("1".into()),
        },
    );
    recv.set(
        "stop",
        Behavior::Fail {
            status: 429,
            remaining: usize::MAX,
            retry_after: Some("-1".into()),
        },
    );
    let (_root, config, data) = dirs();
    write_config(
        &config,
        "client-w",
        &client_config(
            "client-w",
            &[
                TargetSpec::new("t1", recv.url("wait")),
                TargetSpec::new("t2", recv.url("stop")),
            ],
        ),
    );
    let server = Server::start(&config, &data);
    assert_eq!(
        server
            .post_event(&message_event("client-w", "ra-1", "DELIVERED"))
            .await
            .0,
        202
    );
    wait_for(
        Duration::from_secs(10),
        "delivery after Retry-After",
        || recv.delivered_keys("wait").len() == 1,
    )
    .await;
    let reqs = recv.on("wait");
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at.duration_since(reqs[0].at);
    // Backoff alone would be 10-20 ms; Retry-After says 1 s. Slack only for clock granularity.
    assert!(gap >= Duration::from_millis(990), "retried after {gap:?}");

    wait_for(
        Duration::from_secs(10),
        "the stopped callback in the DLQ",
        || dlq_list(&data, None).len() == 1,
    )
    .await;
    let dlq = dlq_list(&data, None);
    assert_eq!(dlq[0]["targetId"], "t2");
    assert_eq!(dlq[0]["attempts"], 1);
    assert!(
        dlq[0]["reason"]
            .as_str()
            .unwrap()
            .contains("negative Retry-After"),
        "{}",
        dlq[0]
    );
    assert_eq!(recv.on("stop").len(), 1);
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_never_exceeded() {
    let recv = Receiver::start().await;
    let (_root, config, data) = dirs();
    let mut t = TargetSpec::new("t1", recv.url("rl"));
    t.rate = 25;
    write_config(&config, "client-rl", &client_config("client-rl", &[t]));
    let server = Server::start(&config, &data);
    assert_eq!(
        server.post_batch(&events("client-rl", "rate", 75)).await.0,
        202
    );
    wait_for(Duration::from_secs(20), "every callback", || {
        recv.delivered_keys("rl").len() == 75
    })
    .await;
    let mut at: Vec<Instant> = recv.on("rl").iter().map(|r| r.at).collect();
    at.sort();
    // Request starts are spaced 40 ms apart; allow one extra in a window for network jitter.
    for (i, start) in at.iter().enumerate() {
        let n = at[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(n <= 26, "{n} requests within one second at a limit of 25/s");
    }
    let span = at[at.len() - 1].duration_since(at[0]);
    assert!(
        span >= Duration::from_millis(74 * 40 - 100),
        "75 requests in {span:?}"
    );
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_opens_and_recovers_losing_nothing() {
    let recv = Receiver::start().await;
    recv.set(
        "cb",
        Behavior::Fail {
            status: 503,
            remaining: 4,
            retry_after: None,
        },
    );
    let (_root, config, data) = dirs();
    let mut t = TargetSpec::new("t1", recv.url("cb"));
    t.delivery = json!({"initialBackoffMs": 10, "maxBackoffMs": 20,
        "circuitBreaker": {"enabled": true, "failureThreshold": 3, "cooldownMs": 600}});
    t.rate = 50;
    write_config(&config, "client-cb", &client_config("client-cb", &[t]));
    let server = Server::start(&config, &data);

    // Watch the circuit gauge while it works.
    let metrics_url = server.admin_url("/metrics");
    let saw_open = tokio::spawn(async move {
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(&metrics_url).send().await {
                if r.text()
                    .await
                    .unwrap_or_default()
                    .contains("callbacks_circuit_state{client=\"client-cb\",target=\"t1\"} 1")
                {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    });
    assert_eq!(
        server.post_batch(&events("client-cb", "cb", 10)).await.0,
        202
    );
    wait_for(Duration::from_secs(20), "every callback", || {
        recv.delivered_keys("cb").len() == 10
    })
    .await;
    assert!(saw_open.await.unwrap(), "the circuit never showed as open");

    let reqs = recv.on("cb");
    // After the third failure the circuit opens: the next request is the probe, a cool-down later.
    let third = &reqs[2];
    assert_eq!(third.status, 503);
    let next = &reqs[3];
    assert!(
        next.at.duration_since(third.at) >= Duration::from_millis(590),
        "sent while open"
    );
    // The probe fails (4th failure): open again for another cool-down.
    assert_eq!(next.status, 503);
    assert!(
        reqs[4].at.duration_since(next.at) >= Duration::from_millis(590),
        "sent while open"
    );
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("callbacks_circuit_state{client=\"client-cb\",target=\"t1\"} 0\n"),
        "{metrics}"
    );
    assert!(dlq_list(&data, None).is_empty());
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_does_not_slow_the_others() {
    let recv = Receiver::start().await;
    let (open_tx, open_rx) = watch::channel(false);
    recv.set("slow", Behavior::Gate(open_rx));
    let (_root, config, data) = dirs();
    let mut slow = TargetSpec::new("t1", recv.url("slow"));
    slow.delivery = json!({"initialBackoffMs": 20, "maxBackoffMs": 200, "timeoutMs": 60000});
    write_config(
        &config,
        "client-slow",
        &client_config("client-slow", &[slow]),
    );
    write_config(
        &config,
        "client-fast",
        &client_config("client-fast", &[TargetSpec::new("t1", recv.url("fast"))]),
    );
    let server = Server::start(&config, &data);
    assert_eq!(
        server
            .post_batch(&events("client-slow", "slow", 200))
            .await
            .0,
        202
    );
    assert_eq!(
        server
            .post_batch(&events("client-fast", "fast", 200))
            .await
            .0,
        202
    );
    // The slow client answers nothing until the gate opens; the fast one gets everything anyway.
    wait_for(
        Duration::from_secs(20),
        "the fast client's callbacks",
        || recv.delivered_keys("fast").len() == 200,
    )
    .await;
    assert!(recv.on("slow").is_empty(), "the gate was closed");
    open_tx.send(true).unwrap();
    wait_for(
        Duration::from_secs(20),
        "the slow client's callbacks",
        || recv.delivered_keys("slow").len() == 200,
    )
    .await;
    assert_eq!(server.terminate(), Some(0));
}
