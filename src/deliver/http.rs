//! The HTTP sender: one `reqwest` client per target (connection pool, request timeout,
//! optional mTLS identity, rustls), one call per attempt, an [`AttemptOutcome`] back.
//! Errors are rendered without the URL and never include header values (the API key).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::egress::Egress;
use super::policy::{parse_retry_after, AttemptOutcome};
pub use crate::config::MtlsFiles;

/// How a target's client is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    pub timeout: Duration,
    pub mtls: Option<MtlsFiles>,
    /// `http://` and non-public addresses allowed or not; checked on every connection.
    pub egress: Egress,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
}

impl SenderConfig {
    pub fn new(timeout: Duration) -> Self {
        SenderConfig {
            timeout,
            mtls: None,
            egress: Egress::default(),
            max_idle_per_host: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("cannot read {what} file {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("invalid {what}: {reason}")]
    Tls { what: &'static str, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// One request: the exact bytes the core produced.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub url: &'a str,
    /// Header names and values (values may be secret: they never reach logs).
    pub headers: &'a [(String, String)],
    pub body: &'a Bytes,
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    pub started: SystemTime,
    pub duration: Duration,
}

/// Sends callbacks for one target.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    config: SenderConfig,
}

/// The most response body read (and discarded) to keep the connection reusable.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

fn read(what: &'static str, path: &PathBuf) -> Result<Vec<u8>, SenderError> {
    std::fs::read(path).map_err(|source| SenderError::ReadFile {
        what,
        path: path.display().to_string(),
        source,
    })
}

impl HttpSender {
    pub fn new(config: SenderConfig) -> Result<Self, SenderError> {
        Self::with_extra_ca(config, None)
    }

    /// As [`HttpSender::new`], also trusting the CA bundle `extra_ca` (PEM) in addition to the
    /// system roots (the AWS delivery Lambda's `EXTRA_CA_BUNDLE_FILE`; test CAs). An mTLS
    /// `ca_pem` still replaces every other root.
    pub fn with_extra_ca(
        config: SenderConfig,
        extra_ca: Option<&std::path::Path>,
    ) -> Result<Self, SenderError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!config.egress.allow_http)
            .dns_resolver(config.egress.resolver())
            .pool_max_idle_per_host(config.max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("nhs-notify-callbacks/", env!("CARGO_PKG_VERSION")));
        if let Some(m) = &config.mtls {
            let mut pem = read("mTLS certificate", &m.cert_pem)?;
            pem.push(b'\n');
            pem.extend_from_slice(&read("mTLS key", &m.key_pem)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| SenderError::Tls {
                what: "mTLS identity",
                reason: e.to_string(),
            })?;
            builder = builder.identity(identity);
            if let Some(ca) = &m.ca_pem {
                let certs =
                    reqwest::Certificate::from_pem_bundle(&read("CA", ca)?).map_err(|e| {
                        SenderError::Tls {
                            what: "CA bundle",
                            reason: e.to_string(),
                        }
                    })?;
                builder = builder.tls_certs_only(certs);
            }
        }
        if let Some(ca) = extra_ca {
            let only = config.mtls.as_ref().is_some_and(|m| m.ca_pem.is_some());
            if !only {
                let certs = reqwest::Certificate::from_pem_bundle(&read("CA", &ca.to_path_buf())?)
                    .map_err(|e| SenderError::Tls {
                        what: "CA bundle",
                        reason: e.to_string(),
                    })?;
                builder = builder.tls_certs_merge(certs);
            }
        }
        let client = builder
            .build()
            .map_err(|e| SenderError::Build(e.without_url().to_string()))?;
        Ok(HttpSender { client, config })
    }

    /// Makes one attempt. Never fails: every problem is an [`AttemptOutcome`].
    pub async fn send(&self, req: Request<'_>) -> Attempt {
        let started = SystemTime::now();
        let t0 = Instant::now();
        let outcome = self.attempt(req).await;
        Attempt {
            outcome,
            started,
            duration: t0.elapsed(),
        }
    }

    async fn attempt(&self, req: Request<'_>) -> AttemptOutcome {
        if let Err(e) = self.config.egress.check_url(req.url) {
            return AttemptOutcome::Invalid(e.to_string());
        }
        let mut builder = self.client.post(req.url);
        for (name, value) in req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = match builder.body(req.body.clone()).build() {
            Ok(r) => r,
            Err(e) => return AttemptOutcome::Invalid(chain(&e)),
        };
        let mut response = match self.client.execute(request).await {
            Ok(r) => r,
            Err(e) => return transport(&e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // Drain a small body so the connection can be reused; a large one is dropped.
        let mut read = 0usize;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    if read > MAX_RESPONSE_BODY {
                        break;
                    }
                }
                Ok(None) => break,
                // The status has arrived; a broken body after it does not change the answer,
                // except that a timeout while reading means we never saw the whole answer.
                Err(e) if e.is_timeout() => return AttemptOutcome::Timeout,
                Err(_) => break,
            }
        }
        AttemptOutcome::Status {
            status,
            retry_after,
        }
    }
}

