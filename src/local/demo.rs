//! `callbacks serve --demo`: the main job visible in a minute. Before the server starts, an
//! in-process [`receive`](super::receive) endpoint is bound at the address of every local
//! `http://` target of the configuration; once the server listens, every event file of the
//! events directory is posted to its own `POST /events`, and the receivers print each signed
//! callback they verify. The server then keeps running for more `curl`s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::Uri;

use crate::config::{self, ConfigSet};

use super::receive::{ReceiveError, ReceiveOptions, Receiver};

/// Where the demo's messages go (the binary prints them on stdout).
pub type Say = Arc<dyn Fn(String) + Send + Sync>;

/// The receivers of a demo, bound and serving.
pub struct Demo {
    /// `client/target` and the URL of each target played, or why it is not.
    pub endpoints: Vec<String>,
    say: Say,
}

/// The loopback address of an `http://` endpoint, if it has one.
fn local_address(endpoint: &str) -> Option<SocketAddr> {
    let uri = endpoint.parse::<Uri>().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = if host == "localhost" {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        host.parse().ok()?
    };
    ip.is_loopback()
        .then(|| SocketAddr::new(ip, uri.port_u16().unwrap_or(80)))
}

/// The addresses to play, each with the targets there; and the targets that are not local.
fn plan(configs: &ConfigSet) -> (BTreeMap<SocketAddr, Vec<String>>, Vec<String>) {
    let mut local = BTreeMap::<SocketAddr, Vec<String>>::new();
    let mut elsewhere = Vec::new();
    for client in configs.clients() {
        for t in &client.targets {
            let name = format!(
                "{}/{} {}",
                client.client_id, *t.target_id, *t.invocation_endpoint
            );
            match local_address(&t.invocation_endpoint) {
                Some(addr) => local.entry(addr).or_default().push(name),
                None => elsewhere.push(name),
            }
        }
    }
    (local, elsewhere)
}

impl Demo {
    /// Binds a receiver at each local target address of `config_dir` and serves it in the
    /// background; each callback's line goes to `say`, prefixed `receiver: `.
    pub async fn start(config_dir: &Path, say: Say) -> Result<Demo, ReceiveError> {
        let configs = config::load_dir(config_dir).map_err(|errors| ReceiveError::Config {
            dir: config_dir.display().to_string(),
            errors,
        })?;
        let (local, elsewhere) = plan(&configs);
        let mut endpoints = Vec::new();
        for (addr, names) in local {
            let sink_say = say.clone();
            let sink: super::receive::Sink =
                Arc::new(move |line| sink_say(format!("receiver: {}", line.render(false))));
            let opts = ReceiveOptions::new(config_dir.to_path_buf(), addr);
            let receiver = Receiver::bind(opts, sink).await?;
            for n in names {
                endpoints.push(format!("{n} (callbacks receive, in this process)"));
            }
            tokio::spawn(receiver.serve(std::future::pending()));
        }
        for n in elsewhere {
            endpoints.push(format!("{n} (not local: no receiver)"));
        }
        Ok(Demo { endpoints, say })
    }

    /// Says what is played, then posts every `*.json` of `events_dir` (sorted) to the server.
    pub async fn post_events(self, ingest: SocketAddr, events_dir: PathBuf) {
        for e in &self.endpoints {
            (self.say)(format!("demo: target {e}"));
        }
        let url = format!("http://{ingest}/events");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&events_dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|x| x == "json"));
        files.sort();
        if files.is_empty() {
            (self.say)(format!(
                "demo: no *.json events in {}",
                events_dir.display()
            ));
        }
        let http = reqwest::Client::new();
        for f in &files {
            let answer = match std::fs::read(f) {
                Err(e) => format!("cannot read: {e}"),
                Ok(body) => match http
                    .post(&url)
                    .header("content-type", "application/cloudevents+json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => format!(
                        "{} {}",
                        r.status().as_u16(),
                        r.text().await.unwrap_or_default()
                    ),
                    Err(e) => format!("not sent: {e}"),
                },
            };
            (self.say)(format!("demo: POST {} -> {answer}", f.display()));
        }
        let example = files
            .first()
            .map_or_else(|| "EVENT.json".into(), |f| f.display().to_string());
        (self.say)(format!(
            "demo: running; post more with: curl -sS -X POST -H 'content-type: application/cloudevents+json' --data @{example} {url} (Ctrl-C stops)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::local_address;

    #[test]
    fn only_loopback_http_endpoints_are_played() {
        assert_eq!(
            local_address("http://127.0.0.1:9000/callbacks"),
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(
            local_address("http://localhost/cb"),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            local_address("http://[::1]:9001/cb"),
            Some("[::1]:9001".parse().unwrap())
        );
        assert_eq!(local_address("https://127.0.0.1:9000/cb"), None);
        assert_eq!(local_address("http://10.0.0.1:9000/cb"), None);
        assert_eq!(local_address("http://client.example/cb"), None);
    }
}
