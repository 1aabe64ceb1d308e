#![cfg(all(feature = "aws", feature = "local"))]
//! Replay on AWS against moto (started by the test on loopback): API-destination dead letters
//! put back on the Callbacks bus re-signed (`callbacks dlq list|replay --sqs-queue-url`), and
//! `callbacks replay` of the bus archive for one client. Per-target rules route to SQS queues
//! standing in for the API destinations (moto does not call API destinations).

mod aws_support;

use std::process::Command;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde_json::{json, Value};

use aws_support::*;
use callbacks::aws::handler::{self, RejectFault, RejectSink, RejectedRecord, SqsRecord};
use callbacks::aws::s3_config::{S3ConfigSettings, S3ConfigSource};
use callbacks::pipeline::CoreOptions;

const PREFIX: &str = "clients/";
const CLIENTS: [&str; 2] = ["client-a", "client-b"];
const TARGETS: [&str; 2] = ["target-1", "target-2"];

struct NoRejects;

impl RejectSink for NoRejects {
    async fn send(&self, rejects: &[RejectedRecord]) -> Result<(), RejectFault> {
        panic!("unexpected rejects: {rejects:?}");
    }
}

/// A Callbacks bus with one rule per client target (the fixture's pattern) routing to an SQS
/// queue, and the client configurations in S3.
struct Bus {
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    name: String,
    arn: String,
    bucket: String,
    /// (client, target, rule name, rule ARN, queue URL)
    rules: Vec<(String, String, String, String, String)>,
}

fn pattern(client: &str, target: &str) -> String {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/eventbridge-routing.json"
        ))
        .expect("fixture"),
    )
    .expect("fixture JSON");
    fixture["targetPatternTemplate"]
        .to_string()
        .replace("${clientId}", client)
        .replace("${targetId}", target)
}

impl Bus {
    async fn new(prefix: &str) -> Bus {
        let m = moto();
        let sdk = sdk_config(&m.endpoint).await;
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let sqs = sqs_client(&m.endpoint).await;
        let s3 = s3_client(&m.endpoint).await;
        let bucket = unique(&format!("{prefix}-cfg"));
        create_bucket(&s3, &bucket).await;
        for c in CLIENTS {
            put_config(&s3, &bucket, &client_config(c)).await;
        }
        let name = unique(&format!("{prefix}-bus"));
        let arn = events
            .create_event_bus()
            .name(&name)
            .send()
            .await
            .expect("bus")
            .event_bus_arn()
            .expect("arn")
            .to_string();
        let mut rules = Vec::new();
        for c in CLIENTS {
            for t in TARGETS {
                let rule = format!("{name}-{c}-{t}");
                let rule_arn = events
                    .put_rule()
                    .name(&rule)
                    .event_bus_name(&name)
                    .event_pattern(pattern(c, t))
                    .send()
                    .await
                    .expect("rule")
                    .rule_arn()
                    .expect("rule arn")
                    .to_string();
                let queue = create_queue(&sqs, &unique(&format!("{prefix}-{c}-{t}"))).await;
                events
                    .put_targets()
                    .rule(&rule)
                    .event_bus_name(&name)
                    .targets(
                        aws_sdk_eventbridge::types::Target::builder()
                            .id("api-destination")
                            .arn(queue_arn(&sqs, &queue).await)
                            .build()
                            .expect("target"),
                    )
                    .send()
                    .await
                    .expect("targets");
                rules.push((c.to_string(), t.to_string(), rule, rule_arn, queue));
            }
        }
        Bus {
            events,
            sqs,
            s3,
            name,
            arn,
            bucket,
            rules,
        }
    }

    fn queue(&self, client: &str, target: &str) -> &str {
        &self
            .rules
            .iter()
            .find(|r| r.0 == client && r.1 == target)
            .expect("rule")
            .4
    }

    fn rule_arn(&self, client: &str, target: &str) -> &str {
        &self
            .rules
            .iter()
            .find(|r| r.0 == client && r.1 == target)
            .expect("rule")
            .3
    }

    /// The transform-filter handler's output for `events`, signed with the keys in S3 now.
    async fn details(&self, events: &[Value]) -> Vec<String> {
        let configs = std::sync::Arc::new(S3ConfigSource::new(
            self.s3.clone(),
            S3ConfigSettings {
                bucket: self.bucket.clone(),
                prefix: PREFIX.into(),
                application_id_map_key: None,
                ttl: std::time::Duration::ZERO,
            },
        ));
        let batch: Vec<SqsRecord> = events
            .iter()
            .enumerate()
            .map(|(i, e)| SqsRecord::new(format!("m{i}"), e.to_string()))
            .collect();
        let out = handler::handle(batch, &configs, &NoRejects, &CoreOptions::default())
            .await
            .expect("handled");
        out.output
            .iter()
            .map(|d| serde_json::to_string(d).expect("detail"))
            .collect()
    }