/// Renders a reqwest error with its causes, without the URL.
fn chain(e: &reqwest::Error) -> String {
    let mut s = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    s.push_str(if e.is_connect() {
        "connect"
    } else if e.is_builder() {
        "builder"
    } else if e.is_redirect() {
        "redirect"
    } else if e.is_body() {
        "body"
    } else {
        "request"
    });
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn transport(e: &reqwest::Error) -> AttemptOutcome {
    if e.is_timeout() {
        AttemptOutcome::Timeout
    } else if e.is_builder() {
        AttemptOutcome::Invalid(chain(e))
    } else {
        AttemptOutcome::Connection(chain(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mtls(dir: &std::path::Path, cert: &[u8], key: &[u8]) -> SenderConfig {
        std::fs::write(dir.join("c.pem"), cert).unwrap();
        std::fs::write(dir.join("k.pem"), key).unwrap();
        SenderConfig {
            mtls: Some(MtlsFiles {
                cert_pem: dir.join("c.pem"),
                key_pem: dir.join("k.pem"),
                ca_pem: None,
            }),
            ..SenderConfig::new(Duration::from_secs(1))
        }
    }

    #[test]
    fn unreadable_or_invalid_mtls_files_are_reported_without_contents() {
        let dir = std::env::temp_dir().join(format!("mtls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = SenderConfig {
            mtls: Some(MtlsFiles {
                cert_pem: dir.join("nope.pem"),
                key_pem: dir.join("nope.key"),
                ca_pem: None,
            }),
            ..SenderConfig::new(Duration::from_secs(1))
        };
        assert!(matches!(
            HttpSender::new(missing),
            Err(SenderError::ReadFile {
                what: "mTLS certificate",
                ..
            })
        ));
        let garbage = mtls(&dir, b"not a certificate", b"top-secret-key-material");
        let err = HttpSender::new(garbage).unwrap_err();
        assert!(matches!(err, SenderError::Tls { .. }), "{err}");
        assert!(!err.to_string().contains("top-secret-key-material"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn http_is_refused_unless_allowed_and_refused_connections_are_retryable() {
        let body = Bytes::from_static(b"{}");
        let headers = vec![("x-api-key".to_string(), "secret-value".to_string())];
        let strict = HttpSender::new(SenderConfig::new(Duration::from_secs(1))).unwrap();
        let a = strict
            .send(Request {
                url: "http://127.0.0.1:9/x",
                headers: &headers,
                body: &body,
            })
            .await;
        assert!(
            matches!(a.outcome, AttemptOutcome::Invalid(_)),
            "{:?}",
            a.outcome
        );
        let lax = HttpSender::new(SenderConfig {
            egress: Egress {
                allow_http: true,
                allow_private: true,
                ..Egress::default()
            },
            ..SenderConfig::new(Duration::from_secs(1))
        })
        .unwrap();
        let a = lax
            .send(Request {
                url: "http://127.0.0.1:9/x",
                headers: &headers,
                body: &body,
            })
            .await;
        assert!(
            matches!(a.outcome, AttemptOutcome::Connection(_)),
            "{:?}",
            a.outcome
        );
        assert!(!a.outcome.describe().contains("secret-value"));
        assert!(!a.outcome.describe().contains("127.0.0.1:9/x"));
    }
}
