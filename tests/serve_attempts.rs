//! The attempts API against a real `callbacks serve` run delivering to `callbacks receive`: one
//! callback retried (`force-503-`), one dead-lettered (`force-400-`), one delivered. Each
//! endpoint's answers are checked for what they say and validated against
//! `docs/attempts-api.openapi.json`.

mod receive_support;
mod serve_support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use receive_support::Proc;
use serve_support::openapi::{conforms, Admin};
use serve_support::{client_config, message_event, message_id_of, TargetSpec};

#[tokio::test]
async fn attempts_api_follows_queued_dead_lettered_and_delivered_callbacks() {
    let (root, config, data) = serve_support::dirs();
    let recv_config = serve_support::receiver_config(root.path(), "c1");
    let (receiver, raddr) = Proc::receive(&recv_config, &["--json"]);
    let spec = TargetSpec::new("t1", format!("http://{raddr}/cb"));
    serve_support::write_config(&config, "c1", &client_config("c1", &[spec]));
    let (serve, ingest, admin) = Proc::serve(&config, &data);
    let admin = Admin::new(admin);

    let mut retrying = message_event("c1", "evt-retrying", "DELIVERED");
    retrying["data"]["messageReference"] = json!("force-503-always");
    let mut dead = message_event("c1", "evt-dead", "DELIVERED");
    dead["data"]["messageReference"] = json!("force-400-permanent");
    let delivered = message_event("c1", "evt-ok", "DELIVERED");
    for e in [&retrying, &dead, &delivered] {
        assert_eq!(serve.post_event(e).await.0, 202);
    }
    // The receiver answered: 503 at least twice, 400 once, 202 once.
    let start = Instant::now();
    loop {
        let answers: Vec<u64> = receiver
            .json_lines()
            .iter()
            .filter_map(|l| l["answer"].as_u64())
            .collect();
        if answers.iter().filter(|a| **a == 503).count() >= 2
            && answers.contains(&400)
            && answers.contains(&202)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            receiver.lines()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Queued: the retrying one, with its 503 attempts and a next attempt time.
    let (status, queued) = admin
        .get(
            "/clients/{clientId}/callbacks",
            "/clients/c1/callbacks?state=queued&limit=10",
        )
        .await;
    assert_eq!(status, 200);
    let list = queued["callbacks"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{queued:#}");
    let q = &list[0];
    assert_eq!(q["state"], "queued");
    assert_eq!(q["eventId"], "evt-retrying");
    assert_eq!(q["messageId"], message_id_of("evt-retrying").as_str());
    assert!(q["attempts"].as_u64().unwrap() >= 1);
    assert!(
        q["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == 503),
        "{q}"
    );
    assert!(q["nextAttemptAt"].is_string());
    let (status, one) = admin
        .get("/callbacks/{id}", &format!("/callbacks/{}", q["id"]))
        .await;
    assert_eq!((status, &one["eventId"]), (200, &json!("evt-retrying")));

    // Dead-lettered: the 400, with the reason and the DLQ entry id.
    let (_, dlq) = admin
        .get(
            "/clients/{clientId}/callbacks",
            "/clients/c1/callbacks?state=dlq",
        )
        .await;
    let d = &dlq["callbacks"][0];
    assert_eq!(
        (d["state"].as_str(), d["eventId"].as_str()),
        (Some("dead_lettered"), Some("evt-dead"))
    );
    assert!(d["reason"].as_str().unwrap().contains("HTTP 400"), "{d}");
    assert!(d["dlqId"].is_i64());
    assert_eq!(d["history"][0]["status"], 400);
    let (status, one) = admin
        .get("/callbacks/{id}", &format!("/callbacks/{}", d["id"]))
        .await;
    assert_eq!((status, &one["state"]), (200, &json!("dead_lettered")));

    // The summary.
    let (status, s) = admin
        .get("/clients/{clientId}/summary", "/clients/c1/summary")
        .await;
    assert_eq!(status, 200);
    assert_eq!(s["queued"], 1);
    assert_eq!(s["delivered"], 1);
    assert_eq!(s["deadLettered"], 1);
    assert_eq!(s["dlqDepth"], 1);
    assert!(s["retried"].as_u64().unwrap() >= 1, "{s}");
    let t = &s["targets"][0];
    assert_eq!(
        (t["targetId"].as_str(), t["circuit"].as_str()),
        (Some("t1"), Some("closed"))
    );
    assert!(
        t["lastSuccessAt"].is_string() && t["lastFailureAt"].is_string(),
        "{t}"
    );

    // Refusals, documented too.
    assert_eq!(
        admin.get("/callbacks/{id}", "/callbacks/987654").await.0,
        404
    );
    assert_eq!(admin.get("/callbacks/{id}", "/callbacks/abc").await.0, 400);
    assert_eq!(
        admin
            .get(
                "/clients/{clientId}/callbacks",
                "/clients/c1/callbacks?state=gone"
            )
            .await
            .0,
        400
    );
    assert_eq!(
        admin
            .get(
                "/clients/{clientId}/callbacks",
                "/clients/c1/callbacks?limit=0"
            )
            .await
            .0,
        400
    );
    assert_eq!(
        admin
            .get("/clients/{clientId}/summary", "/clients/nobody/summary")
            .await
            .0,
        404
    );

    // Never on the ingest port.
    let r = admin
        .http
        .get(format!("{ingest}/clients/c1/summary"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// The ingest answer lists the callbacks it queued with their ids (the first 1000), and each
/// id finds its callback on the admin listener; the answer validates against the OpenAPI file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_answer_lists_the_ids_to_follow_each_callback_by() {
    let (_root, config, data) = serve_support::dirs();
    // Nothing listens on port 9: the callbacks stay queued, retried.
    let specs = [
        TargetSpec::new("t1", "http://127.0.0.1:9/a".into()),
        TargetSpec::new("t2", "http://127.0.0.1:9/b".into()),
    ];
    serve_support::write_config(&config, "c1", &client_config("c1", &specs));
    let server = serve_support::Server::start(&config, &data);
    let admin = Admin::new(server.admin_url(""));
    let events = [
        message_event("c1", "follow-1", "DELIVERED"),
        message_event("c1", "follow-2", "FAILED"),
    ];
    let (status, answer) = server.post_batch(&events).await;
    assert_eq!(status, 202, "{answer}");
    conforms(&admin.api, "post", "/events", 202, &answer);
    assert_eq!(answer["callbacks"], 4);
    let queued = answer["queued"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = queued
        .iter()
        .map(|q| {
            (
                q["eventId"].as_str().unwrap(),
                q["targetId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("follow-1", "t1"),
            ("follow-1", "t2"),
            ("follow-2", "t1"),
            ("follow-2", "t2")
        ]
    );
    let mut ids = std::collections::HashSet::new();
    for q in queued {
        assert!(ids.insert(q["id"].as_i64().unwrap()), "{answer}");
        let (status, one) = admin
            .get("/callbacks/{id}", &format!("/callbacks/{}", q["id"]))
            .await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(
            (&one["eventId"], &one["targetId"], &one["clientId"]),
            (&q["eventId"], &q["targetId"], &json!("c1"))
        );
        assert_eq!(one["state"], "queued");
    }
    // A single event: the same list.
    let (status, answer) = server
        .post_event(&message_event("c1", "follow-3", "DELIVERED"))
        .await;
    assert_eq!(status, 202);
    conforms(&admin.api, "post", "/events", 202, &answer);
    assert_eq!(answer["queued"].as_array().unwrap().len(), 2);
    // The list is capped; `callbacks` counts them all.
    let many: Vec<Value> = (0..600)
        .map(|i| message_event("c1", &format!("many-{i}"), "DELIVERED"))
        .collect();
    let (status, answer) = server.post_batch(&many).await;
    assert_eq!(status, 202);
    conforms(&admin.api, "post", "/events", 202, &answer);
    assert_eq!(answer["callbacks"], 1200);
    assert_eq!(answer["queued"].as_array().unwrap().len(), 1000);
}

/// `POST /clients/{clientId}/dlq/replay` against a real serve run: by id, then all; refusals;
/// every answer validated against the OpenAPI file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_over_the_admin_api() {
    use serve_support::{key_of, wait_for, Behavior, Receiver};
    let receiver = Receiver::start().await;
    // The first two requests are refused for good (400): both callbacks are dead-lettered.
    receiver.set(
        "cb",
        Behavior::Fail {
            status: 400,
            remaining: 2,
            retry_after: None,
        },
    );
    let (_root, config, data) = serve_support::dirs();
    let spec = TargetSpec::new("t1", receiver.url("cb"));
    serve_support::write_config(&config, "c1", &client_config("c1", &[spec]));
    let server = serve_support::Server::start(&config, &data);
    let admin = Admin::new(server.admin_url(""));
    let events = [
        message_event("c1", "replay-1", "DELIVERED"),
        message_event("c1", "replay-2", "DELIVERED"),
    ];
    assert_eq!(server.post_batch(&events).await.0, 202);
    let mut dlq = Vec::new();
    wait_for(Duration::from_secs(15), "two dead letters", || {
        dlq = serve_support::dlq_list(&data, Some("c1"));
        dlq.len() == 2
    })
    .await;
    // `dlq list --json` names the entry by the id `dlq replay --id` takes (a string).
    let first: i64 = dlq.iter().find(|d| d["eventId"] == "replay-1").unwrap()["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap();
    let replay = "/clients/{clientId}/dlq/replay";

    // By id (one that is not a dead letter of this client is reported, not an error).
    let (status, answer) = admin
        .post(
            replay,
            "/clients/c1/dlq/replay",
            &json!({"ids": [first, 987654]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"clientId": "c1", "requeued": 1, "notFound": [987654]})
    );
    wait_for(Duration::from_secs(10), "the replayed callback", || {
        receiver.delivered_keys("cb").contains(&key_of("replay-1"))
    })
    .await;
    assert!(!receiver.delivered_keys("cb").contains(&key_of("replay-2")));
    // Another client's replay does not touch c1's dead letters.
    let (status, _) = admin
        .post(replay, "/clients/other/dlq/replay", &json!({"all": true}))
        .await;
    assert_eq!(status, 404);
    // All.
    let (status, answer) = admin
        .post(replay, "/clients/c1/dlq/replay", &json!({"all": true}))
        .await;
    assert_eq!((status, &answer["requeued"]), (200, &json!(1)), "{answer}");
    wait_for(
        Duration::from_secs(10),
        "the second replayed callback",
        || receiver.delivered_keys("cb").contains(&key_of("replay-2")),
    )
    .await;
    assert!(serve_support::dlq_list(&data, Some("c1")).is_empty());
    // Nothing left; bad bodies.
    let (status, _) = admin
        .post(replay, "/clients/c1/dlq/replay", &json!({"all": true}))
        .await;
    assert_eq!(status, 404);
    for bad in [
        json!({}),
        json!({"ids": []}),
        json!({"ids": [1], "all": true}),
        json!({"all": false}),
    ] {
        let (status, body) = admin.post(replay, "/clients/c1/dlq/replay", &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Never on the ingest port.
    let r = admin
        .http
        .post(server.url("/clients/c1/dlq/replay"))
        .json(&json!({"all": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
