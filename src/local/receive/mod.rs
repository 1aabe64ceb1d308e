//! `callbacks receive`: a client endpoint for development and tests. For every POST it finds
//! the target ([`check::Directory`]: by path, else by API key), checks the API key (`401`), the
//! signature over the exact bytes with the client's `applicationId` and key (`403`, the core's
//! [`crate::sign`]), the content type (`415`) and the body against the callback payload schema
//! (`400`, the core's [`crate::schema`]), then answers `202` or what the [`script`] says, and
//! hands one [`line::Line`] per callback to a sink.
//!
//! Bounds: bodies up to [`ReceiveOptions::max_body_bytes`] (`413` past it), read within
//! `body_timeout` (`408`); at most `max_connections` connections, each closed after
//! `idle_timeout` without a byte either way.

pub mod check;
pub mod line;
mod listener;
pub mod script;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::config::{self, ConfigErrors};

use check::Directory;
use line::Line;
use listener::BoundedListener;
use script::{Script, ScriptOptions};

/// Where each callback's line goes (the binary prints it on stdout).
pub type Sink = Arc<dyn Fn(&Line) + Send + Sync>;

/// Options of `callbacks receive`.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// The client configurations whose targets this endpoint plays (read once, at start).
    pub config_dir: PathBuf,
    pub listen: SocketAddr,
    pub script: ScriptOptions,
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl ReceiveOptions {
    /// The defaults: 1 MiB bodies read within 10 s, 64 connections idle at most 30 s.
    pub fn new(config_dir: PathBuf, listen: SocketAddr) -> Self {
        ReceiveOptions {
            config_dir,
            listen,
            script: ScriptOptions::default(),
            max_body_bytes: 1024 * 1024,
            body_timeout: Duration::from_secs(10),
            max_connections: 64,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("invalid configuration in {dir}:\n{errors}")]
    Config { dir: String, errors: ConfigErrors },
    #[error("no targets in the configuration in {0}")]
    NoTargets(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Server(std::io::Error),
}

struct RecvState {
    directory: Directory,
    script: Script,
    sink: Sink,
    max_body_bytes: usize,
    body_timeout: Duration,
}

/// A bound receiver, not yet serving.
pub struct Receiver {
    listener: BoundedListener,
    state: Arc<RecvState>,
    pub addr: SocketAddr,
}

impl Receiver {
    /// Reads the configuration and binds the address.
    pub async fn bind(opts: ReceiveOptions, sink: Sink) -> Result<Receiver, ReceiveError> {
        let dir = opts.config_dir.display().to_string();
        let configs =
            config::load_dir(&opts.config_dir).map_err(|errors| ReceiveError::Config {
                dir: dir.clone(),
                errors,
            })?;
        let directory = Directory::new(&configs);
        if directory.is_empty() {
            return Err(ReceiveError::NoTargets(dir));
        }
        let (tcp, addr) =
            super::bind(opts.listen)
                .await
                .map_err(|source| ReceiveError::Listen {
                    addr: opts.listen,
                    source,
                })?;
        Ok(Receiver {
            listener: BoundedListener::new(tcp, opts.max_connections, opts.idle_timeout),
            state: Arc::new(RecvState {
                directory,
                script: Script::new(opts.script),
                sink,
                max_body_bytes: opts.max_body_bytes,
                body_timeout: opts.body_timeout,
            }),
            addr,
        })
    }

    /// `client/target path` of every target this receiver plays.
    pub fn targets(&self) -> Vec<String> {
        self.state.directory.describe()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ReceiveError> {
        let app = Router::new().fallback(receive).with_state(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ReceiveError::Server)
    }
}

/// Reads the body within the time and size bounds.
async fn read_body(state: &RecvState, body: Body) -> Result<axum::body::Bytes, (u16, String)> {
    match tokio::time::timeout(
        state.body_timeout,
        axum::body::to_bytes(body, state.max_body_bytes),
    )
    .await
    {
        Err(_) => Err((
            408,
            format!("body not received within {:?}", state.body_timeout),
        )),
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let inner = e.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err((
                    413,
                    format!("body larger than {} bytes", state.max_body_bytes),
                ))
            } else {
                Err((400, format!("body could not be read: {inner}")))
            }
        }
    }
}

async fn receive(State(state): State<Arc<RecvState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let mut line = match read_body(&state, body).await {
        Ok(bytes) if parts.method == axum::http::Method::POST => {
            let verdict = check::check(&state.directory, &path, &parts.headers, &bytes);
            let mut line = Line::new(&path, &verdict);
            match verdict.refusal {
                Some((status, reason)) => {
                    line.answer = status;
                    line.reason = Some(reason);
                }
                None => {
                    let a = state.script.answer(&verdict.summary);
                    line.answer = a.status;
                    line.retry_after = a.retry_after;
                    line.reason = a.reason;
                }
            }
            line
        }
        Ok(_) => refused_line(&path, 405, format!("{} is not POST", parts.method)),
        Err((status, reason)) => refused_line(&path, status, reason),
    };
    (state.sink)(&line);
    let status = StatusCode::from_u16(line.answer).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "status": line.answer, "reason": line.reason.take() });
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(s) = line.retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
    }
    resp
}

fn refused_line(path: &str, status: u16, reason: String) -> Line {
    let verdict = check::Verdict {
        endpoint: None,
        signature: check::Signature::Unchecked,
        summary: check::Summary::default(),
        refusal: None,
    };
    let mut line = Line::new(path, &verdict);
    line.answer = status;
    line.reason = Some(reason);
    line
}
