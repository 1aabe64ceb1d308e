//! What a person reads at the default log level: `callbacks serve` (no `RUST_LOG`) delivering to
//! `callbacks receive`, with one callback retried (`--fail-first 1`) and one dead-lettered
//! (`force-400-` prefix): the start-up summary and one line per delivery outcome with its
//! reason, event and message ids; never an API key; no per-event acceptance lines.

mod receive_support;
mod serve_support;

use std::time::Duration;

use serde_json::{json, Value};

use receive_support::Proc;
use serve_support::{client_config, message_event, TargetSpec, API_KEY};

fn logs(p: &Proc) -> Vec<Value> {
    p.stderr()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON log line: {l:?}: {e}")))
        .collect()
}

fn find<'a>(logs: &'a [Value], message: &str, event_id: &str) -> Option<&'a Value> {
    logs.iter().find(|l| {
        l["fields"]["message"] == message && l["fields"]["event_id"].as_str() == Some(event_id)
    })
}

#[tokio::test]
async fn default_logs_show_the_start_up_summary_a_retry_and_a_dead_letter_with_reasons() {
    let (root, config, data) = serve_support::dirs();
    // The receiver plays the same client (key, application id) as serve is configured with.
    let recv_config = serve_support::receiver_config(root.path(), "c1");
    let (receiver, raddr) = Proc::receive(&recv_config, &["--json", "--fail-first", "1"]);
    let spec = TargetSpec::new("t1", format!("http://{raddr}/cb"));
    serve_support::write_config(&config, "c1", &client_config("c1", &[spec]));
    let (serve, ingest, _admin) = Proc::serve(&config, &data);
    let addr = ingest.trim_start_matches("http://").to_string();

    let retried = message_event("c1", "evt-retried", "DELIVERED");
    let mut dead = message_event("c1", "evt-dead", "DELIVERED");
    dead["data"]["messageReference"] = json!("force-400-permanent");
    for e in [&retried, &dead] {
        assert_eq!(serve.post_event(e).await.0, 202);
    }
    // The receiver saw: one 500 (scripted), one 400 (prefix), one 202 (the retry).
    let start = std::time::Instant::now();
    while receiver.json_lines().len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            receiver.lines()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = std::time::Instant::now();
    let logs = loop {
        let l = logs(&serve);
        if find(&l, "callback delivered", "evt-retried").is_some()
            && find(&l, "callback dead-lettered", "evt-dead").is_some()
        {
            break l;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            serve.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let started = logs
        .iter()
        .find(|l| l["fields"]["message"] == "serve started")
        .expect("start-up summary");
    assert_eq!(started["level"], "INFO");
    let f = &started["fields"];
    assert_eq!(f["clients"], 1);
    assert_eq!(f["targets"], "c1/t1");
    assert_eq!(f["listen"], addr.as_str());
    assert_eq!(f["data_dir"], data.to_str().unwrap());
    assert_eq!(f["queued_recovered"], 0);

    let retry =
        find(&logs, "callback attempt failed; will retry", "evt-retried").expect("retry line");
    assert_eq!(retry["fields"]["outcome"], "HTTP 500");
    assert!(retry["fields"]["retry_in_ms"].as_u64().is_some(), "{retry}");
    assert_eq!(
        retry["fields"]["message_id"],
        serve_support::message_id_of("evt-retried").as_str()
    );
    let delivered = find(&logs, "callback delivered", "evt-retried").unwrap();
    assert_eq!(delivered["fields"]["attempts"], 2);
    let dlq = find(&logs, "callback dead-lettered", "evt-dead").unwrap();
    assert!(
        dlq["fields"]["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 400"),
        "{dlq}"
    );
    assert_eq!(
        dlq["fields"]["message_id"],
        serve_support::message_id_of("evt-dead").as_str()
    );

    let all = serve.stderr();
    assert!(!all.contains(API_KEY), "an API key in the logs:\n{all}");
    assert!(
        !all.contains("event accepted"),
        "acceptance lines are debug:\n{all}"
    );
}
