//! The cross-reference checks `compile` makes after schema validation: every problem is
//! reported, in document order, with its pointer and reason.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{parse_client, CompiledSubscription, ConfigProblem};

fn target(id: &str, delivery: Option<Value>) -> Value {
    let mut t = json!({"targetId": id, "type": "API", "invocationEndpoint": "https://example.invalid/cb",
        "invocationMethod": "POST", "invocationRateLimit": 10,
        "apiKey": {"headerName": "x-api-key", "headerValue": "key-a"}});
    if let Some(d) = delivery {
        t["delivery"] = d;
    }
    t
}

fn parse(
    doc: &Value,
    ids: &HashMap<String, String>,
) -> Result<super::ClientSettings, Vec<ConfigProblem>> {
    parse_client("a.json", &serde_json::to_vec(doc).expect("json"), ids).map_err(|e| e.0)
}

#[test]
fn every_cross_reference_problem_is_named_in_document_order() {
    let doc = json!({
        "clientId": "client-a",
        "subscriptions": [
            {"subscriptionId": "s1", "subscriptionType": "MessageStatus", "messageStatuses": ["DELIVERED"], "targetIds": ["t1", "nope"]},
            {"subscriptionId": "s1", "subscriptionType": "ChannelStatus", "channelType": "NHSAPP", "channelStatuses": ["delivered"], "supplierStatuses": ["READ"], "targetIds": ["t2"]}
        ],
        "targets": [
            target("t1", None),
            target("t1", Some(json!({"initialBackoffMs": 5000, "maxBackoffMs": 1000}))),
        ]
    });
    let got: Vec<(String, String)> = parse(&doc, &HashMap::new())
        .expect_err("invalid")
        .into_iter()
        .map(|p| {
            assert_eq!(p.source_name, "a.json");
            (p.pointer, p.reason)
        })
        .collect();
    let want = [
        (
            "/applicationId",
            "is missing and application-ids.json has no entry for client \"client-a\"",
        ),
        ("/targets/1/targetId", "duplicate targetId \"t1\""),
        (
            "/targets/1/delivery/initialBackoffMs",
            "is greater than maxBackoffMs",
        ),
        (
            "/subscriptions/0/targetIds/1",
            "names target \"nope\", which is not in targets",
        ),
        (
            "/subscriptions/1/subscriptionId",
            "duplicate subscriptionId \"s1\"",
        ),
        (
            "/subscriptions/1/targetIds/0",
            "names target \"t2\", which is not in targets",
        ),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(p, r)| (p.to_string(), r.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn compiles_folded_statuses_deduplicated_targets_and_the_mapped_application_id() {
    let doc = json!({
        "clientId": "client-a",
        "subscriptions": [
            {"subscriptionId": "s1", "subscriptionType": "MessageStatus", "messageStatuses": ["DELIVERED", "failed"], "targetIds": ["t2", "t1", "t2"]},
            {"subscriptionId": "s2", "subscriptionType": "ChannelStatus", "channelType": "NHSAPP", "channelStatuses": ["DELIVERED"], "supplierStatuses": ["READ"], "targetIds": ["t1"]}
        ],
        "targets": [target("t1", None), target("t2", None)]
    });
    let ids = HashMap::from([("client-a".to_string(), "app-from-map".to_string())]);
    let c = parse(&doc, &ids).expect("valid");
    assert_eq!(
        (c.client_id.as_str(), c.application_id.as_str()),
        ("client-a", "app-from-map")
    );
    assert_eq!(c.targets.len(), 2);
    match &c.subscriptions[..] {
        [CompiledSubscription::MessageStatus {
            id,
            statuses,
            targets,
        }, CompiledSubscription::ChannelStatus {
            id: id2,
            channel_type,
            channel_statuses,
            supplier_statuses,
            targets: targets2,
        }] => {
            assert_eq!(
                (id.as_str(), statuses.clone(), targets.clone()),
                (
                    "s1",
                    vec!["delivered".to_string(), "failed".to_string()],
                    vec![1, 0]
                )
            );
            assert_eq!(id2, "s2");
            assert_eq!(channel_type, "nhsapp");
            assert_eq!(channel_statuses, &["delivered"]);
            assert_eq!(supplier_statuses, &["read"]);
            assert_eq!(targets2, &[0]);
        }
        other => panic!("{other:?}"),
    }
    // The document's own applicationId wins over the map.
    let mut own = doc.clone();
    own["applicationId"] = json!("app-own");
    assert_eq!(parse(&own, &ids).expect("valid").application_id, "app-own");
}
