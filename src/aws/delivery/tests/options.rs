//! The delivery Lambda's options: concurrency cap, environment settings, message bodies and
//! the senders' egress guard.

use super::*;

#[test]
fn the_concurrency_cap_mirrors_the_terraform_formula() {
    // One environment per 10/s of the https targets' summed rate, rounded up, at least 2.
    let https = client(json!({"mode": "https"}));
    assert_eq!(ConcurrencyCap::Terraform.of(&https), 5, "50/s");
    let with_rates = |rates: &[u64]| {
        let targets: Vec<_> = rates
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({"targetId": format!("t{i}"), "type": "API",
                "invocationEndpoint": "https://c1.example/cb", "invocationMethod": "POST",
                "invocationRateLimit": r, "apiKey": {"headerName": "x-api-key", "headerValue": "k"},
                "delivery": {"mode": "https"}})
            })
            .collect();
        let doc = json!({"clientId": "c1", "applicationId": "app-1", "subscriptions": [], "targets": targets});
        let c =
            parse_client("c1.json", doc.to_string().as_bytes(), &HashMap::new()).expect("valid");
        ConcurrencyCap::Terraform.of(&c)
    };
    assert_eq!(with_rates(&[21]), 3, "rounded up");
    assert_eq!(with_rates(&[15, 6]), 3, "summed over https targets");
    assert_eq!(with_rates(&[1]), 2, "at least 2");
    let api = client(json!({}));
    assert_eq!(ConcurrencyCap::Terraform.of(&api), 2, "at least 2");
    assert_eq!(ConcurrencyCap::Fixed(0).of(&api), 1);
}

#[test]
fn settings_come_from_the_environment() {
    let env = HashMap::from([
        ("CLIENT_CONFIG_BUCKET", "b"),
        ("CLIENT_CONFIG_PREFIX", "clients/"),
        ("DELIVERY_STATE_TABLE", "t"),
        ("CLIENT_MAX_CONCURRENCY", "4"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"),
    ]);
    let s = DeliveryLambdaSettings::from_lookup(|k| env.get(k).map(|v| v.to_string()))
        .expect("settings");
    assert_eq!(s.config.bucket, "b");
    assert_eq!(s.state_table.as_deref(), Some("t"));
    assert_eq!(s.concurrency, ConcurrencyCap::Fixed(4));
    assert_eq!(s.sqs_url_base.as_deref(), Some("http://127.0.0.1:5000"));
    assert!(!s.allow_private_egress, "the egress guard is on by default");
    let allowed = DeliveryLambdaSettings::from_lookup(|k| match k {
        "CLIENT_CONFIG_BUCKET" => Some("b".into()),
        "ALLOW_PRIVATE_EGRESS" => Some("true".into()),
        _ => None,
    })
    .expect("settings");
    assert!(allowed.allow_private_egress);
    let e = DeliveryLambdaSettings::from_lookup(|_| None).expect_err("bucket");
    assert_eq!(e.name, "CLIENT_CONFIG_BUCKET");
    let bad = DeliveryLambdaSettings::from_lookup(|k| match k {
        "CLIENT_CONFIG_BUCKET" => Some("b".into()),
        "CLIENT_MAX_CONCURRENCY" => Some("0".into()),
        _ => None,
    })
    .expect_err("cap");
    assert_eq!(bad.name, "CLIENT_MAX_CONCURRENCY");
}

#[test]
fn bodies_are_read_from_envelopes_or_details() {
    assert!(parse_body("[]").is_err());
    assert!(parse_body(r#"{"detail-type":"x","detail":{}}"#).is_err());
    assert!(request_body(json!({"data": [{"type": "MessageStatus"}]})).is_err());
    let r = BatchResponse {
        batch_item_failures: vec![ItemFailure {
            item_identifier: "m".into(),
        }],
    };
    assert_eq!(
        serde_json::to_value(&r).expect("json"),
        json!({"batchItemFailures": [{"itemIdentifier": "m"}]})
    );
}

/// The Lambda's senders apply the egress guard of `callbacks serve` (one implementation):
/// a loopback or metadata endpoint is refused before any connection unless allowed.
#[tokio::test]
async fn the_lambda_sender_refuses_non_public_endpoints_unless_allowed() {
    let target = TargetKey {
        client_id: "c".into(),
        target_id: "t".into(),
    };
    let settings = crate::config::DeliverySettings::defaults(10);
    let body = bytes::Bytes::from_static(b"{}");
    let headers = Vec::new();
    for url in ["https://127.0.0.1:9/cb", "https://169.254.169.254/latest"] {
        let request = Request {
            url,
            headers: &headers,
            body: &body,
        };
        let strict = sender::HttpSenders::new(None, false)
            .send(&target, &settings, request)
            .await;
        match &strict.outcome {
            AttemptOutcome::Invalid(reason) => {
                assert!(reason.contains("egress refused"), "{reason}")
            }
            other => panic!("{url}: {other:?}"),
        }
        // Allowed: a connection is tried (loopback only; nothing listens on port 9).
        if url.contains("127.0.0.1") {
            let lax = sender::HttpSenders::new(None, true)
                .send(&target, &settings, request)
                .await;
            assert!(
                matches!(&lax.outcome, AttemptOutcome::Connection(_)),
                "{url}: {:?}",
                lax.outcome
            );
        }
    }
    // A name resolving to loopback: refused by the resolver, before connecting (retryable).
    let request = Request {
        url: "https://localhost:9/cb",
        headers: &headers,
        body: &body,
    };
    let named = sender::HttpSenders::new(None, false)
        .send(&target, &settings, request)
        .await;
    match &named.outcome {
        AttemptOutcome::Connection(reason) => assert!(
            reason.contains("egress refused: localhost resolves only to non-public addresses"),
            "{reason}"
        ),
        other => panic!("localhost: {other:?}"),
    }
}
