//! Shared by the `receive*`, quick start and `serve_*` tests that run `callbacks receive`: a
//! `callbacks` child process whose stdout lines are collected as they come, killed when
//! dropped; `receive` and `serve` started on free ports.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_callbacks")
}

/// A running `callbacks` command.
pub struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The ingest base URL of a `serve` started by [`Proc::serve`].
    ingest: Option<String>,
}

fn collect(r: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

impl Proc {
    /// Starts `callbacks ARGS` in `dir` with `env` set (`RUST_LOG` unset unless `env` sets it).
    pub fn start(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Proc {
        let mut child = Command::new(bin())
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start callbacks");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), lines.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        Proc {
            child,
            lines,
            stderr,
            ingest: None,
        }
    }

    /// `callbacks serve --config CONFIG --data-dir DATA` at the default log level, both
    /// listeners on free loopback ports, local endpoints allowed (`--allow-http
    /// --allow-private-egress`), once it listens: the process, the ingest and the admin base
    /// URLs (`http://ADDR`).
    pub fn serve(config: &Path, data: &Path) -> (Proc, String, String) {
        let (config, data) = (config.to_str().unwrap(), data.to_str().unwrap());
        let mut p = Proc::start(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--allow-http",
                "--allow-private-egress",
                "--config",
                config,
                "--data-dir",
                data,
            ],
            Path::new("."),
            &[],
        );
        let ingest = p.wait_line(Duration::from_secs(20), |l| l.starts_with("listening on "));
        let admin = p.wait_line(Duration::from_secs(5), |l| l.starts_with("admin on "));
        let ingest = ingest.trim_start_matches("listening on ").to_string();
        let admin = admin.trim_start_matches("admin on ").to_string();
        p.ingest = Some(ingest.clone());
        (p, ingest, admin)
    }

    /// POSTs one CloudEvent to this `serve` (started by [`Proc::serve`]): the status and the
    /// JSON answer (`null` if there is none).
    pub async fn post_event(&self, event: &Value) -> (u16, Value) {
        let ingest = self
            .ingest
            .as_deref()
            .expect("a serve started by Proc::serve");
        let r = reqwest::Client::new()
            .post(format!("{ingest}/events"))
            .header("content-type", "application/cloudevents+json")
            .json(event)
            .send()
            .await
            .expect("POST /events");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `callbacks receive --listen 127.0.0.1:0 --config DIR EXTRA...`, once it listens.
    pub fn receive(config: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
        let config = config.to_str().unwrap();
        let mut args = vec!["receive", "--listen", "127.0.0.1:0", "--config", config];
        args.extend_from_slice(extra);
        let p = Proc::start(&args, Path::new("."), &[]);
        let first = p.wait_line(Duration::from_secs(20), |l| l.starts_with("listening on "));
        let addr = first
            .trim_start_matches("listening on http://")
            .parse()
            .unwrap();
        (p, addr)
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The first stdout line that satisfies `f`, waiting up to `limit`; panics with what was
    /// printed if there is none.
    pub fn wait_line(&self, limit: Duration, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| f(l)) {
                return l;
            }
            if start.elapsed() > limit {
                panic!(
                    "no matching line within {limit:?}; stdout:\n{}\nstderr:\n{}",
                    self.lines().join("\n"),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The JSON lines printed so far (`--json`), skipping the `listening on` line.
    pub fn json_lines(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for the `n`th JSON line.
    pub fn wait_json(&self, n: usize) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self.json_lines().get(n - 1) {
                return v.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no JSON line {n}; stdout:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap().code()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
