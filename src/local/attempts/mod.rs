//! The attempts API of `callbacks serve` (JSON, on the admin listener, never on the ingest
//! port): follow one callback, list a client's queued or dead-lettered callbacks, and a client's
//! summary. Documented in `docs/attempts-api.openapi.json`; responses never carry request
//! headers (API keys) or bodies.
//!
//! - `GET /callbacks/{id}`: state, attempts (status or error, duration), next attempt time;
//!   `404` once delivered (delivered callbacks leave the queue).
//! - `GET /clients/{clientId}/callbacks?state=queued|dlq&limit=N` (default 100, at most 1000).
//! - `GET /clients/{clientId}/summary`: per target, queued, in flight, delivered, retried and
//!   dead-lettered (counted since the server started), circuit state, last success and failure.
//! - `POST /clients/{clientId}/dlq/replay` (`{"ids": [...]}` or `{"all": true}`): [`replay`].

pub mod query;
pub mod replay;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::metrics::Metrics;
use super::store;
use query::{CallbackView, State};

/// The most callbacks one listing returns.
pub const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;

/// What the handlers read: the data directory's database and the live counters.
pub struct AttemptsState {
    pub data_dir: PathBuf,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: Arc<AttemptsState>) -> Router {
    Router::new()
        .route("/callbacks/{id}", get(callback))
        .route("/clients/{client_id}/callbacks", get(list))
        .route("/clients/{client_id}/summary", get(summary))
        .route("/clients/{client_id}/dlq/replay", post(replay::replay))
        .with_state(state)
}

fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, Json(json!({ "error": reason.into() }))).into_response()
}

/// Runs a read on its own connection, off the async threads.
async fn read<T: Send + 'static>(
    state: &AttemptsState,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let dir = state.data_dir.clone();
    let joined = tokio::task::spawn_blocking(move || f(&store::open_db(&dir)?)).await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn callback(Extract(state): Extract<Arc<AttemptsState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("id: {id:?} is not a callback id (an integer)"),
        );
    };
    match read(&state, move |c| query::callback(c, id)).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("callback {id} is neither queued nor dead-lettered (delivered callbacks leave the queue)"),
        ),
        Err(r) => r,
    }
}

/// The value of `name` in a query string (`a=1&b=2`; the values here need no decoding).
fn param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    client_id: String,
    state: State,
    callbacks: Vec<CallbackView>,
}

async fn list(
    Extract(state): Extract<Arc<AttemptsState>>,
    Path(client_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let which = match param(q.as_deref(), "state") {
        None | Some("queued") => State::Queued,
        Some("dlq") => State::DeadLettered,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state: {other:?} is not \"queued\" or \"dlq\""),
            )
        }
    };
    let limit = match param(q.as_deref(), "limit").map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("limit: must be an integer from 1 to {MAX_LIMIT}"),
            )
        }
    };
    let id = client_id.clone();
    match read(&state, move |c| query::list(c, &id, which, limit)).await {
        Ok(callbacks) => Json(Listing {
            client_id,
            state: which,
            callbacks,
        })
        .into_response(),
        Err(r) => r,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetSummary {
    target_id: String,
    queued: i64,
    in_flight: i64,
    delivered: u64,
    retried: u64,
    dead_lettered: u64,
    circuit: &'static str,
    last_success_at: Option<String>,
    last_failure_at: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientSummary {
    client_id: String,
    queued: i64,
    in_flight: i64,
    delivered: u64,
    retried: u64,
    dead_lettered: u64,
    /// Dead letters now in the client's DLQ (on disk, whenever they were made).
    dlq_depth: i64,
    targets: Vec<TargetSummary>,
}

fn circuit_name(v: u8) -> &'static str {
    match v {
        1 => "open",
        2 => "half-open",
        _ => "closed",
    }
}

fn at(ms: i64) -> Option<String> {
    (ms > 0).then(|| store::rfc3339_ms(ms))
}

async fn summary(
    Extract(state): Extract<Arc<AttemptsState>>,
    Path(client_id): Path<String>,
) -> Response {
    let id = client_id.clone();
    let (queued, dlq_depth) = match read(&state, move |c| query::counts(c, &id)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut targets: Vec<TargetSummary> = state
        .metrics
        .targets_of(&client_id)
        .into_iter()
        .map(|(target_id, m)| TargetSummary {
            queued: queued
                .iter()
                .find(|(t, _)| *t == target_id)
                .map_or(0, |(_, n)| *n),
            target_id,
            in_flight: m.in_flight.load(Ordering::Relaxed),
            delivered: m.delivered.load(Ordering::Relaxed),
            retried: m.retried.load(Ordering::Relaxed),
            dead_lettered: m.dead_lettered.load(Ordering::Relaxed),
            circuit: circuit_name(m.circuit_state.load(Ordering::Relaxed)),
            last_success_at: at(m.last_success_ms.load(Ordering::Relaxed)),
            last_failure_at: at(m.last_failure_ms.load(Ordering::Relaxed)),
        })
        .collect();
    for (t, n) in &queued {
        if !targets.iter().any(|s| s.target_id == *t) {
            targets.push(TargetSummary {
                target_id: t.clone(),
                queued: *n,
                in_flight: 0,
                delivered: 0,
                retried: 0,
                dead_lettered: 0,
                circuit: "closed",
                last_success_at: None,
                last_failure_at: None,
            });
        }
    }
    if targets.is_empty() && dlq_depth == 0 {
        return error(
            StatusCode::NOT_FOUND,
            format!("client {client_id:?}: no targets, callbacks or dead letters known"),
        );
    }
    let sum = |f: fn(&TargetSummary) -> u64| targets.iter().map(f).sum::<u64>();
    Json(ClientSummary {
        queued: targets.iter().map(|t| t.queued).sum(),
        in_flight: targets.iter().map(|t| t.in_flight).sum(),
        delivered: sum(|t| t.delivered),
        retried: sum(|t| t.retried),
        dead_lettered: sum(|t| t.dead_lettered),
        client_id,
        dlq_depth,
        targets,
    })
    .into_response()
}
