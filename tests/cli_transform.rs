//! `callbacks transform` and `callbacks validate-config` as users and scripts run them.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callbacks"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    out
}

fn lines(b: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(b)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn bad_lines_are_reported_and_valid_events_around_them_are_kept() {
    let cfg = config_dir(&[client_config("client-a", "https://client.example/cb")]);
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/legacy-compat/invalid/cases.jsonl"
    ))
    .expect("corpus");
    let bad: Vec<Value> = corpus
        .lines()
        .map(|l| serde_json::from_str(l).expect("corpus line"))
        .collect();
    assert!(bad.len() >= 20);

    // valid, bad, valid, bad, ... valid; plus a blank line and an oversized line.
    let mut input = String::new();
    let mut expected_errors = Vec::new(); // (line number, field)
    let mut valid = 0;
    let mut line_no = 0;
    let push_valid = |input: &mut String, line_no: &mut u64| {
        *line_no += 1;
        input.push_str(
            &message_event(&format!("ok-{line_no}"), "client-a", "DELIVERED").to_string(),
        );
        input.push('\n');
    };
    for case in &bad {
        push_valid(&mut input, &mut line_no);
        valid += 1;
        line_no += 1;
        input.push_str(case["line"].as_str().expect("line"));
        input.push('\n');
        expected_errors.push((
            line_no,
            case["field"].as_str().expect("field").to_string(),
            case["name"].clone(),
        ));
    }
    line_no += 1;
    input.push('\n'); // blank: skipped, still counted as a line
    line_no += 1;
    let huge = format!(
        "{{\"specversion\":\"1.0\",\"pad\":\"{}\"}}",
        "x".repeat(300 * 1024)
    );
    input.push_str(&huge);
    input.push('\n');
    expected_errors.push((line_no, "limit".into(), json!("oversized")));
    push_valid(&mut input, &mut line_no);
    valid += 1;

    let out = run(
        &["transform", "--config", cfg.path().to_str().expect("path")],
        input.as_bytes(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let callbacks = lines(&out.stdout);
    assert_eq!(callbacks.len(), valid, "one callback per valid event");
    let errors: Vec<Value> = lines(&out.stderr)
        .into_iter()
        .filter(|v| v.get("line").is_some())
        .collect();
    assert_eq!(
        errors.len(),
        expected_errors.len(),
        "one error line per bad line: {errors:#?}"
    );
    for (err, (line, field, name)) in errors.iter().zip(&expected_errors) {
        assert_eq!(err["line"], json!(line), "{name}");
        let text = err["error"].as_str().expect("error text");
        assert!(
            text.contains(field.as_str()),
            "{name}: error {text:?} does not name {field:?}"
        );
        assert!(
            err.get("eventId").is_some(),
            "{name}: eventId key present (null allowed)"
        );
    }
    // The event id is reported when it can be read.
    assert!(errors.iter().any(|e| e["eventId"].is_string()));
}

#[test]
fn an_invalid_configuration_stops_before_processing_and_is_named() {
    let mut bad = client_config("client-a", "https://client.example/cb");
    bad["subscriptions"][0]["targetIds"] = json!(["no-such-target"]);
    let cfg = config_dir(&[bad]);
    let event = message_event("e-1", "client-a", "DELIVERED").to_string();
    let out = run(
        &["transform", "--config", cfg.path().to_str().expect("path")],
        event.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("client-a.json") && stderr.contains("/subscriptions/0/targetIds/0"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["transform"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["transform", "--config", "/definitely/not/here"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_config_reports_every_problem_in_every_file() {
    let mut a = client_config("client-a", "https://a.example/cb");
    a["subscriptions"][0]["messageStatuses"] = json!(["DELIVERED", "ARCHIVED"]);
    a["targets"][0]["invocationRateLimit"] = json!(0);
    let mut b = client_config("client-b", "ftp://b.example/cb");
    b["targets"][0]["apiKey"]["headerValue"] = json!("");
    b.as_object_mut().expect("obj").remove("applicationId");
    let good = client_config("client-c", "https://c.example/cb");
    let dir = config_dir(&[a, b, good.clone()]);
    std::fs::write(dir.path().join("broken.json"), b"{ not json").expect("write");
    let out = run(
        &["validate-config", dir.path().to_str().expect("path")],
        b"",
    );
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "client-a.json: /subscriptions/0/messageStatuses/1",
        "client-a.json: /targets/0/invocationRateLimit",
        "client-b.json: /targets/0/invocationEndpoint",
        "client-b.json: /targets/0/apiKey/headerValue",
        "broken.json: /: not valid JSON",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains("key-client-"),
        "an API key reached the output:\n{stderr}"
    );

    let ok = config_dir(&[good]);
    let out = run(&["validate-config", ok.path().to_str().expect("path")], b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_application_id_falls_back_to_the_map_file() {
    let mut c = client_config("client-a", "https://client.example/cb");
    c.as_object_mut().expect("obj").remove("applicationId");
    let dir = config_dir(&[c]);
    let event = message_event("e-1", "client-a", "DELIVERED").to_string();
    let out = run(
        &["transform", "--config", dir.path().to_str().expect("path")],
        event.as_bytes(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "no applicationId anywhere is a configuration error"
    );
    std::fs::write(
        dir.path().join("application-ids.json"),
        br#"{"client-a": "app-from-map"}"#,
    )
    .expect("write");
    let out = run(
        &["transform", "--config", dir.path().to_str().expect("path")],
        event.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0));
    let cb = &lines(&out.stdout)[0];
    let body = cb["body"].as_str().expect("body");
    let sig = cb["headers"]["x-hmac-sha256-signature"]
        .as_str()
        .expect("sig");
    assert!(callbacks::sign::verify(
        body.as_bytes(),
        "app-from-map",
        "key-client-a",
        sig
    ));
}
