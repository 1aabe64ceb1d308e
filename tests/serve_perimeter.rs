//! The perimeter of `callbacks serve` (issue 13), all on loopback: a forged event is refused
//! without the bearer token, a content type is required, `Host` is checked when configured, a
//! non-loopback listen address without authentication is refused, TLS with client
//! certificates, the admin listener apart from the ingest port, and file modes.

mod delivery_support;
mod serve_support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use serve_support::{
    client_config, dirs, message_event, one_client, serve_refusal, validate_config, wait_for,
    write_config, Receiver, Server, TargetSpec,
};

const TOKEN: &str = "ingest-token-0123456789abcdef";

fn token_file(root: &std::path::Path) -> String {
    let p = root.join("tokens");
    std::fs::write(&p, format!("old-token-000000000000\n{TOKEN}\n")).unwrap();
    p.display().to_string()
}

async fn post(url: &str, headers: &[(&str, &str)], body: &serde_json::Value) -> (u16, String) {
    let mut r = reqwest::Client::new().post(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_event_is_refused_without_the_token() {
    let (receiver, root, config, data) = one_client().await;
    let tokens = token_file(root.path());
    let server = Server::start_with(
        &config,
        &data,
        &[
            "--allow-http",
            "--allow-private-egress",
            "--ingest-token-file",
            &tokens,
        ],
    );
    let url = server.url("/events");
    let ev = message_event("c1", "forged-1", "DELIVERED");
    let ce = ("content-type", "application/cloudevents+json");
    let bearer = format!("Bearer {TOKEN}");
    for headers in [
        vec![ce],
        vec![ce, ("authorization", "Bearer wrong-token-0123456789")],
        vec![ce, ("authorization", TOKEN)],
    ] {
        let (status, body) = post(&url, &headers, &ev).await;
        assert_eq!(status, 401, "{headers:?}: {body}");
        assert!(!body.contains(TOKEN), "{body}");
    }
    // No content type: refused, not guessed.
    let (status, _) = post(&url, &[("authorization", &bearer)], &ev).await;
    assert_eq!(status, 415);
    let (status, body) = post(&url, &[ce, ("authorization", &bearer)], &ev).await;
    assert_eq!(status, 202, "{body}");
    // The second token of the file (a rotation) works too.
    let ev2 = message_event("c1", "forged-2", "DELIVERED");
    let (status, _) = post(
        &url,
        &[ce, ("authorization", "Bearer old-token-000000000000")],
        &ev2,
    )
    .await;
    assert_eq!(status, 202);
    wait_for(Duration::from_secs(10), "two callbacks", || {
        receiver.on("cb").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.on("cb").len(),
        2,
        "a refused event made a callback"
    );
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("callbacks_ingest_unauthorized_total 3"),
        "{metrics}"
    );
    assert!(!server.stderr().contains(TOKEN), "a token reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_is_checked_when_configured() {
    let (_root, config, data) = dirs();
    let server = Server::start_with(&config, &data, &["--expected-host", "ingest.internal:8080"]);
    let ev = message_event("nobody", "host-1", "DELIVERED");
    let ce = ("content-type", "application/cloudevents+json");
    let (status, _) = post(&server.url("/events"), &[ce], &ev).await;
    assert_eq!(status, 421);
    let (status, _) = post(
        &server.url("/events"),
        &[ce, ("host", "ingest.internal:8080")],
        &ev,
    )
    .await;
    assert_eq!(status, 202);
}

#[test]
fn a_non_loopback_listen_address_needs_authentication() {
    let (root, config, data) = dirs();
    let (code, err) = serve_refusal(&config, &data, "0.0.0.0:0", &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("without authentication") && err.contains("--ingest-token-file"),
        "{err}"
    );
    assert!(!data.exists(), "nothing is created before the refusal");
    drop(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_are_not_on_the_ingest_port() {
    let (_root, config, data) = dirs();
    let server = Server::start_with(&config, &data, &[]);
    for path in ["/metrics", "/healthz", "/readyz"] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path} on the ingest port");
        let (status, _) = server.get(path).await;
        assert_eq!(status, 200, "{path} on the admin port");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let pki = delivery_support::Pki::new();
    let (cert, key) = pki.server_files();
    let (_root, config, data) = dirs();
    let (cert, key, ca) = (
        cert.display().to_string(),
        key.display().to_string(),
        pki.ca_pem.display().to_string(),
    );
    let server = Server::start_with(
        &config,
        &data,
        &["--tls-cert", &cert, "--tls-key", &key, "--client-ca", &ca],
    );
    let url = format!("https://{}/events", server.addr);
    let ca_cert = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_pem).unwrap()).unwrap();
    let ev = serde_json::to_vec(&message_event("nobody", "tls-1", "DELIVERED")).unwrap();
    let anonymous = reqwest::Client::builder()
        .tls_certs_only([ca_cert.clone()])
        .build()
        .unwrap();
    let r = anonymous
        .post(&url)
        .header("content-type", "application/cloudevents+json")
        .body(ev.clone())
        .send()
        .await;
    assert!(
        r.is_err(),
        "a client without a certificate got an answer: {r:?}"
    );
    let mut pem = std::fs::read(&pki.client_cert_pem).unwrap();
    pem.extend(std::fs::read(&pki.client_key_pem).unwrap());
    let client = reqwest::Client::builder()
        .tls_certs_only([ca_cert])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = client
        .post(&url)
        .header("content-type", "application/cloudevents+json")
        .body(ev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // Plain HTTP on the TLS port gets nothing.
    let plain = reqwest::Client::new()
        .post(server.url("/events"))
        .header("content-type", "application/cloudevents+json")
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err());
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_every_file_in_it_are_private() {
    let (_root, config, data) = dirs();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::start_with(&config, &data, &[]);
    let (status, _) = server
        .post_event(&message_event("nobody", "modes-1", "DELIVERED"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(mode(&data), 0o700);
    let files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for name in [
        "callbacks.db",
        "callbacks.db-wal",
        "callbacks.db-shm",
        "serve.lock",
    ] {
        assert!(
            files.contains(&data.join(name)),
            "{name} missing: {files:?}"
        );
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}

/// `validate-config` and `serve` refuse the same SSRF-shaped endpoints and reserved header
/// names, naming the field; the flags that allow local development allow them in both.
#[test]
fn ssrf_endpoints_and_reserved_headers_are_refused_by_validate_config_and_serve() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "https://169.254.169.254/latest/meta-data",
            "x-api-key",
            "/targets/0/invocationEndpoint",
        ),
        (
            "https://10.1.2.3/cb",
            "x-api-key",
            "/targets/0/invocationEndpoint",
        ),
        (
            "https://2130706433/cb",
            "x-api-key",
            "/targets/0/invocationEndpoint",
        ),
        (
            "https://0.0.0.0/cb",
            "x-api-key",
            "/targets/0/invocationEndpoint",
        ),
        (
            "https://user:pass@example.org/cb",
            "x-api-key",
            "/targets/0/invocationEndpoint",
        ),
        (
            "https://example.org:99999/cb",
            "x-api-key",
            "/targets/0/invocationEndpoint",
        ),
        (
            "http://example.org/cb",
            "x-api-key",
            "/targets/0/invocationEndpoint",
        ),
        (
            "https://example.org/cb",
            "Content-Length",
            "/targets/0/apiKey/headerName",
        ),
        (
            "https://example.org/cb",
            "Host",
            "/targets/0/apiKey/headerName",
        ),
        (
            "https://example.org/cb",
            "Transfer-Encoding",
            "/targets/0/apiKey/headerName",
        ),
        (
            "https://example.org/cb",
            "x-hmac-sha256-signature",
            "/targets/0/apiKey/headerName",
        ),
    ];
    for (url, header, pointer) in cases {
        let (_root, config, data) = dirs();
        let mut doc = client_config("c1", &[TargetSpec::new("t", url.to_string())]);
        doc["targets"][0]["apiKey"]["headerName"] = (*header).into();
        write_config(&config, "c1", &doc);
        let (code, err) = validate_config(&config, &[]);
        assert_eq!(code, Some(1), "{url} {header}: {err}");
        assert!(err.contains(pointer), "{url} {header}: {err}");
        let (code, err) = serve_refusal(&config, &data, "127.0.0.1:0", &[]);
        assert_eq!(code, Some(2), "{url} {header}: {err}");
        assert!(err.contains(pointer), "serve: {url} {header}: {err}");
    }
    // A key with CR/LF is refused without being shown.
    let (_root, config, _data) = dirs();
    let mut doc = client_config(
        "c1",
        &[TargetSpec::new("t", "https://example.org/cb".into())],
    );
    doc["targets"][0]["apiKey"]["headerValue"] = "secret\r\nX-Injected: 1".into();
    write_config(&config, "c1", &doc);
    let (_, err) = validate_config(&config, &[]);
    assert!(
        err.contains("/targets/0/apiKey/headerValue") && !err.contains("secret"),
        "{err}"
    );
    // Local development: both flags, both commands.
    let (_root, config, _data) = dirs();
    write_config(
        &config,
        "c1",
        &client_config(
            "c1",
            &[TargetSpec::new("t", "http://127.0.0.1:9000/cb".into())],
        ),
    );
    let (code, err) = validate_config(&config, &["--allow-http", "--allow-private-egress"]);
    assert_eq!(code, Some(0), "{err}");
}

/// 2,000 idle connections do not stop a valid POST or `/readyz`, and the header timeout
/// closes them (slowloris).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_neither_block_ingest_nor_stay_open() {
    use tokio::io::AsyncReadExt;
    let (_root, config, data) = dirs();
    let server = Server::start_with(&config, &data, &["--header-timeout-ms", "1500"]);
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // A slowloris: half a request head, never finished.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"POST /events HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, body) = server
        .post_event(&message_event("nobody", "idle-1", "DELIVERED"))
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // After the header timeout the server has closed them: a read sees the end (or a reset).
    let mut buf = [0u8; 64];
    for s in idle
        .iter_mut()
        .step_by(97)
        .chain(std::iter::once(&mut slow))
    {
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(_)) | Ok(Err(_))),
            "connection still open after the header timeout"
        );
    }
}