    /// Puts details on the bus as the Pipe does.
    async fn put(&self, details: &[String]) {
        for chunk in details.chunks(10) {
            let out = self
                .events
                .put_events()
                .set_entries(Some(
                    chunk
                        .iter()
                        .map(|d| {
                            PutEventsRequestEntry::builder()
                                .event_bus_name(&self.name)
                                .source("uk.nhs.notify.client-callbacks")
                                .detail_type("ClientCallback")
                                .detail(d)
                                .build()
                        })
                        .collect(),
                ))
                .send()
                .await
                .expect("put events");
            assert_eq!(out.failed_entry_count(), 0);
        }
    }

    /// `callbacks dlq replay --sqs-queue-url DLQ --bus-name BUS`.
    fn replay_dlq(&self, dlq: &str) -> (i32, String, String) {
        callbacks(
            &self.env(),
            &[
                "dlq",
                "replay",
                "--sqs-queue-url",
                dlq,
                "--bus-name",
                &self.name,
            ],
        )
    }

    /// `callbacks dlq list --sqs-queue-url DLQ --json`, parsed.
    fn list_dlq(&self, dlq: &str) -> (Value, String) {
        let (code, out, err) = callbacks(
            &self.env(),
            &["dlq", "list", "--sqs-queue-url", dlq, "--json"],
        );
        assert_eq!(code, 0, "{out}{err}");
        (
            serde_json::from_str(&out).expect("JSON listing"),
            out + &err,
        )
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = moto_env(&moto().endpoint);
        env.push(("CLIENT_CONFIG_BUCKET", self.bucket.clone()));
        env.push(("CLIENT_CONFIG_PREFIX", PREFIX.into()));
        env.push(("RUST_LOG", "info".into()));
        env
    }
}

async fn put_config(s3: &aws_sdk_s3::Client, bucket: &str, doc: &Value) {
    let client = doc["clientId"].as_str().expect("clientId");
    put_object(
        s3,
        bucket,
        &format!("{PREFIX}{client}.json"),
        doc.to_string(),
    )
    .await;
}

