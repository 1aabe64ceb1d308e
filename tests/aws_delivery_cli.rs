#![cfg(all(feature = "aws", feature = "local"))]
//! `callbacks dlq list|replay --sqs-queue-url` against a moto SQS DLQ.

mod aws_support;

use std::process::Command;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};

use aws_support::*;
use callbacks::aws::delivery::sqs::dead_letter_attributes;
use callbacks::aws::delivery::{AttemptRecord, DeadLetter};

fn callbacks(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callbacks"));
    cmd.args(args);
    for (k, v) in moto_env(&moto().endpoint) {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run callbacks");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn body(client: &str, event_id: &str) -> String {
    json!({"version": "0", "detail-type": "ClientCallback", "source": "uk.nhs.notify.client-callbacks",
        "detail": {"clientId": client, "targetId": "target-1", "subscriptionIds": ["s"], "signature": "00",
            "payload": {"data": []}, "eventId": event_id, "messageId": "M1", "traceparent": null}})
    .to_string()
}

#[tokio::test]
async fn dlq_list_and_replay_work_on_an_sqs_dlq() {
    let sqs = sqs_client(&moto().endpoint).await;
    let name = unique("cli-https");
    let queue = create_queue(&sqs, &name).await;
    let dlq = create_queue(&sqs, &format!("{name}-dlq")).await;
    for (client, ev) in [("client-a", "ev-a"), ("client-b", "ev-b")] {
        let letter = DeadLetter {
            body: body(client, ev),
            client_id: Some(client.into()),
            target_id: Some("target-1".into()),
            event_id: Some(ev.into()),
            message_id: Some("M1".into()),
            reason: "permanent failure: HTTP 400".into(),
            attempts: 2,
            first_attempt_at: Some("2025-11-03T09:12:44.000Z".into()),
            last_outcome: Some("HTTP 400".into()),
            history: vec![
                AttemptRecord {
                    at: "2025-11-03T09:12:44.000Z".into(),
                    outcome: "HTTP 503".into(),
                    status: Some(503),
                    duration_ms: 4,
                },
                AttemptRecord {
                    at: "2025-11-03T09:12:46.000Z".into(),
                    outcome: "HTTP 400".into(),
                    status: Some(400),
                    duration_ms: 3,
                },
            ],
        };
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(&letter.body)
            .set_message_attributes(Some(dead_letter_attributes(&letter, &queue)))
            .send()
            .await
            .expect("send");
    }
    // A message SQS itself redrove: no attributes; still listed.
    sqs.send_message()
        .queue_url(&dlq)
        .message_body(body("client-a", "ev-redriven"))
        .send()
        .await
        .expect("send");

    let (code, out, err) = callbacks(&["dlq", "list", "--sqs-queue-url", &dlq]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("id\tclient\ttarget"));
    assert!(out.contains("permanent failure: HTTP 400"));
    assert!(out.contains("maxReceiveCount"));

    let (code, out, err) = callbacks(&[
        "dlq",
        "list",
        "--sqs-queue-url",
        &dlq,
        "--client",
        "client-a",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let entries: Vec<Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(entries.len(), 2);
    let with_history = entries
        .iter()
        .find(|e| e["eventId"] == "ev-a")
        .expect("ev-a");
    assert_eq!(with_history["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(with_history["attempts"], 2);
    let id = with_history["id"].as_str().expect("id").to_string();

    // Replay one entry by id: it goes back to the source queue, and only it leaves the DLQ.
    let (code, out, err) = callbacks(&[
        "dlq",
        "replay",
        "--sqs-queue-url",
        &dlq,
        "--sqs-message-id",
        &id,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("re-queued 1 callback(s)"), "{out}");
    let back = drain_queue(&sqs, &queue).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["detail"]["eventId"], "ev-a");

    // Replay the rest of client-a (the redriven one: target from the -dlq naming).
    let (code, out, _) = callbacks(&[
        "dlq",
        "replay",
        "--sqs-queue-url",
        &dlq,
        "--client",
        "client-a",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("re-queued 1 callback(s)"), "{out}");
    assert_eq!(drain_queue(&sqs, &queue).await.len(), 1);
    let left = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attrs");
    assert_eq!(
        left.attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .map(String::as_str),
        Some("1"),
        "client-b's entry stays"
    );

    // --data-dir and --sqs-queue-url exclude each other; one of them is needed.
    let (code, _, _) = callbacks(&["dlq", "list"]);
    assert_eq!(code, 2);
    let (code, _, _) = callbacks(&["dlq", "list", "--data-dir", "/tmp", "--sqs-queue-url", &dlq]);
    assert_eq!(code, 2);
}
