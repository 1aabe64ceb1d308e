//! The ingest side of `callbacks serve`: `POST /events` (one CloudEvent or a batch) behind the
//! perimeter (token and `Host`, content type, free-space floor, a bounded number of requests
//! in processing, bounded and timed bodies). An ingest request is answered only after
//! everything it produced (callbacks, audit rows, rejects) is committed to disk. `/metrics`,
//! `/healthz` and `/readyz` are on the admin listener ([`super::admin`]), never here.

// The `Err` of the request steps is the answer itself, built once per refused request.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use tokio::sync::Semaphore;

use crate::config::ConfigSet;
use crate::pipeline::CoreOptions;

use super::auth::{IngestAuth, Refusal};
use super::limits::{Limits, PerimeterMetrics, RETRY_AFTER_SECS};
use super::metrics::Metrics;
use super::process::{self, Processed, QueuedRef, RejectBounds};
use super::store::{Accept, Store};
use super::worker::{Engine, TargetKey};

/// Batches with more elements than this are processed off the async threads.
const INLINE_BATCH: usize = 8;

/// Shared by the handlers of both listeners.
pub struct AppState {
    pub configs: Arc<RwLock<Arc<ConfigSet>>>,
    pub core: CoreOptions,
    pub store: Store,
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    pub auth: IngestAuth,
    pub limits: Limits,
    pub data_dir: PathBuf,
    pub perimeter: PerimeterMetrics,
    /// Ingest requests in processing (`limits.max_concurrent_ingest`).
    pub ingest_slots: Semaphore,
    /// False after a commit failed, true again after one succeeds.
    pub storage_ok: AtomicBool,
    /// Bytes held by the rejects table (body and reason), against `limits.reject_max_total`.
    pub rejects_bytes: AtomicU64,
}

impl AppState {
    /// Free space of the data directory, if it is below the floor.
    pub fn disk_low(&self) -> Option<u64> {
        match super::datadir::free_bytes(&self.data_dir) {
            Ok(free) if free < self.limits.min_free_disk => Some(free),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the free space of the data directory");
                Some(0)
            }
        }
    }

    fn bounds(&self) -> RejectBounds {
        RejectBounds {
            max_row_bytes: self.limits.reject_max_bytes,
            max_answer_rejects: self.limits.max_answer_rejects,
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/events", post(ingest))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

/// `503` with `Retry-After`.
pub fn unavailable(message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Single,
    Batch,
    /// `application/json`: a batch when the body is an array.
    Json,
}

/// The content type is required: there is no default.
fn kind_of(headers: &HeaderMap) -> Option<Kind> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = ct.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/cloudevents+json" => Some(Kind::Single),
        "application/cloudevents-batch+json" => Some(Kind::Batch),
        "application/json" => Some(Kind::Json),
        _ => None,
    }
}

/// The refusals that come before the body is read.
fn gate(state: &AppState, headers: &HeaderMap) -> Result<Kind, Response> {
    if let Err(refusal) = state.auth.check(headers) {
        state.perimeter.unauthorized.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = %refusal, "ingest request refused");
        return Err(match refusal {
            Refusal::Token => {
                let mut r = error(StatusCode::UNAUTHORIZED, &refusal.to_string());
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Refusal::Host => error(StatusCode::MISDIRECTED_REQUEST, &refusal.to_string()),
        });
    }
    let Some(kind) = kind_of(headers) else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type is required: application/cloudevents+json, application/cloudevents-batch+json or application/json",
        ));
    };
    if let Some(free) = state.disk_low() {
        state.perimeter.disk_low.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            free_bytes = free,
            floor_bytes = state.limits.min_free_disk,
            "free disk space below the floor; ingest refused"
        );
        return Err(unavailable(
            "free disk space is below the floor; nothing was accepted, retry later",
        ));
    }
    Ok(kind)
}

/// Reads the body within the size limit of its kind and the body timeout.
async fn read_body(state: &AppState, kind: Kind, body: Body) -> Result<Bytes, Response> {
    let limit = match kind {
        Kind::Single => state.limits.max_event_body,
        Kind::Batch | Kind::Json => state.limits.max_batch_body,
    };
    let too_large = || {
        state.perimeter.too_large.fetch_add(1, Ordering::Relaxed);
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {limit} bytes"),
        )
    };
    match tokio::time::timeout(state.limits.body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let is_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"));
            Err(if is_limit {
                too_large()
            } else {
                error(StatusCode::BAD_REQUEST, "the body could not be read")
            })
        }
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive within the body timeout",
        )),
    }
}

