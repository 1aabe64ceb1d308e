//! End-to-end benchmark of `callbacks serve`: starts a fast local receiver and the server
//! (the release binary), posts events at a fixed rate for a fixed time, and reports
//! callbacks/s delivered, latency from the `202` to the callback's arrival (p50/p90/p99/max)
//! and the server's peak RSS (VmHWM).
//!
//! cargo build --release && cargo run --release --example serve_bench -- --rate 5000 --seconds 20
//!
//! Options: --rate EVENTS_PER_S  --seconds N  --clients N (one target each, 300/s limit)
//!          --batch N (events per POST)  --server PATH (default target/release/callbacks)
//!          --ingest-token (the server gets --ingest-token-file; every POST sends
//!          `Authorization: Bearer`, to measure what the perimeter costs)

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::json;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let now = Instant::now();
    let text = std::str::from_utf8(&body).unwrap_or("");
    if let Some(i) = text.find("\"idempotencyKey\":\"") {
        let start = i + 18;
        if let Some(key) = text.get(start..start + 64) {
            arrivals
                .lock()
                .unwrap()
                .entry(key.to_string())
                .or_insert(now);
        }
    }
    ""
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn message_id(n: usize) -> String {
    format!("{n:0>27}")
}

fn event(client: &str, n: usize) -> serde_json::Value {
    json!({
        "specversion": "1.0", "id": format!("bench-{n}"), "source": "/bench",
        "type": "uk.nhs.notify.message.status.PUBLISHED.v1", "time": "2025-11-03T14:35:05.685Z",
        "datacontenttype": "application/json",
        "data": {"clientId": client, "messageId": message_id(n), "messageReference": format!("ref-{n}"),
            "messageStatus": "DELIVERED", "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}],
            "timestamp": "2025-11-03T14:35:05.685Z",
            "routingPlan": {"id": "rp", "name": "plan", "version": "1", "createdDate": "2025-09-17T14:27:51.413Z"}}
    })
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: usize = arg(&args, "--rate", "5000").parse().expect("--rate");
    let seconds: u64 = arg(&args, "--seconds", "20").parse().expect("--seconds");
    let clients: usize = arg(&args, "--clients", "32").parse().expect("--clients");
    let batch: usize = arg(&args, "--batch", "50").parse().expect("--batch");
    let token = args
        .iter()
        .any(|a| a == "--ingest-token")
        .then(|| "bench-ingest-token-0123456789abcdef".to_string());
    let server_bin = arg(
        &args,
        "--server",
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/callbacks"),
    );

    let arrivals: Arrivals = Arc::default();
    let app = Router::new()
        .route("/cb", post(receive))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let recv_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    for c in 0..clients {
        let id = format!("bench-{c}");
        let doc = json!({"clientId": id, "applicationId": format!("app-{c}"),
            "subscriptions": [{"subscriptionId": "s", "subscriptionType": "MessageStatus",
                "messageStatuses": ["DELIVERED"], "targetIds": ["t"]}],
            "targets": [{"targetId": "t", "type": "API", "invocationEndpoint": format!("http://{recv_addr}/cb"),
                "invocationMethod": "POST", "invocationRateLimit": 300,
                "apiKey": {"headerName": "x-api-key", "headerValue": format!("key-{c}")}}]});
        std::fs::write(
            config.join(format!("{id}.json")),
            serde_json::to_vec(&doc).unwrap(),
        )
        .unwrap();
    }
    let mut server = Command::new(&server_bin);
    server
        .args([
            "serve",
            "--allow-http",
            "--allow-private-egress",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(root.path().join("data"));
    if let Some(t) = &token {
        let file = root.path().join("ingest-tokens");
        std::fs::write(&file, format!("{t}\n")).unwrap();
        server.arg("--ingest-token-file").arg(&file);
    }
    let mut child = server
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server (cargo build --release first)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("server address")
        .to_string();
    let pid = child.id();

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let accepted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = rate * seconds as usize;
    let interval = Duration::from_secs_f64(batch as f64 / rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut failures = 0usize;
    for (k, first) in (0..total).step_by(batch).enumerate() {
        tokio::time::sleep_until((start + interval * k as u32).into()).await;
        let body: Vec<_> = (first..(first + batch).min(total))
            .map(|n| event(&format!("bench-{}", n % clients), n))
            .collect();
        let keys: Vec<String> = (first..(first + batch).min(total))
            .map(|n| callbacks::sign::idempotency_key("/bench", &format!("bench-{n}")))
            .collect();
        let (http, url, accepted) = (http.clone(), format!("{base}/events"), accepted.clone());
        let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
        tasks.push(tokio::spawn(async move {
            let mut r = http
                .post(url)
                .header("content-type", "application/cloudevents-batch+json");
            if let Some(b) = bearer {
                r = r.header("authorization", b);
            }
            let r = r.body(serde_json::to_vec(&body).unwrap()).send().await;
            let ok = matches!(&r, Ok(r) if r.status().as_u16() == 202);
            let now = Instant::now();
            if ok {
                let mut a = accepted.lock().unwrap();
                for k in keys {
                    a.insert(k, now);
                }
            }
            ok
        }));
    }
    for t in tasks {
        if !t.await.unwrap_or(false) {
            failures += 1;
        }
    }
    let posted_in = start.elapsed();
    // Drain: wait for the stragglers (at most 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss = vm_hwm_kb(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    let arrivals = arrivals.lock().unwrap();
    let accepted = accepted.lock().unwrap();
    let first = arrivals.values().min().copied().unwrap_or(start);
    let last = arrivals.values().max().copied().unwrap_or(start);
    let mut lat: Vec<Duration> = accepted
        .iter()
        .filter_map(|(k, at)| arrivals.get(k).map(|r| r.saturating_duration_since(*at)))
        .collect();
    lat.sort();
    let span = last.duration_since(first).as_secs_f64().max(1e-9);
    println!("offered: {rate} events/s for {seconds} s in batches of {batch} over {clients} clients (1 target each, 300/s limit); ingest token: {}",
        if token.is_some() { "on" } else { "off" });
    println!(
        "posted {total} events in {:.2} s; failed POSTs: {failures}",
        posted_in.as_secs_f64()
    );
    println!(
        "delivered: {} of {} callbacks; first→last arrival {:.2} s = {:.0} callbacks/s",
        arrivals.len(),
        total,
        span,
        arrivals.len() as f64 / span
    );
    println!(
        "latency 202→arrival: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.90).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "server peak RSS (VmHWM): {} MiB",
        rss.map_or("?".into(), |kb| format!("{:.1}", kb as f64 / 1024.0))
    );
}