fn callbacks(env: &[(&str, String)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callbacks"));
    cmd.args(args).env_remove("CALLBACKS_EVENT_BUS_NAME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run callbacks");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every API key of the sample configurations, before and after a rotation.
fn assert_no_api_key(text: &str) {
    for c in CLIENTS {
        for t in TARGETS {
            for key in [api_key(c, t), format!("rotated-{}", api_key(c, t))] {
                assert!(!text.contains(&key), "an API key is in the output:\n{text}");
            }
        }
    }
}

/// An EventBridge event as the bus delivers it (what EventBridge puts on a target's DLQ).
fn bus_event(detail: &str, source: &str) -> String {
    let detail: Value = serde_json::from_str(detail).expect("detail");
    json!({"version": "0", "id": "7e0c1d2a-0000-4000-8000-000000000001", "detail-type": "ClientCallback",
        "source": source, "account": "123456789012", "time": "2026-12-01T13:05:00Z",
        "region": REGION, "resources": [], "detail": detail})
    .to_string()
}

fn attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .expect("attribute")
}

/// Sends `body` to the DLQ with the attributes EventBridge gives a failed API destination call.
async fn dead_letter(bus: &Bus, dlq: &str, body: &str, rule_arn: &str) -> String {
    bus.sqs
        .send_message()
        .queue_url(dlq)
        .message_body(body)
        .message_attributes("RULE_ARN", attr(rule_arn))
        .message_attributes(
            "TARGET_ARN",
            attr(
                "arn:aws:events:eu-west-2:123456789012:api-destination/client-a-target-1/0d1c2b3a",
            ),
        )
        .message_attributes("ERROR_CODE", attr("SDK_CLIENT_ERROR"))
        .message_attributes(
            "ERROR_MESSAGE",
            attr(
                "Unable to invoke ApiDestination endpoint: The endpoint returned status code 503.",
            ),
        )
        .message_attributes(
            "EXHAUSTED_RETRY_CONDITION",
            attr("MaximumEventAgeInSeconds"),
        )
        .message_attributes("RETRY_ATTEMPTS", attr("185"))
        .send()
        .await
        .expect("dead letter")
        .message_id()
        .expect("id")
        .to_string()
}

/// The signed bytes an API destination sends: `detail.payload` re-serialized compactly in
/// document order (InputPath), and the header value `detail.signature`.
fn sent_body_and_signature(message: &str) -> (Vec<u8>, String) {
    let ordered: Ordered = serde_json::from_str(message).expect("ordered");
    let detail = ordered.get("detail").expect("detail");
    (
        detail.get("payload").expect("payload").to_compact(),
        detail
            .get("signature")
            .and_then(Ordered::as_str)
            .expect("signature")
            .to_string(),
    )
}

/// A queue's messages: as received, and parsed.
async fn drain(bus: &Bus, url: &str) -> Vec<(String, Value)> {
    drain_queue_text(&bus.sqs, url)
        .await
        .into_iter()
        .map(|t| {
            let v = serde_json::from_str(&t).expect("JSON");
            (t, v)
        })
        .collect()
}

#[tokio::test]
async fn api_destination_dead_letters_are_listed_and_replayed_onto_the_bus_re_signed() {
    let bus = Bus::new("rp-dl").await;
    let dlq = create_queue(&bus.sqs, &unique("rp-dl-apidest-dlq")).await;
    let details = bus
        .details(&[message_event("e-dl-1", "client-a", "DELIVERED")])
        .await;
    let detail = details
        .iter()
        .find(|d| d.contains("\"targetId\":\"target-1\""))
        .expect("a callback for target-1");
    let id = dead_letter(
        &bus,
        &dlq,
        &bus_event(detail, "uk.nhs.notify.client-callbacks"),
        bus.rule_arn("client-a", "target-1"),
    )
    .await;

    // The key of client-a/target-1 is rotated after the failure.
    let mut rotated = client_config("client-a");
    rotated["targets"][0]["apiKey"]["headerValue"] =
        json!(format!("rotated-{}", api_key("client-a", "target-1")));
    put_config(&bus.s3, &bus.bucket, &rotated).await;

    let env = bus.env();
    let (code, out, err) = callbacks(&env, &["dlq", "list", "--sqs-queue-url", &dlq]);
    assert_eq!(code, 0, "{out}{err}");
    let line = out.lines().nth(1).expect("one entry");
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols[0], id);
    assert_eq!(
        &cols[1..5],
        ["client-a", "target-1", &message_id_for("e-dl-1"), "185"]
    );
    assert_eq!(cols[5], "SDK_CLIENT_ERROR");
    assert!(
        cols[7].contains("status code 503") && cols[7].contains("MaximumEventAgeInSeconds"),
        "{line}"
    );
    let (listed, json_out) = bus.list_dlq(&dlq);
    assert_eq!(listed[0]["attempts"], 185);
    assert_eq!(listed[0]["lastOutcome"], "SDK_CLIENT_ERROR");
    assert_eq!(listed[0]["payload"]["data"][0]["type"], "MessageStatus");

    // Without a bus nothing is replayed and the dead letter stays.
    let (code, out_nb, err_nb) = callbacks(&env, &["dlq", "replay", "--sqs-queue-url", &dlq]);
    assert_ne!(code, 0, "{out_nb}");
    assert!(err_nb.contains("--bus-name"), "{err_nb}");

    let (code, out_r, err_r) = bus.replay_dlq(&dlq);
    assert_eq!(code, 0, "{out_r}{err_r}");
    assert!(out_r.contains("put 1 callback(s) back"), "{out_r}");
    assert!(
        out_r.contains("1 with a signature from a key rotated since"),
        "{out_r}"
    );
    for text in [&out, &err, &json_out, &out_nb, &err_nb, &out_r, &err_r] {
        assert_no_api_key(text);
    }

    // It reached its target's rule only, signed for the key in force.
    let got = drain(&bus, bus.queue("client-a", "target-1")).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (body, signature) = sent_body_and_signature(&got[0].0);
    let app = application_id("client-a");
    let new_key = format!("rotated-{}", api_key("client-a", "target-1"));
    assert!(callbacks::sign::verify(&body, &app, &new_key, &signature));
    assert!(!callbacks::sign::verify(
        &body,
        &app,
        &api_key("client-a", "target-1"),
        &signature
    ));
    assert_eq!(got[0].1["detail"]["eventId"], "e-dl-1");
    for (c, t) in [
        ("client-a", "target-2"),
        ("client-b", "target-1"),
        ("client-b", "target-2"),
    ] {
        assert!(
            drain_queue(&bus.sqs, bus.queue(c, t)).await.is_empty(),
            "{c}/{t}"
        );
    }
    assert_eq!(bus.list_dlq(&dlq).0, json!([]));
}