/// Runs the core over the body, off the async threads for larger batches.
async fn run_core(state: &AppState, kind: Kind, body: Bytes) -> Result<Processed, Response> {
    let configs = state
        .configs
        .read()
        .map(|c| c.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    let bounds = state.bounds();
    let batch = match kind {
        Kind::Single => false,
        Kind::Batch => true,
        Kind::Json => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'['),
    };
    if !batch {
        return Ok(process::single(&body, &configs, &state.core, bounds));
    }
    let Some(items) = process::batch_items(&body) else {
        let reason = "a batch must be a JSON array of CloudEvents";
        let reject = process::request_reject(None, reason, &body, bounds);
        let accept = Accept {
            rejects: vec![reject],
            ..Accept::default()
        };
        state
            .metrics
            .events_received
            .fetch_add(1, Ordering::Relaxed);
        state
            .metrics
            .events_rejected
            .fetch_add(1, Ordering::Relaxed);
        commit(state, accept).await?;
        return Err(error(StatusCode::BAD_REQUEST, reason));
    };
    if items.len() > state.limits.max_batch_events {
        state.perimeter.too_large.fetch_add(1, Ordering::Relaxed);
        let max = state.limits.max_batch_events;
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a batch holds at most {max} events"),
        ));
    }
    if items.len() <= INLINE_BATCH {
        return Ok(process::batch(&items, &configs, &state.core, bounds));
    }
    // Off the async workers: the task owns the body and reads its elements again.
    drop(items);
    let core = state.core.clone();
    tokio::task::spawn_blocking(move || {
        process::batch(
            &process::batch_items(&body).unwrap_or_default(),
            &configs,
            &core,
            bounds,
        )
    })
    .await
    .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "processing failed"))
}

/// Drops the rejects that do not fit in the reject storage (counted and logged).
fn admit_rejects(state: &AppState, accept: &mut Accept) {
    let cap = state.limits.reject_max_total;
    accept.rejects.retain(|r| {
        let n = (r.body.len() + r.reason.len()) as u64;
        let before = state.rejects_bytes.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) <= cap {
            return true;
        }
        state.rejects_bytes.fetch_sub(n, Ordering::Relaxed);
        state
            .perimeter
            .rejects_not_stored
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(event_id = r.event_id.as_deref().unwrap_or("-"), reason = %r.reason,
            "reject storage is full; the rejected event is counted and logged, not stored");
        false
    });
}

/// Commits in one transaction (the queued callbacks' ids); `503` when storage fails.
async fn commit(state: &AppState, mut accept: Accept) -> Result<Vec<i64>, Response> {
    admit_rejects(state, &mut accept);
    let events = accept.events.len() + accept.rejects.len();
    match state.store.accept(accept).await {
        Ok(ids) => {
            state.storage_ok.store(true, Ordering::Relaxed);
            Ok(ids)
        }
        Err(e) => {
            state.storage_ok.store(false, Ordering::Relaxed);
            tracing::error!(error = %e, events, "cannot store events; nothing accepted");
            Err(unavailable(
                "storage unavailable; nothing was accepted, retry later",
            ))
        }
    }
}

/// Callbacks queued per target by one request.
fn per_target(accept: &Accept) -> BTreeMap<TargetKey, i64> {
    let mut per_target: BTreeMap<TargetKey, i64> = BTreeMap::new();
    for c in &accept.callbacks {
        *per_target
            .entry(TargetKey {
                client_id: c.routing.client_id.clone(),
                target_id: c.routing.target_id.clone(),
            })
            .or_default() += 1;
    }
    per_target
}

/// One log line per accepted (debug) and rejected (info) event.
fn log_outcomes(accept: &Accept) {
    for e in &accept.events {
        tracing::debug!(event_id = %e.event_id, message_id = %e.message_id, client_id = %e.client_id, callbacks = e.callbacks,
            "event accepted");
    }
    for r in &accept.rejects {
        tracing::info!(event_id = r.event_id.as_deref().unwrap_or("-"), reason = %r.reason, "event rejected");
    }
}

async fn ingest(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let kind = match gate(&state, &headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let slot = tokio::time::timeout(state.limits.body_timeout, state.ingest_slots.acquire()).await;
    let Ok(Ok(_slot)) = slot else {
        state.perimeter.busy.fetch_add(1, Ordering::Relaxed);
        return unavailable("too many ingest requests in processing; retry later");
    };
    let body = match read_body(&state, kind, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let single = kind == Kind::Single
        || (kind == Kind::Json && body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'['));
    let Processed { accept, mut report } = match run_core(&state, kind, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let received = report.accepted + report.rejected_count;
    let per_target = per_target(&accept);
    log_outcomes(&accept);
    let queued = accept.callbacks.len();
    let mut listed: Vec<QueuedRef> = accept
        .callbacks
        .iter()
        .take(state.limits.max_answer_callbacks)
        .map(|c| QueuedRef {
            id: 0,
            event_id: c.routing.event_id.clone(),
            client_id: c.routing.client_id.clone(),
            target_id: c.routing.target_id.clone(),
        })
        .collect();
    let ids = match commit(&state, accept).await {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    for (r, id) in listed.iter_mut().zip(ids) {
        r.id = id;
    }
    report.queued = listed;
    let m = &state.metrics;
    m.events_received
        .fetch_add(received as u64, Ordering::Relaxed);
    m.events_rejected
        .fetch_add(report.rejected_count as u64, Ordering::Relaxed);
    m.events_accepted
        .fetch_add(report.accepted as u64, Ordering::Relaxed);
    m.callbacks_queued
        .fetch_add(queued as u64, Ordering::Relaxed);
    for (key, n) in per_target {
        m.target(&key.client_id, &key.target_id)
            .queue_depth
            .fetch_add(n, Ordering::Relaxed);
        state.engine.poke(&key);
    }
    let status = if report.rejected_count == 0 {
        StatusCode::ACCEPTED
    } else if single {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::MULTI_STATUS
    };
    (status, Json(report)).into_response()
}
