#![cfg(feature = "aws")]
//! The S3 configuration cache and the SQS rejected-events sender against a real moto server
//! (started by the test itself on loopback; `pip install 'moto[server]==5.2.5' boto3`).

mod aws_support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use aws_support::*;
use callbacks::aws::handler::{
    self, CacheUse, ConfigSource, RejectSink, RejectedRecord, SqsRecord,
};
use callbacks::aws::rejects::SqsRejects;
use callbacks::aws::s3_config::{S3ConfigSettings, S3ConfigSource};
use callbacks::pipeline::CoreOptions;

const PREFIX: &str = "clients/";

/// The configuration in force for a client (`None`: no subscriptions); a fault fails the test.
async fn settings(
    src: &S3ConfigSource,
    client: &str,
    what: &str,
) -> Option<Arc<callbacks::config::ClientSettings>> {
    src.client(client).await.expect(what).settings
}

async fn source(bucket: &str, ttl: Duration, map_key: Option<&str>) -> S3ConfigSource {
    S3ConfigSource::new(
        s3_client(&moto().endpoint).await,
        S3ConfigSettings {
            bucket: bucket.to_string(),
            prefix: PREFIX.to_string(),
            application_id_map_key: map_key.map(str::to_owned),
            ttl,
        },
    )
}

fn key(client: &str) -> String {
    format!("{PREFIX}{client}.json")
}

/// Puts `doc` as `client`'s configuration object.
async fn put_config(s3: &aws_sdk_s3::Client, bucket: &str, client: &str, doc: &Value) {
    put_object(s3, bucket, &key(client), doc.to_string()).await;
}

/// A new bucket on moto holding the sample configuration of each of `clients`.
async fn bucket_with(clients: &[&str]) -> (aws_sdk_s3::Client, String) {
    let s3 = s3_client(&moto().endpoint).await;
    let bucket = unique("cfg");
    create_bucket(&s3, &bucket).await;
    for c in clients {
        put_config(&s3, &bucket, c, &client_config(c)).await;
    }
    (s3, bucket)
}

fn statuses(settings: &callbacks::config::ClientSettings) -> Value {
    serde_json::to_value(&settings.document.subscriptions).expect("ser")
}