#[tokio::test]
async fn a_refused_put_events_entry_leaves_its_dead_letter_in_place() {
    let bus = Bus::new("rp-ref").await;
    let dlq = create_queue(&bus.sqs, &unique("rp-ref-apidest-dlq")).await;
    let details = bus
        .details(&[
            message_event("e-ref-1", "client-a", "DELIVERED"),
            message_event("e-ref-2", "client-a", "FAILED"),
        ])
        .await;
    let for_target_1: Vec<&String> = details
        .iter()
        .filter(|d| d.contains("\"targetId\":\"target-1\""))
        .collect();
    let rule = bus.rule_arn("client-a", "target-1");
    dead_letter(
        &bus,
        &dlq,
        &bus_event(for_target_1[0], "uk.nhs.notify.client-callbacks"),
        rule,
    )
    .await;
    // EventBridge refuses an entry without a source (moto: InvalidArgument), in the same batch.
    let refused = dead_letter(&bus, &dlq, &bus_event(for_target_1[1], ""), rule).await;

    let (code, out, err) = bus.replay_dlq(&dlq);
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("put 1 callback(s) back"), "{out}");
    assert!(
        out.contains(&format!(
            "not replayed {refused}: PutEvents refused the entry: InvalidArgument"
        )),
        "{out}"
    );
    let got = drain_queue(&bus.sqs, bus.queue("client-a", "target-1")).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["detail"]["eventId"], "e-ref-1");
    let (left, _) = bus.list_dlq(&dlq);
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
    assert_eq!(left[0]["id"], refused.as_str());
}

#[tokio::test]
async fn an_archive_replay_for_one_client_names_only_its_rules_and_the_window() {
    use chrono::{SecondsFormat, Utc};
    let bus = Bus::new("rp-ar").await;
    let archive = unique("rp-ar-archive");
    let archive_arn = bus
        .events
        .create_archive()
        .archive_name(&archive)
        .event_source_arn(&bus.arn)
        .send()
        .await
        .expect("archive")
        .archive_arn()
        .expect("arn")
        .to_string();
    let configured_at = Utc::now();
    // S3's LastModified has whole seconds: the window starts clearly after the upload.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let from = Utc::now();
    let details = bus
        .details(&[
            message_event("e-ar-a", "client-a", "DELIVERED"),
            message_event("e-ar-b", "client-b", "DELIVERED"),
        ])
        .await;
    bus.put(&details).await;
    for (_, _, _, _, q) in &bus.rules {
        assert_eq!(drain_queue(&bus.sqs, q).await.len(), 1, "first delivery");
    }
    let to = from + chrono::Duration::minutes(10);
    let (from_s, to_s) = (
        from.to_rfc3339_opts(SecondsFormat::Millis, true),
        to.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    let env = bus.env();
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "replay",
            "--bus-name",
            &bus.name,
            "--archive-name",
            &archive,
            "--to",
            &to_s,
            "--client",
            "client-a",
            "--poll-interval-secs",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        callbacks(&env, &refs)
    };

    // --dry-run: the client's rules and the window; nothing started.
    let (code, out_d, err_d) = run(args(&["--from", &from_s, "--dry-run"]));
    assert_eq!(code, 0, "{out_d}{err_d}");
    let rules: Vec<&str> = out_d.lines().filter(|l| l.starts_with("rule\t")).collect();
    assert_eq!(rules.len(), 2, "{out_d}");
    for t in TARGETS {
        assert!(
            rules
                .iter()
                .any(|l| l.ends_with(bus.rule_arn("client-a", t))),
            "{out_d}"
        );
    }
    assert!(!out_d.contains("client-b"), "{out_d}");
    assert!(out_d.contains("dry run: no replay started"), "{out_d}");
    let replays = bus
        .events
        .list_replays()
        .event_source_arn(&archive_arn)
        .send()
        .await
        .expect("list replays");
    assert!(replays.replays().is_empty(), "a dry run started a replay");

    // A window that starts before the configuration changed is refused (the archived
    // signatures may be for a key rotated since).
    let early = (configured_at - chrono::Duration::minutes(5)).to_rfc3339();
    let (code, out_s, err_s) = run(args(&["--from", &early]));
    assert_ne!(code, 0, "{out_s}");
    assert!(
        err_s.contains("refusing to replay: clients/client-a.json changed after --from"),
        "{err_s}"
    );
    assert!(err_s.contains("--force"), "{err_s}");

    let (code, out, err) = run(args(&["--from", &from_s]));
    assert_eq!(code, 0, "{out}{err}");
    let started = out
        .lines()
        .find_map(|l| l.strip_prefix("started\t"))
        .expect("started line");
    let name = started.split('\t').next().expect("name").to_string();
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l == format!("COMPLETED\t{name}")),
        "{out}"
    );
    assert!(err.contains(&format!("replay {name}: COMPLETED")), "{err}");
    for text in [&out_d, &err_d, &out_s, &err_s, &out, &err] {
        assert_no_api_key(text);
    }

    // The request: only client-a's rules, the window given.
    let replay = bus
        .events
        .describe_replay()
        .replay_name(&name)
        .send()
        .await
        .expect("describe replay");
    let mut filter: Vec<String> = replay
        .destination()
        .map(|d| d.filter_arns().to_vec())
        .unwrap_or_default();
    filter.sort();
    let mut want: Vec<String> = TARGETS
        .iter()
        .map(|t| bus.rule_arn("client-a", t).to_string())
        .collect();
    want.sort();
    assert_eq!(filter, want);
    assert_eq!(
        replay.destination().map(|d| d.arn()),
        Some(bus.arn.as_str())
    );
    assert_eq!(replay.event_source_arn(), Some(archive_arn.as_str()));
    let secs = |t: Option<&aws_sdk_eventbridge::primitives::DateTime>| t.map(|t| t.secs());
    assert_eq!(secs(replay.event_start_time()), Some(from.timestamp()));
    assert_eq!(secs(replay.event_end_time()), Some(to.timestamp()));

    // moto really replays the archive (though it ignores FilterArns and the window, so the
    // "nobody else's" half rests on the request above): client-a's targets get their
    // callbacks again, marked as replayed, with the signature made at the time.
    for t in TARGETS {
        let got = drain(&bus, bus.queue("client-a", t)).await;
        assert_eq!(got.len(), 1, "{t}: {got:?}");
        assert_eq!(got[0].1["replay-name"], name.as_str());
        assert_eq!(got[0].1["detail"]["eventId"], "e-ar-a");
        let (body, signature) = sent_body_and_signature(&got[0].0);
        assert!(callbacks::sign::verify(
            &body,
            &application_id("client-a"),
            &api_key("client-a", t),
            &signature
        ));
    }
}

