//! The watcher: changed files replace their client only when valid, the last good configuration
//! stays in force, deleted files remove their client, a changed id map recompiles every file.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{ConfigWatcher, Reloaded};
use crate::config::{ClientSettings, ConfigProblem};

fn doc(client: &str, app: Option<&str>, endpoint: &str) -> Value {
    let mut d = json!({
        "clientId": client,
        "subscriptions": [{"subscriptionId": "s1", "subscriptionType": "MessageStatus",
            "messageStatuses": ["DELIVERED"], "targetIds": ["t1"]}],
        "targets": [{"targetId": "t1", "type": "API", "invocationEndpoint": endpoint,
            "invocationMethod": "POST", "invocationRateLimit": 10,
            "apiKey": {"headerName": "x-api-key", "headerValue": "key-a"}}]
    });
    if let Some(a) = app {
        d["applicationId"] = json!(a);
    }
    d
}

fn write(dir: &Path, file: &str, v: &Value) {
    std::fs::write(dir.join(file), serde_json::to_vec(v).expect("json")).expect("write");
}

/// Refuses any target whose endpoint ends in "/refused" (stands in for the server's checks).
fn check() -> Arc<super::Check> {
    Arc::new(|name: &str, c: &ClientSettings| {
        c.targets
            .iter()
            .filter(|t| t.invocation_endpoint.ends_with("/refused"))
            .map(|_| ConfigProblem {
                source_name: name.to_string(),
                pointer: "/targets/0/invocationEndpoint".into(),
                reason: "refused by the check".into(),
            })
            .collect()
    })
}

fn endpoint(r: &Reloaded, client: &str) -> String {
    let c = r.configs.get(client).expect("configured");
    c.targets[0].invocation_endpoint.to_string()
}

fn app_id(r: &Reloaded) -> &str {
    &r.configs.get("client-a").expect("a").application_id
}

fn only_problem_at(r: &Reloaded, pointer: &str) {
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(r.problems[0].pointer, pointer);
}

#[test]
fn start_refuses_an_invalid_directory_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "a.json",
        &doc("client-a", None, "https://a.invalid/cb"),
    );
    let Err(e) = ConfigWatcher::start(dir.path(), check()) else {
        panic!("started with a client that has no applicationId")
    };
    assert_eq!(e.0.len(), 1, "{e}");
    assert!(e.0[0].source_name.ends_with("a.json"), "{e}");
    assert_eq!(e.0[0].pointer, "/applicationId");
}

#[test]
fn changes_replace_only_when_valid_and_deletions_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(
        d,
        "a.json",
        &doc("client-a", Some("app-a"), "https://a.invalid/v1"),
    );
    let (mut w, set) = ConfigWatcher::start(d, check()).expect("start");
    assert_eq!(set.len(), 1);
    assert!(w.poll().expect("poll").is_none(), "nothing changed");

    write(
        d,
        "a.json",
        &doc("client-a", Some("app-a"), "https://a.invalid/v2"),
    );
    write(
        d,
        "b.json",
        &doc("client-b", Some("app-b"), "https://b.invalid/v1"),
    );
    let r = w.poll().expect("poll").expect("changed");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.configs.len(), r.removed), (2, 0));
    assert_eq!(endpoint(&r, "client-a"), "https://a.invalid/v2");

    // Invalid (schema) and refused (check): reported, the last good configuration stays.
    std::fs::write(d.join("a.json"), b"{not json").expect("write");
    write(
        d,
        "b.json",
        &doc("client-b", Some("app-b"), "https://b.invalid/refused"),
    );
    let r = w.poll().expect("poll").expect("problems");
    let mut reasons: Vec<&str> = r.problems.iter().map(|p| p.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{:?}", r.problems);
    assert!(reasons[0].starts_with("not valid JSON"), "{reasons:?}");
    assert_eq!(reasons[1], "refused by the check");
    assert_eq!(endpoint(&r, "client-a"), "https://a.invalid/v2");
    assert_eq!(endpoint(&r, "client-b"), "https://b.invalid/v1");
    assert!(
        w.poll().expect("poll").is_none(),
        "reported once per content"
    );

    std::fs::remove_file(d.join("b.json")).expect("rm");
    let r = w.poll().expect("poll").expect("removed");
    assert_eq!((r.configs.len(), r.removed), (1, 1));
    assert!(r.configs.get("client-b").is_none());
}

#[test]
fn a_changed_id_map_recompiles_every_file_and_duplicates_keep_the_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let map = d.join(crate::config::APPLICATION_ID_MAP_FILE);
    std::fs::write(&map, br#"{"client-a": "app-1"}"#).expect("write");
    write(d, "a.json", &doc("client-a", None, "https://a.invalid/cb"));
    let (mut w, set) = ConfigWatcher::start(d, check()).expect("start");
    assert_eq!(set.get("client-a").expect("a").application_id, "app-1");

    std::fs::write(&map, br#"{"client-a": "app-2"}"#).expect("write");
    let r = w.poll().expect("poll").expect("map changed");
    assert_eq!(app_id(&r), "app-2");

    // A bad map is reported; the ids in force stay.
    std::fs::write(&map, br#"{"client-a": ""}"#).expect("write");
    let r = w.poll().expect("poll").expect("problem");
    only_problem_at(&r, "/client-a");
    assert_eq!(app_id(&r), "app-2");

    // Map removed: a file relying on it is now invalid, its last good configuration stays.
    std::fs::remove_file(&map).expect("rm");
    let r = w.poll().expect("poll").expect("map removed");
    only_problem_at(&r, "/applicationId");
    assert_eq!(app_id(&r), "app-2");

    write(
        d,
        "b.json",
        &doc("client-a", Some("app-b"), "https://b.invalid/cb"),
    );
    let r = w.poll().expect("poll").expect("duplicate");
    let dup: Vec<&ConfigProblem> = r
        .problems
        .iter()
        .filter(|p| p.pointer == "/clientId")
        .collect();
    assert_eq!(dup.len(), 1, "{:?}", r.problems);
    assert!(dup[0].source_name.ends_with("b.json"), "{:?}", dup[0]);
    assert!(
        dup[0]
            .reason
            .starts_with("client \"client-a\" is already configured in "),
        "{:?}",
        dup[0]
    );
    assert_eq!(app_id(&r), "app-2");
}
