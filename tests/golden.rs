//! Backward compatibility: every recorded case in `legacy-compat/cases/` runs through the library
//! and through the `callbacks transform` binary; the payload must equal the recorded one exactly
//! (parsed, and byte for byte) and the signature bit for bit. Adding a case is adding files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use callbacks::config;
use callbacks::pipeline::{self, CoreOptions, Outcome};
use callbacks::schema::{EventKind, Schemas};
use serde_json::Value;

struct Case {
    name: String,
    event: Vec<u8>,
    config_dir: tempfile::TempDir,
    link_base: String,
    expected: Vec<Value>,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("legacy-compat/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("legacy-compat/cases")
        .map(|e| e.expect("entry").path())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .filter(|d| d.is_dir())
        .map(|d| {
            let name = d.file_name().expect("name").to_string_lossy().into_owned();
            let config_dir = tempfile::tempdir().expect("tempdir");
            if let Ok(entries) = std::fs::read_dir(d.join("clients")) {
                for e in entries {
                    let p = e.expect("entry").path();
                    std::fs::copy(&p, config_dir.path().join(p.file_name().expect("file")))
                        .expect("copy");
                }
            }
            let map = d.join(config::APPLICATION_ID_MAP_FILE);
            if map.exists() {
                std::fs::copy(
                    &map,
                    config_dir.path().join(config::APPLICATION_ID_MAP_FILE),
                )
                .expect("copy map");
            }
            let expected: Value = serde_json::from_slice(
                &std::fs::read(d.join("expected.json")).expect("expected.json"),
            )
            .expect("json");
            // The event as one line (the CLI reads newline-delimited events).
            let event: Value =
                serde_json::from_slice(&std::fs::read(d.join("event.json")).expect("event.json"))
                    .expect("json");
            Case {
                name,
                event: serde_json::to_vec(&event).expect("json"),
                config_dir,
                link_base: expected["linkBaseUrl"]
                    .as_str()
                    .unwrap_or(callbacks::transform::DEFAULT_LINK_BASE)
                    .to_string(),
                expected: expected["callbacks"].as_array().expect("callbacks").clone(),
            }
        })
        .collect()
}

/// A callback as both paths report it: (clientId, targetId) → fields compared.
type Seen = BTreeMap<(String, String), Value>;

fn compare(case: &str, path: &str, expected: &[Value], seen: &Seen, failures: &mut Vec<String>) {
    let want: Seen = expected
        .iter()
        .map(|c| {
            (
                (
                    c["clientId"].as_str().unwrap_or("").to_string(),
                    c["targetId"].as_str().unwrap_or("").to_string(),
                ),
                c.clone(),
            )
        })
        .collect();
    if want.keys().collect::<Vec<_>>() != seen.keys().collect::<Vec<_>>() {
        failures.push(format!(
            "{case} ({path}): callbacks for {:?}, expected {:?}",
            seen.keys(),
            want.keys()
        ));
        return;
    }
    for (key, w) in &want {
        let got = &seen[key];
        for field in ["url", "method", "headers"] {
            if got[field] != w[field] {
                failures.push(format!(
                    "{case} ({path}) {key:?}: {field} is {}, expected {}",
                    got[field], w[field]
                ));
            }
        }
        if let Some(ids) = got.get("subscriptionIds") {
            if *ids != w["subscriptionIds"] {
                failures.push(format!(
                    "{case} ({path}) {key:?}: subscriptionIds {ids}, expected {}",
                    w["subscriptionIds"]
                ));
            }
        }
        let (gb, wb) = (
            got["body"].as_str().unwrap_or(""),
            w["body"].as_str().unwrap_or(""),
        );
        let parsed = |s: &str| serde_json::from_str::<Value>(s).ok();
        if parsed(gb) != parsed(wb) || parsed(gb).is_none() {
            failures.push(format!(
                "{case} ({path}) {key:?}: payload differs:\n  got      {gb}\n  expected {wb}"
            ));
        } else if gb != wb {
            failures.push(format!("{case} ({path}) {key:?}: payload bytes differ (same JSON):\n  got      {gb}\n  expected {wb}"));
        }
        let sig = |v: &Value| {
            v["headers"]["x-hmac-sha256-signature"]
                .as_str()
                .map(str::to_owned)
        };
        if sig(got).is_none() || sig(got) != sig(w) {
            failures.push(format!(
                "{case} ({path}) {key:?}: signature {:?}, expected {:?}",
                sig(got),
                sig(w)
            ));
        }
    }
}

#[test]
fn golden_cases_through_the_library() {
    let cases = cases();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut total = 0;
    for case in &cases {
        let configs = config::load_dir(case.config_dir.path())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let opts = CoreOptions {
            link_base: case.link_base.clone(),
        };
        let callbacks = match pipeline::process(&case.event, &configs, &opts) {
            Ok(Outcome::Callbacks { callbacks, .. }) => callbacks,
            Ok(Outcome::NoClientConfig { .. }) => Vec::new(),
            Err(e) => {
                failures.push(format!("{}: rejected: {e}", case.name));
                continue;
            }
        };
        let mut seen = Seen::new();
        for cb in &callbacks {
            let body: Value = serde_json::from_slice(&cb.body).expect("body is JSON");
            let kind = if body["data"][0]["type"] == "MessageStatus" {
                EventKind::MessageStatus
            } else {
                EventKind::ChannelStatus
            };
            if let Err(errs) = Schemas::get().validate_callback(kind, &body) {
                failures.push(format!("{}: payload fails its schema: {errs:?}", case.name));
            }
            let headers: serde_json::Map<String, Value> = cb
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            seen.insert(
                (cb.client_id.clone(), cb.target_id.clone()),
                serde_json::json!({
                    "url": cb.url, "method": cb.method, "headers": headers,
                    "subscriptionIds": cb.subscription_ids,
                    "body": String::from_utf8(cb.body.to_vec()).expect("utf-8"),
                }),
            );
        }
        total += seen.len();
        compare(&case.name, "library", &case.expected, &seen, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 40, "only {total} callbacks compared");
}

#[test]
fn golden_cases_through_the_binary() {
    let mut failures = Vec::new();
    for case in &cases() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callbacks"))
            .args(["transform", "--config"])
            .arg(case.config_dir.path())
            .args(["--link-base", &case.link_base])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn callbacks");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(&case.event).expect("write");
            stdin.write_all(b"\n").expect("write");
        }
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}: exit {:?}: {}",
            case.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("\"line\""),
            "{}: rejected: {stderr}",
            case.name
        );
        let mut seen = Seen::new();
        for line in String::from_utf8(out.stdout).expect("utf-8").lines() {
            let v: Value = serde_json::from_str(line).expect("each stdout line is JSON");
            let keys: Vec<&str> = v
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                ["body", "clientId", "headers", "method", "targetId", "url"],
                "{}: line fields",
                case.name
            );
            seen.insert(
                (
                    v["clientId"].as_str().expect("clientId").into(),
                    v["targetId"].as_str().expect("targetId").into(),
                ),
                v,
            );
        }
        compare(&case.name, "binary", &case.expected, &seen, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