/// The keys of every object in a JSON array, recursively (object keys and array elements).
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().take(1).map(shape).collect()),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn dlq_list_json_has_one_shape_for_https_mode_and_api_destination_dead_letters() {
    use callbacks::aws::delivery::sqs::dead_letter_attributes;
    use callbacks::aws::delivery::{AttemptRecord, DeadLetter};
    let bus = Bus::new("rp-shape").await;
    let dlq = create_queue(&bus.sqs, &unique("rp-shape-dlq")).await;
    let details = bus
        .details(&[message_event("e-sh-1", "client-a", "DELIVERED")])
        .await;
    let body = bus_event(&details[0], "uk.nhs.notify.client-callbacks");
    dead_letter(&bus, &dlq, &body, bus.rule_arn("client-a", "target-1")).await;
    let letter = DeadLetter {
        body: body.clone(),
        client_id: Some("client-a".into()),
        target_id: Some("target-1".into()),
        event_id: Some("e-sh-1".into()),
        message_id: Some(message_id_for("e-sh-1")),
        reason: "permanent failure: HTTP 400".into(),
        attempts: 1,
        first_attempt_at: Some("2026-12-01T13:05:00.000Z".into()),
        last_outcome: Some("HTTP 400".into()),
        history: vec![AttemptRecord {
            at: "2026-12-01T13:05:00.000Z".into(),
            outcome: "HTTP 400".into(),
            status: Some(400),
            duration_ms: 3,
        }],
    };
    bus.sqs
        .send_message()
        .queue_url(&dlq)
        .message_body(&letter.body)
        .set_message_attributes(Some(dead_letter_attributes(
            &letter,
            bus.queue("client-a", "target-1"),
        )))
        .send()
        .await
        .expect("https dead letter");
    let (listed, out) = bus.list_dlq(&dlq);
    let entries = listed.as_array().expect("array");
    assert_eq!(entries.len(), 2, "{out}");
    // history is empty for the API destination (EventBridge keeps none): compare its keys
    // without the history elements.
    let mut shapes: Vec<Value> = entries.iter().map(shape).collect();
    for s in &mut shapes {
        s["history"] = json!([]);
    }
    assert_eq!(shapes[0], shapes[1], "{out}");
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["lastOutcome"].as_str().unwrap_or_default())
        .collect();
    assert!(
        kinds.contains(&"SDK_CLIENT_ERROR") && kinds.contains(&"HTTP 400"),
        "{out}"
    );
}
