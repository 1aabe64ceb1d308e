//! The input rules of docs/CONTRACTS.md (null means absent, optional data fields, case,
//! repeated member names, rate limit by mode, reject reasons without values), each checked on
//! one shared corpus through the library (`pipeline::process`), through `callbacks transform`
//! and through `POST /events` of `callbacks serve`: the three must answer alike.

mod common;
mod serve_support;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use callbacks::config::{self, ConfigSet};
use callbacks::pipeline::{self, CoreOptions, Outcome};
use serde_json::{json, Value};

/// A message reference no reject line may echo (input rule 6).
const PRIVATE_REF: &str = "private-reference-4d1c";

/// What an input must produce.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// Accepted, with this many callbacks; `body_has` / `body_lacks` are checked on each body.
    Accept {
        callbacks: usize,
        body_has: Vec<&'static str>,
        body_lacks: Vec<&'static str>,
    },
    /// Rejected at this pointer, reporting this event id.
    Reject {
        pointer: &'static str,
        event_id: Option<&'static str>,
    },
}

struct Case {
    name: &'static str,
    id: &'static str,
    text: String,
    want: Want,
}

fn accept(callbacks: usize, has: &[&'static str], lacks: &[&'static str]) -> Want {
    Want::Accept {
        callbacks,
        body_has: has.to_vec(),
        body_lacks: lacks.to_vec(),
    }
}

fn reject(pointer: &'static str, event_id: Option<&'static str>) -> Want {
    Want::Reject { pointer, event_id }
}

fn with(mut v: Value, edits: &[(&str, Value)]) -> String {
    for (pointer, value) in edits {
        let (parent, name) = pointer.rsplit_once('/').expect("pointer");
        let target = if parent.is_empty() {
            &mut v
        } else {
            v.pointer_mut(parent).expect(parent)
        };
        target[name] = value.clone();
    }
    v.to_string()
}