/// A junk flood fills at most the reject storage cap; beyond it rejects are counted, not
/// stored, and valid events keep being accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junk_flood_cannot_fill_the_disk_or_stop_valid_events() {
    let (_root, config, data) = dirs();
    let server = Server::start_with(
        &config,
        &data,
        &["--reject-max-total-mb", "1", "--reject-max-bytes", "4096"],
    );
    let junk: Vec<serde_json::Value> = (0..1000)
        .map(|i| serde_json::json!({"id": format!("junk-{i}"), "padding": "x".repeat(3000)}))
        .collect();
    for _ in 0..2 {
        let (status, report) = server.post_batch(&junk).await;
        assert_eq!(status, 207);
        assert_eq!(report["rejectedCount"], 1000);
        assert!(
            report["rejected"].as_array().unwrap().len() <= 100,
            "the answer is bounded"
        );
    }
    let (status, _) = server
        .post_event(&message_event("nobody", "after-flood", "DELIVERED"))
        .await;
    assert_eq!(status, 202);
    let db = rusqlite::Connection::open(data.join("callbacks.db")).unwrap();
    let stored: i64 = db
        .query_row(
            "SELECT COALESCE(SUM(length(body) + length(reason)), 0) FROM rejects",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(stored <= 1 << 20, "rejects hold {stored} bytes");
    let (_, metrics) = server.get("/metrics").await;
    let not_stored: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("callbacks_rejects_not_stored_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(not_stored > 1000, "{not_stored}");
}

/// Below the free-space floor ingest answers 503 with Retry-After and /readyz fails; when
/// space returns both recover without a restart. A small tmpfs is mounted for the test (root
/// only: this machine's CI runs as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_recovers_by_itself() {
    let (root, config, _) = dirs();
    let mnt = root.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    assert!(mounted, "this test mounts a 48 MiB tmpfs and needs root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let data = mnt.join("data");
    let receiver = Receiver::start().await;
    write_config(
        &config,
        "c1",
        &client_config("c1", &[TargetSpec::new("t", receiver.url("cb"))]),
    );
    let server = Server::start_with(
        &config,
        &data,
        &[
            "--allow-http",
            "--allow-private-egress",
            "--min-free-disk-mb",
            "16",
        ],
    );
    let (status, _) = server
        .post_event(&message_event("c1", "disk-1", "DELIVERED"))
        .await;
    assert_eq!(status, 202);
    // Fill the disk to below the floor.
    let fill = mnt.join("fill");
    let ok = Command::new("fallocate")
        .args(["-l", "36M"])
        .arg(&fill)
        .status()
        .unwrap();
    assert!(ok.success());
    let r = reqwest::Client::new()
        .post(server.url("/events"))
        .header("content-type", "application/cloudevents+json")
        .body(serde_json::to_vec(&message_event("c1", "disk-2", "DELIVERED")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    // Space returns: both recover, no restart.
    std::fs::remove_file(&fill).unwrap();
    let (status, _) = server.get("/readyz").await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post_event(&message_event("c1", "disk-3", "DELIVERED"))
        .await;
    assert_eq!(status, 202);
    wait_for(Duration::from_secs(10), "two callbacks", || {
        receiver.delivered_keys("cb").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.on("cb").len(),
        2,
        "each delivered callback was sent once"
    );
    server.terminate();
}

/// Deleting a client's file removes the client, logged and counted; deleting the whole
/// directory keeps the last good configuration, loudly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_removal_is_logged_and_counted() {
    let (receiver, _root, config, data) = one_client().await;
    let server = Server::start(&config, &data);
    std::fs::remove_file(config.join("c1.json")).unwrap();
    wait_for(Duration::from_secs(10), "the removal", || {
        server.stderr().contains("configuration file removed")
    })
    .await;
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("callbacks_config_clients_removed_total 1"),
        "{metrics}"
    );
    let (status, report) = server
        .post_event(&message_event("c1", "removed-1", "DELIVERED"))
        .await;
    assert_eq!((status, report["callbacks"].as_u64()), (202, Some(0)));
    // The whole directory: refused, the (now empty) last good configuration stays, loud error.
    write_config(
        &config,
        "c1",
        &client_config("c1", &[TargetSpec::new("t", receiver.url("cb"))]),
    );
    wait_for(Duration::from_secs(10), "the reload", || {
        server.stderr().matches("configuration loaded").count() >= 2
    })
    .await;
    std::fs::remove_dir_all(&config).unwrap();
    wait_for(Duration::from_secs(10), "the directory error", || {
        server
            .stderr()
            .contains("cannot read the configuration directory")
    })
    .await;
    let (status, report) = server
        .post_event(&message_event("c1", "removed-2", "DELIVERED"))
        .await;
    assert_eq!(
        (status, report["callbacks"].as_u64()),
        (202, Some(1)),
        "the last good configuration stays"
    );
}
