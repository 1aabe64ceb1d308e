//! Memory of `callbacks serve` under concurrent large requests (issue 13): ten 15 MB batches of
//! invalid events posted at once. The peak resident set (`VmHWM`) stays under the bound README
//! "Running serve safely" documents, because at most `--max-concurrent-ingest` bodies (each at
//! most `--max-batch-bytes`) are read and processed at once and the answer is capped. Loopback
//! only; bounded in time by the body timeout.

mod serve_support;

use std::time::{Duration, Instant};

use serve_support::{dirs, Server};

/// The documented bound (README "Running serve safely"): 64 MB + 3 × `--max-concurrent-ingest`
/// × `--max-batch-bytes`, at the defaults (4 × 16 MiB). Measured: about 155 MB (debug build).
const BOUND_MB: u64 = 64 + 3 * 4 * 16;
const BATCHES: usize = 10;

/// A `kB` field of `/proc/PID/status`, in MB.
fn status_mb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kb / 1024
}

/// About 15 MB: 10,000 events (the batch cap) that fail validation, 1.5 KB each.
fn invalid_batch(n: usize) -> Vec<u8> {
    let events: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            serde_json::json!({
                "specversion": "1.0",
                "id": format!("junk-{n}-{i}"),
                "type": "not.a.known.type",
                "padding": "x".repeat(1400),
            })
        })
        .collect();
    let body = serde_json::to_vec(&events).unwrap();
    assert!(body.len() > 14_500_000 && body.len() < 16 << 20);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_15_mb_invalid_batches_stay_under_the_memory_bound() {
    let (_root, config, data) = dirs();
    let server = Server::start_with(&config, &data, &[]);
    let pid = server.child.id();
    let before = status_mb(pid, "VmHWM:");
    let url = server.url("/events");
    let http = reqwest::Client::new();
    let start = Instant::now();
    let posts: Vec<_> = (0..BATCHES)
        .map(|n| {
            let body = invalid_batch(n);
            let req = http
                .post(&url)
                .header("content-type", "application/cloudevents-batch+json")
                .body(body)
                .timeout(Duration::from_secs(120));
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.bytes().await.unwrap().len())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for p in posts {
        let (status, answer_len) = p.await.unwrap();
        // Each answer is capped (100 rejects described), whatever the batch held.
        assert!(answer_len < 256 * 1024, "a {answer_len}-byte answer");
        statuses.push(status);
    }
    let peak = status_mb(pid, "VmHWM:");
    eprintln!(
        "statuses {statuses:?}; VmHWM {before} MB before, {peak} MB after, {:?}",
        start.elapsed()
    );
    // Every batch was answered: processed (207) or turned away while busy (503).
    assert!(
        statuses.iter().all(|s| *s == 207 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&207), "{statuses:?}");
    assert!(peak < BOUND_MB, "peak RSS {peak} MB, bound {BOUND_MB} MB");
    let (ready, _) = server.get("/readyz").await;
    assert_eq!(ready, 200);
}
