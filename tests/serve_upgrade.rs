//! A data directory written before the store had a schema version (queued rows holding the
//! signed request, API key included; `tests/fixtures/serve-data-v0`) keeps delivering after the
//! upgrade: the queued callbacks go out signed with the key in force, the dead letters list and
//! replay, and no API key is left in the database.

mod serve_support;

use std::path::Path;
use std::time::Duration;

use serve_support::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/serve-data-v0");
const OLD_KEY: &str = "fixture-old-api-key-0123456789";
const EVENT_SOURCE: &str = "/data-plane/client-callbacks/local/core";

fn copy_fixture(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    for f in ["callbacks.db", "callbacks.db-wal"] {
        std::fs::copy(Path::new(FIXTURE).join(f), data.join(f)).unwrap();
    }
}

fn keys() -> std::collections::HashSet<String> {
    (1..=3)
        .map(|i| callbacks::sign::idempotency_key(EVENT_SOURCE, &format!("fixture-event-{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_from_before_schema_versions_keeps_delivering() {
    let recv = Receiver::start().await;
    let (_root, config, data) = dirs();
    copy_fixture(&data);
    assert!(
        !data_files_containing(&data, OLD_KEY).is_empty(),
        "the fixture holds the old key"
    );
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(FIXTURE).join("fixture-client.config.json")).unwrap(),
    )
    .unwrap();
    let mut doc = with_api_key(doc, API_KEY);
    doc["targets"][0]["invocationEndpoint"] = recv.url("queued").into();
    doc["targets"][1]["invocationEndpoint"] = recv.url("refused").into();
    write_config(&config, "fixture-client", &doc);

    let server = Server::start(&config, &data);
    wait_for(Duration::from_secs(15), "the queued callbacks", || {
        recv.delivered_keys("queued") == keys()
    })
    .await;
    for r in recv.on("queued") {
        assert!(
            signed_with(&r, "app-fixture-client", API_KEY),
            "signed with the key in force"
        );
    }

    // The old dead letters list with their history and replay, signed now.
    let dlq = dlq_list(&data, Some("fixture-client"));
    assert_eq!(dlq.len(), 3);
    for e in &dlq {
        assert_eq!(e["targetId"], "refused");
        assert_eq!(e["attempts"], 1);
        assert_eq!(e["history"][0]["status"], 400);
        assert_eq!(e["reason"], "permanent failure: HTTP 400");
    }
    let (ok, text) = dlq_cmd(&["replay", "--client", "fixture-client"], &data);
    assert!(ok, "{text}");
    wait_for(Duration::from_secs(15), "the replayed dead letters", || {
        recv.delivered_keys("refused") == keys()
    })
    .await;
    for r in recv.on("refused") {
        assert!(signed_with(&r, "app-fixture-client", API_KEY));
    }
    assert_eq!(server.terminate(), Some(0));

    assert_eq!(data_files_containing(&data, OLD_KEY), Vec::<String>::new());
    assert_eq!(data_files_containing(&data, API_KEY), Vec::<String>::new());
    let conn = rusqlite::Connection::open(data.join("callbacks.db")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, callbacks::local::store::SCHEMA_VERSION);
}