fn corpus() -> Vec<Case> {
    let m = |id: &str| common::message_event(id, "client-a", "DELIVERED");
    let c = |id: &str| common::channel_event(id, "client-a", "DELIVERED", "READ");
    let null = Value::Null;
    let mut cases = vec![
        // Rule 1: null envelope attributes are absent; a required one that is null is missing.
        Case {
            name: "envelope nulls",
            id: "r1-nulls",
            text: with(
                m("r1-nulls"),
                &[
                    ("/subject", null.clone()),
                    ("/dataschema", null.clone()),
                    ("/datacontenttype", null.clone()),
                    ("/traceparent", null.clone()),
                    ("/tracestate", null.clone()),
                    ("/myextension", null.clone()),
                ],
            ),
            want: accept(1, &[r#""messageStatus":"delivered""#], &[]),
        },
        Case {
            name: "id null",
            id: "r1-id",
            text: with(m("r1-id"), &[("/id", null.clone())]),
            want: reject("/id", None),
        },
        Case {
            name: "source null",
            id: "r1-source",
            text: with(m("r1-source"), &[("/source", null.clone())]),
            want: reject("/source", Some("r1-source")),
        },
        // Rule 2: optional data fields that are null are absent; required ones stay required.
        Case {
            name: "message optional data nulls",
            id: "r2-message",
            text: with(
                m("r2-message"),
                &[
                    ("/data/previousMessageStatus", null.clone()),
                    ("/data/messageStatusDescription", null.clone()),
                    ("/data/messageFailureReasonCode", null.clone()),
                ],
            ),
            want: accept(
                1,
                &[],
                &["messageStatusDescription", "messageFailureReasonCode"],
            ),
        },
        Case {
            name: "channel optional data nulls",
            id: "r2-channel",
            text: with(
                c("r2-channel"),
                &[
                    ("/data/previousChannelStatus", null.clone()),
                    ("/data/previousSupplierStatus", null.clone()),
                    ("/data/channelStatusDescription", null.clone()),
                    ("/data/channelFailureReasonCode", null.clone()),
                ],
            ),
            want: accept(
                1,
                &[],
                &["channelStatusDescription", "channelFailureReasonCode"],
            ),
        },
        Case {
            name: "required data null",
            id: "r2-required",
            text: with(m("r2-required"), &[("/data/messageStatus", null.clone())]),
            want: reject("/data/messageStatus", Some("r2-required")),
        },
        // Rule 3: any case on input, lower case on output; a value in no case is refused.
        Case {
            name: "message mixed case",
            id: "r3-message",
            text: with(
                m("r3-message"),
                &[
                    ("/data/messageStatus", json!("Delivered")),
                    ("/data/previousMessageStatus", json!("sending")),
                    (
                        "/data/channels",
                        json!([{"type": "nhsApp", "channelStatus": "Delivered"}]),
                    ),
                ],
            ),
            want: accept(
                1,
                &[
                    r#""messageStatus":"delivered","channels":[{"type":"nhsapp","channelStatus":"delivered"}]"#,
                ],
                &[],
            ),
        },
        Case {
            name: "channel mixed case",
            id: "r3-channel",
            text: with(
                c("r3-channel"),
                &[
                    ("/data/channel", json!("NhsApp")),
                    ("/data/channelStatus", json!("Delivered")),
                    ("/data/supplierStatus", json!("Read")),
                ],
            ),
            want: accept(
                1,
                &[r#""channel":"nhsapp","channelStatus":"delivered","supplierStatus":"read""#],
                &[],
            ),
        },
        Case {
            name: "status in no case",
            id: "r3-bogus",
            text: with(m("r3-bogus"), &[("/data/messageStatus", json!("Deliverd"))]),
            want: reject("/data/messageStatus", Some("r3-bogus")),
        },
        // Rule 3 for configurations: client-m writes "Delivered", "fAiLeD", "Sms", "Read".
        Case {
            name: "mixed-case configuration",
            id: "r3-config",
            text: with(
                common::message_event("r3-config", "client-m", "FAILED"),
                &[],
            ),
            want: accept(1, &[r#""messageStatus":"failed""#], &[]),
        },
        Case {
            name: "mixed-case configuration, channel",
            id: "r3-config-channel",
            text: with(
                common::channel_event("r3-config-channel", "client-m", "SENDING", "READ"),
                &[("/data/channel", json!("SMS"))],
            ),
            want: accept(1, &[r#""supplierStatus":"read""#], &[]),
        },
    ];
    // Rule 4: a repeated member name is refused, whichever occurrence is valid.
    let base = m("r4-client");
    cases.push(Case {
        name: "repeated clientId",
        id: "r4-client",
        text: base.to_string().replace(
            r#""clientId":"client-a""#,
            r#""clientId":"client-a","clientId":"client-b""#,
        ),
        want: reject("/data/clientId", Some("r4-client")),
    });
    cases.push(Case {
        name: "repeated status",
        id: "r4-status",
        text: m("r4-status").to_string().replace(
            r#""messageStatus":"DELIVERED""#,
            r#""messageStatus":"BOGUS","messageStatus":"DELIVERED""#,
        ),
        want: reject("/data/messageStatus", Some("r4-status")),
    });
    // Rule 6: rejects name the pointer and the reason, never the values.
    cases.push(Case {
        name: "data is an array",
        id: "r6-array",
        text: with(
            m("r6-array"),
            &[("/data", json!([{"messageReference": PRIVATE_REF}]))],
        ),
        want: reject("/data", Some("r6-array")),
    });
    cases.push(Case {
        name: "bad value not echoed",
        id: "r6-value",
        text: with(
            m("r6-value"),
            &[
                ("/data/messageStatus", json!(PRIVATE_REF)),
                ("/data/messageReference", json!(42)),
            ],
        ),
        want: reject("/data/messageStatus", Some("r6-value")),
    });
    cases.push(Case {
        name: "unknown type not echoed",
        id: "r6-type",
        text: with(m("r6-type"), &[("/type", json!(PRIVATE_REF))]),
        want: reject("/type", Some("r6-type")),
    });
    cases
}

/// Client `client-a` (tests/common) and `client-m`, whose configuration writes every enum in
/// mixed case and whose https target runs at 10,000 requests per second (input rule 5).
fn configs(endpoint: &str) -> Vec<Value> {
    vec![
        common::client_config("client-a", endpoint),
        json!({
            "clientId": "client-m",
            "applicationId": "app-client-m",
            "subscriptions": [
                {"subscriptionId": "sub-msg", "subscriptionType": "MessageStatus",
                 "messageStatuses": ["Delivered", "fAiLeD"], "targetIds": ["target-1"]},
                {"subscriptionId": "sub-chan", "subscriptionType": "ChannelStatus", "channelType": "Sms",
                 "channelStatuses": ["Delivered"], "supplierStatuses": ["Read"], "targetIds": ["target-1"]}
            ],
            "targets": [
                {"targetId": "target-1", "type": "API", "invocationEndpoint": endpoint,
                 "invocationMethod": "POST", "invocationRateLimit": 10000,
                 "apiKey": {"headerName": "x-api-key", "headerValue": "key-client-m"},
                 "delivery": {"mode": "https"}}
            ]
        }),
    ]
}

fn config_set(endpoint: &str) -> ConfigSet {
    let mut set = ConfigSet::default();
    for doc in configs(endpoint) {
        let bytes = serde_json::to_vec(&doc).expect("json");
        let client = config::parse_client("inline", &bytes, &HashMap::new())
            .unwrap_or_else(|e| panic!("{e}"));
        set.insert(client);
    }
    set
}

fn check_bodies(case: &Case, bodies: &[String]) {
    let Want::Accept {
        callbacks,
        body_has,
        body_lacks,
    } = &case.want
    else {
        panic!("{}: not an accept case", case.name);
    };
    assert_eq!(bodies.len(), *callbacks, "{}: {bodies:?}", case.name);
    for body in bodies {
        for s in body_has {
            assert!(body.contains(s), "{}: {body} lacks {s}", case.name);
        }
        for s in body_lacks {
            assert!(!body.contains(s), "{}: {body} has {s}", case.name);
        }
    }
}

fn check_reason_hides_values(case: &Case, reason: &str) {
    for secret in [PRIVATE_REF, "client-b", "BOGUS", "Deliverd"] {
        assert!(
            !reason.contains(secret),
            "{}: the reject reason echoes a value: {reason}",
            case.name
        );
    }
}

#[test]
fn through_the_library() {
    let set = config_set("https://client.example/cb");
    for case in corpus() {
        let result = pipeline::process(case.text.as_bytes(), &set, &CoreOptions::default());
        match (&case.want, result) {
            (Want::Accept { .. }, Ok(Outcome::Callbacks { callbacks, .. })) => {
                let bodies: Vec<String> = callbacks
                    .iter()
                    .map(|c| String::from_utf8_lossy(&c.body).into_owned())
                    .collect();
                check_bodies(&case, &bodies);
            }
            (Want::Reject { pointer, event_id }, Err(pipeline::ProcessError::Rejected(r))) => {
                let fields = r.error.fields();
                assert!(
                    fields.iter().any(|f| f.pointer == *pointer),
                    "{}: {fields:?}",
                    case.name
                );
                assert_eq!(r.event_id.as_deref(), *event_id, "{}", case.name);
                check_reason_hides_values(&case, &r.to_string());
            }
            (want, got) => panic!("{}: wanted {want:?}, got {got:?}", case.name),
        }
    }
}

#[test]
fn through_callbacks_transform() {
    let dir = common::config_dir(&configs("https://client.example/cb"));
    let cases = corpus();
    let input: String = cases.iter().map(|c| c.text.clone() + "\n").collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_callbacks"))
        .args(["transform", "--config"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parse = |b: &[u8]| -> Vec<Value> {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let requests = parse(&out.stdout);
    let rejects = parse(&out.stderr);
    for (i, case) in cases.iter().enumerate() {
        let line = i + 1;
        let source = serde_json::from_str::<Value>(&case.text)
            .ok()
            .and_then(|v| v["source"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let key = callbacks::sign::idempotency_key(&source, case.id);
        let bodies: Vec<String> = requests
            .iter()
            .filter_map(|r| r["body"].as_str())
            .filter(|b| b.contains(&key))
            .map(str::to_owned)
            .collect();
        let reject = rejects.iter().find(|r| r["line"] == line);
        match &case.want {
            Want::Accept { .. } => {
                assert!(reject.is_none(), "{}: {reject:?}", case.name);
                check_bodies(case, &bodies);
            }
            Want::Reject { pointer, event_id } => {
                let r = reject.unwrap_or_else(|| panic!("{}: no reject line", case.name));
                let error = r["error"].as_str().expect("error");
                assert!(
                    error.contains(&format!("{pointer}:")),
                    "{}: {error}",
                    case.name
                );
                assert_eq!(r["eventId"].as_str(), *event_id, "{}", case.name);
                check_reason_hides_values(case, &r.to_string());
                assert!(bodies.is_empty(), "{}", case.name);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_post_events() {
    let recv = serve_support::Receiver::start().await;
    let (_root, config, data) = serve_support::dirs();
    for doc in configs(&recv.url("cb")) {
        let id = doc["clientId"].as_str().expect("clientId").to_owned();
        serve_support::write_config(&config, &id, &doc);
    }
    let server = serve_support::Server::start(&config, &data);
    for case in corpus() {
        let (status, report) = server
            .post(
                "application/cloudevents+json",
                case.text.clone().into_bytes(),
            )
            .await;
        match &case.want {
            Want::Accept { callbacks, .. } => {
                assert_eq!(status, 202, "{}: {report}", case.name);
                assert_eq!(report["callbacks"], *callbacks, "{}: {report}", case.name);
            }
            Want::Reject { pointer, event_id } => {
                assert_eq!(status, 400, "{}: {report}", case.name);
                let rejected = &report["rejected"][0];
                assert_eq!(
                    rejected["eventId"].as_str(),
                    *event_id,
                    "{}: {report}",
                    case.name
                );
                let errors = rejected["errors"].as_array().expect("errors");
                assert!(
                    errors.iter().any(|e| e["pointer"] == *pointer),
                    "{}: {report}",
                    case.name
                );
                check_reason_hides_values(&case, &report.to_string());
            }
        }
    }
    // The accepted bodies the client received carry the normalised values.
    let cases = corpus();
    let want_total: usize = cases
        .iter()
        .map(|c| match c.want {
            Want::Accept { callbacks, .. } => callbacks,
            Want::Reject { .. } => 0,
        })
        .sum();
    serve_support::wait_for(
        std::time::Duration::from_secs(20),
        "every callback delivered",
        || recv.on("cb").len() >= want_total,
    )
    .await;
    for case in cases
        .iter()
        .filter(|c| matches!(c.want, Want::Accept { .. }))
    {
        let source = serde_json::from_str::<Value>(&case.text).expect("json")["source"]
            .as_str()
            .expect("source")
            .to_owned();
        let key = callbacks::sign::idempotency_key(&source, case.id);
        let bodies: Vec<String> = recv
            .on("cb")
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .filter(|b| b.contains(&key))
            .collect();
        check_bodies(case, &bodies);
    }
}

#[test]
fn rate_limits_above_the_api_destination_quota_are_accepted_up_to_10000() {
    let doc = |rate: u64, mode: &str| {
        let mut c = configs("https://client.example/cb").remove(1);
        c["targets"][0]["invocationRateLimit"] = json!(rate);
        c["targets"][0]["delivery"]["mode"] = json!(mode);
        serde_json::to_vec(&c).expect("json")
    };
    for mode in ["https", "api-destination"] {
        let ok = config::parse_client("c", &doc(10_000, mode), &HashMap::new())
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let settings = config::DeliverySettings::of(&ok.targets[0]);
        assert_eq!(settings.rate_limit_per_second, 10_000);
        let err = config::parse_client("c", &doc(10_001, mode), &HashMap::new())
            .expect_err("above the schema maximum");
        assert!(
            err.to_string().contains("/targets/0/invocationRateLimit"),
            "{err}"
        );
    }
}