#[tokio::test]
async fn config_is_loaded_cached_and_revalidated_by_etag() {
    let (s3, bucket) = bucket_with(&["client-a"]).await;

    // TTL 0: every lookup goes to S3 (with If-None-Match once an ETag is known).
    let src = source(&bucket, Duration::ZERO, None).await;
    let first = src.client("client-a").await.expect("load");
    assert_eq!(first.cache, CacheUse::Miss);
    let first = first.settings.expect("configured");
    assert_eq!(first.application_id, "app-client-a");

    let again = src.client("client-a").await.expect("revalidate");
    assert_eq!(again.cache, CacheUse::Miss);
    assert!(
        Arc::ptr_eq(&first, again.settings.as_ref().expect("configured")),
        "304: the cached copy is kept"
    );

    // The object changes: the new version is used.
    let mut changed = client_config("client-a");
    changed["subscriptions"][0]["messageStatuses"] = json!(["FAILED"]);
    put_object(&s3, &bucket, &key("client-a"), changed.to_string()).await;
    let after = settings(&src, "client-a", "reload")
        .await
        .expect("configured");
    assert!(!Arc::ptr_eq(&first, &after));
    assert_eq!(statuses(&after)[0]["messageStatuses"], json!(["FAILED"]));

    // A long TTL: served from the cache without asking S3.
    let cached = source(&bucket, Duration::from_secs(60), None).await;
    assert_eq!(
        cached.client("client-a").await.expect("load").cache,
        CacheUse::Miss
    );
    let hit = cached.client("client-a").await.expect("hit");
    assert_eq!(hit.cache, CacheUse::Hit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_of_a_cold_client_read_s3_once() {
    let (_s3, bucket) = bucket_with(&["client-a", "client-b"]).await;
    let src = Arc::new(source(&bucket, Duration::from_secs(60), None).await);
    let lookups: Vec<_> = (0..16)
        .map(|i| {
            let src = Arc::clone(&src);
            let client = if i % 2 == 0 { "client-a" } else { "client-b" };
            tokio::spawn(async move { (client, src.client(client).await.expect("lookup")) })
        })
        .collect();
    let mut misses = std::collections::HashMap::new();
    for task in lookups {
        let (client, lookup) = task.await.expect("task");
        assert!(lookup.settings.is_some(), "{client} is configured");
        if lookup.cache == CacheUse::Miss {
            *misses.entry(client).or_insert(0) += 1;
        }
    }
    // Eight lookups of each client at once: one S3 read each, the rest wait for it.
    assert_eq!(misses.get("client-a"), Some(&1), "{misses:?}");
    assert_eq!(misses.get("client-b"), Some(&1), "{misses:?}");
}

#[tokio::test]
async fn a_missing_object_means_no_subscriptions_until_it_appears() {
    let (s3, bucket) = bucket_with(&[]).await;
    let src = source(&bucket, Duration::ZERO, None).await;
    assert!(settings(&src, "client-a", "missing is not a fault")
        .await
        .is_none());
    put_config(&s3, &bucket, "client-a", &client_config("client-a")).await;
    assert!(settings(&src, "client-a", "load").await.is_some());
    s3.delete_object()
        .bucket(&bucket)
        .key(key("client-a"))
        .send()
        .await
        .expect("delete");
    assert!(
        settings(&src, "client-a", "deleted").await.is_none(),
        "deleted: no subscriptions"
    );
}

#[tokio::test]
async fn an_invalid_object_is_ignored_and_the_last_good_version_stays_in_force() {
    let (s3, bucket) = bucket_with(&[]).await;
    let src = source(&bucket, Duration::ZERO, None).await;

    // Invalid with nothing cached: no configuration in force, not a fault.
    put_object(
        &s3,
        &bucket,
        &key("client-b"),
        "{\"clientId\": \"client-b\"}",
    )
    .await;
    assert!(settings(&src, "client-b", "not a fault").await.is_none());

    put_config(&s3, &bucket, "client-a", &client_config("client-a")).await;
    let good = settings(&src, "client-a", "load")
        .await
        .expect("configured");
    let mut bad = client_config("client-a");
    bad["subscriptions"][0]["targetIds"] = json!(["no-such-target"]);
    put_object(&s3, &bucket, &key("client-a"), bad.to_string()).await;
    for _ in 0..2 {
        let kept = settings(&src, "client-a", "kept").await.expect("last good");
        assert!(
            Arc::ptr_eq(&good, &kept),
            "the last good version stays in force"
        );
    }
    // A document for another client under this client's key is invalid too.
    put_config(&s3, &bucket, "client-a", &client_config("client-z")).await;
    let kept = settings(&src, "client-a", "kept").await.expect("last good");
    assert!(Arc::ptr_eq(&good, &kept));
    // Fixed: the new version is used.
    put_config(&s3, &bucket, "client-a", &client_config("client-a")).await;
    let fixed = settings(&src, "client-a", "fixed")
        .await
        .expect("configured");
    assert!(!Arc::ptr_eq(&good, &fixed));
}

#[tokio::test]
async fn application_ids_come_from_the_map_object_and_follow_its_changes() {
    let (s3, bucket) = bucket_with(&[]).await;
    let mut doc = client_config("client-a");
    doc.as_object_mut().expect("object").remove("applicationId");
    put_object(&s3, &bucket, &key("client-a"), doc.to_string()).await;
    put_object(
        &s3,
        &bucket,
        "application-ids.json",
        json!({"client-a": "app-from-map"}).to_string(),
    )
    .await;
    let src = source(&bucket, Duration::ZERO, Some("application-ids.json")).await;
    let s = settings(&src, "client-a", "load")
        .await
        .expect("configured");
    assert_eq!(s.application_id, "app-from-map");
    put_object(
        &s3,
        &bucket,
        "application-ids.json",
        json!({"client-a": "app-2"}).to_string(),
    )
    .await;
    let s = settings(&src, "client-a", "reload")
        .await
        .expect("configured");
    assert_eq!(
        s.application_id, "app-2",
        "a map change recompiles the client"
    );
}

#[tokio::test]
async fn s3_unreachable_is_a_fault_only_when_nothing_is_cached() {
    let (s3, bucket) = bucket_with(&["client-a"]).await;
    let src = source(&bucket, Duration::ZERO, None).await;
    let good = settings(&src, "client-a", "load")
        .await
        .expect("configured");

    // The bucket disappears (NoSuchBucket is a fault, not a missing object).
    s3.delete_object()
        .bucket(&bucket)
        .key(key("client-a"))
        .send()
        .await
        .expect("delete object");
    s3.delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("delete bucket");
    let stale = settings(&src, "client-a", "cached copy used")
        .await
        .expect("configured");
    assert!(Arc::ptr_eq(&good, &stale));
    let err = src.client("client-b").await.expect_err("nothing cached");
    assert_eq!(err.client_id, "client-b");
    let at = format!("s3://{bucket}/{}: GetObject failed: ", key("client-b"));
    assert!(err.reason.starts_with(&at), "{}", err.reason);
    assert!(err.reason.contains("NoSuchBucket"), "{}", err.reason);

    // Nothing listening at all.
    let dead = S3ConfigSource::new(
        s3_client(&format!("http://127.0.0.1:{}", free_port())).await,
        S3ConfigSettings {
            bucket: "b".into(),
            prefix: PREFIX.into(),
            application_id_map_key: None,
            ttl: Duration::ZERO,
        },
    );
    let err = dead.client("client-a").await.expect_err("unreachable");
    let at = format!("s3://b/{}: GetObject failed: ", key("client-a"));
    assert!(err.reason.starts_with(&at), "{}", err.reason);
}

fn rejected(i: usize, body: String) -> RejectedRecord {
    RejectedRecord {
        reason: format!("reason {i}"),
        fields: vec![],
        event_id: Some(format!("e{i}")),
        message_id: None,
        sqs_message_id: Some(format!("m{i}")),
        body,
        body_truncated: false,
    }
}

#[tokio::test]
async fn rejected_events_reach_the_queue_with_their_reasons() {
    let sqs = sqs_client(&moto().endpoint).await;
    let url = create_queue(&sqs, &unique("rejects")).await;
    let sink = SqsRejects::new(sqs.clone(), url.clone());
    let mut records: Vec<RejectedRecord> = (0..24)
        .map(|i| rejected(i, format!("{{\"n\":{i}}}")))
        .collect();
    records.push(rejected(24, "x".repeat(300 * 1024)));
    sink.send(&records).await.expect("sent");
    let got = drain_queue(&sqs, &url).await;
    assert_eq!(got.len(), 25);
    let mut reasons: Vec<String> = got
        .iter()
        .map(|m| m["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    reasons.sort_by_key(|r| {
        r.trim_start_matches("reason ")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    assert_eq!(
        reasons,
        (0..25).map(|i| format!("reason {i}")).collect::<Vec<_>>()
    );
    let big = got.iter().find(|m| m["eventId"] == "e24").expect("big one");
    assert_eq!(big["bodyTruncated"], true);

    // A queue that does not exist: the send fails (and so would the invocation).
    let gone = SqsRejects::new(sqs.clone(), format!("{url}-missing"));
    assert!(gone.send(&records[..1]).await.is_err());
}

#[tokio::test]
async fn handler_with_s3_and_sqs_sends_bad_events_to_the_queue_and_the_rest_proceed() {
    let endpoint = &moto().endpoint;
    let sqs = sqs_client(endpoint).await;
    let (_s3, bucket) = bucket_with(&["client-a"]).await;
    let url = create_queue(&sqs, &unique("rejects")).await;
    let configs = Arc::new(source(&bucket, Duration::from_secs(60), None).await);
    let rejects = SqsRejects::new(sqs.clone(), url.clone());

    let batch: Vec<SqsRecord> = serde_json::from_value(json!([
        sqs_record(
            "m1",
            &message_event("e1", "client-a", "DELIVERED").to_string()
        ),
        sqs_record("m2", "{\"specversion\":\"1.0\"}"),
        sqs_record(
            "m3",
            &message_event("e3", "client-nobody", "DELIVERED").to_string()
        ),
        sqs_record("m4", "[]"),
    ]))
    .expect("records");
    let out = handler::handle(batch, &configs, &rejects, &CoreOptions::default())
        .await
        .expect("ok");
    assert_eq!(out.output.len(), 2);
    assert_eq!(
        (
            out.metrics.rejected,
            out.metrics.filtered_out,
            out.metrics.config_cache_misses
        ),
        (2, 1, 2)
    );
    let got = drain_queue(&sqs, &url).await;
    let mut by_id: Vec<(String, String)> = got
        .iter()
        .map(|m| {
            (
                m["sqsMessageId"].as_str().unwrap_or("").to_string(),
                m["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    by_id.sort();
    assert_eq!(by_id.len(), 2);
    assert_eq!(by_id[0].0, "m2");
    assert!(
        by_id[0].1.contains("required") || by_id[0].1.contains("/"),
        "{}",
        by_id[0].1
    );
    assert_eq!(by_id[1].0, "m4");
    assert!(by_id[1].1.contains("JSON object"), "{}", by_id[1].1);
}
