//! `callbacks serve` signs each request when it sends it, with the configuration in force then:
//! a rotated API key reaches callbacks already queued and replayed dead letters (body bytes
//! unchanged), a removed target's callbacks are dead-lettered, and no API key rests in the
//! data directory.

mod serve_support;

use std::collections::HashMap;
use std::time::Duration;

use serve_support::*;

const NEW_KEY: &str = "rotated-api-key-9876543210";

fn fail_forever() -> Behavior {
    Behavior::Fail {
        status: 503,
        remaining: usize::MAX,
        retry_after: None,
    }
}

async fn reloaded(server: &Server, times: usize) {
    wait_for(Duration::from_secs(10), "the reload", || {
        server.stderr().matches("configuration reloaded").count() >= times
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_reaches_queued_callbacks_and_no_key_rests_on_disk() {
    let recv = Receiver::start().await;
    recv.set("k", fail_forever());
    let (_root, config, data) = dirs();
    let doc = client_config("client-k", &[TargetSpec::new("t1", recv.url("k"))]);
    write_config(&config, "client-k", &doc);
    let server = Server::start(&config, &data);
    let evs: Vec<_> = (0..3)
        .map(|i| message_event("client-k", &format!("rot-{i}"), "DELIVERED"))
        .collect();
    assert_eq!(server.post_batch(&evs).await.0, 202);
    wait_for(Duration::from_secs(10), "a failed attempt of each", || {
        recv.on("k")
            .iter()
            .map(Received::idempotency_key)
            .collect::<std::collections::HashSet<_>>()
            .len()
            == 3
    })
    .await;
    let before: HashMap<String, Vec<u8>> = recv
        .on("k")
        .into_iter()
        .map(|r| {
            assert!(signed_with(&r, "app-client-k", API_KEY));
            (r.idempotency_key(), r.body)
        })
        .collect();

    write_config(&config, "client-k", &with_api_key(doc, NEW_KEY));
    reloaded(&server, 1).await;
    let seen = recv.on("k").len();
    recv.set("k", Behavior::Ok);
    wait_for(
        Duration::from_secs(10),
        "delivery after the rotation",
        || recv.delivered_keys("k").len() == 3,
    )
    .await;
    for r in recv.on("k").iter().skip(seen).filter(|r| r.status == 200) {
        assert!(
            signed_with(r, "app-client-k", NEW_KEY),
            "sent with the new key and signed with it"
        );
        assert_eq!(before[&r.idempotency_key()], r.body, "body bytes unchanged");
    }
    assert_eq!(server.terminate(), Some(0));
    for key in [API_KEY, NEW_KEY] {
        assert_eq!(data_files_containing(&data, key), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_after_rotation_and_a_removed_target_is_dead_lettered() {
    let recv = Receiver::start().await;
    recv.set(
        "p",
        Behavior::Fail {
            status: 400,
            remaining: usize::MAX,
            retry_after: None,
        },
    );
    recv.set("gone", fail_forever());
    let (_root, config, data) = dirs();
    let doc = client_config(
        "client-p",
        &[
            TargetSpec::new("t1", recv.url("p")),
            TargetSpec::new("t2", recv.url("gone")),
        ],
    );
    write_config(&config, "client-p", &doc);
    let server = Server::start(&config, &data);
    assert_eq!(
        server
            .post_event(&message_event("client-p", "rep-1", "DELIVERED"))
            .await
            .0,
        202
    );
    wait_for(
        Duration::from_secs(10),
        "the dead letter and a retry",
        || dlq_list(&data, None).len() == 1 && !recv.on("gone").is_empty(),
    )
    .await;
    let first = recv.on("p")[0].clone();
    assert!(signed_with(&first, "app-client-p", API_KEY));

    // Rotate the key and drop target t2: t1's dead letter replays with the new key; t2's
    // queued callback is dead-lettered with the reason.
    let mut rotated = with_api_key(doc, NEW_KEY);
    rotated["targets"].as_array_mut().unwrap().truncate(1);
    rotated["subscriptions"][0]["targetIds"] = serde_json::json!(["t1"]);
    write_config(&config, "client-p", &rotated);
    reloaded(&server, 1).await;
    wait_for(
        Duration::from_secs(10),
        "t2's callback dead-lettered",
        || dlq_list(&data, None).iter().any(|e| e["targetId"] == "t2"),
    )
    .await;
    let gone = dlq_list(&data, None)
        .into_iter()
        .find(|e| e["targetId"] == "t2")
        .unwrap();
    assert_eq!(gone["reason"], "target is no longer configured");
    assert_eq!(gone["subscriptionIds"], serde_json::json!(["all-statuses"]));

    recv.set("p", Behavior::Ok);
    let t1 = dlq_list(&data, None)
        .into_iter()
        .find(|e| e["targetId"] == "t1")
        .unwrap();
    let (ok, text) = dlq_cmd(&["replay", "--id", t1["id"].as_str().unwrap()], &data);
    assert!(ok, "{text}");
    wait_for(Duration::from_secs(10), "the replayed callback", || {
        !recv.delivered_keys("p").is_empty()
    })
    .await;
    let replayed = recv.on("p").into_iter().find(|r| r.status == 200).unwrap();
    assert!(signed_with(&replayed, "app-client-p", NEW_KEY));
    assert_eq!(replayed.body, first.body);
    assert_eq!(server.terminate(), Some(0));
    for key in [API_KEY, NEW_KEY] {
        assert_eq!(data_files_containing(&data, key), Vec::<String>::new());
    }
}
