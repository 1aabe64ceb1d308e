//! The HTTP side of `callbacks serve`: `POST /events` (one CloudEvent or a batch),
//! `GET /healthz`, `GET /metrics`. An ingest request is answered only after everything it
//! produced (callbacks, audit rows, rejects) is committed to disk.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::config::ConfigSet;
use crate::pipeline::{self, CoreOptions, Outcome, ProcessError};
use crate::schema::FieldError;

use super::metrics::Metrics;
use super::store::{Accept, NewCallback, NewEvent, NewReject, Store};
use super::worker::{Engine, TargetKey};

/// The largest request body (a batch).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Batches larger than this are processed off the async threads.
const INLINE_BATCH: usize = 8;
/// The most bytes of a rejected event kept in the rejects table.
const MAX_REJECT_BYTES: usize = 64 * 1024;

/// Shared by the handlers.
pub struct AppState {
    pub configs: Arc<RwLock<Arc<ConfigSet>>>,
    pub core: CoreOptions,
    pub store: Store,
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/events", post(ingest))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RejectReport {
    /// Position in the batch (absent for a single event).
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    event_id: Option<String>,
    errors: Vec<FieldError>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IngestReport {
    accepted: usize,
    callbacks: usize,
    rejected: Vec<RejectReport>,
}

/// The result of running the core over a request.
struct Processed {
    accept: Accept,
    report: IngestReport,
}

fn reject_of(
    e: &ProcessError,
    index: Option<usize>,
    raw: &[u8],
    accept: &mut Accept,
    report: &mut IngestReport,
) {
    let errors = match e {
        ProcessError::Rejected(r) => r.error.fields(),
        ProcessError::Transform { source, .. } => vec![FieldError {
            pointer: String::new(),
            reason: source.to_string(),
        }],
    };
    let event_id = e.event_id().map(str::to_owned);
    accept.rejects.push(NewReject {
        event_id: event_id.clone(),
        reason: e.to_string(),
        body: raw[..raw.len().min(MAX_REJECT_BYTES)].to_vec(),
    });
    report.rejected.push(RejectReport {
        index,
        event_id,
        errors,
    });
}

fn outcome_of(outcome: Outcome, accept: &mut Accept, report: &mut IngestReport) {
    report.accepted += 1;
    match outcome {
        Outcome::Callbacks { event, callbacks } => {
            report.callbacks += callbacks.len();
            accept.events.push(NewEvent {
                event_id: event.id().to_string(),
                source: event.source().to_string(),
                client_id: event.client_id().to_string(),
                message_id: event.message_id().to_string(),
                callbacks: u32::try_from(callbacks.len()).unwrap_or(u32::MAX),
                outcome: if callbacks.is_empty() {
                    "no-match"
                } else {
                    "queued"
                },
            });
            accept
                .callbacks
                .extend(callbacks.into_iter().map(NewCallback::from));
        }
        Outcome::NoClientConfig { event } => {
            tracing::debug!(event_id = %event.id(), message_id = %event.message_id(), client_id = %event.client_id(),
                "event for a client with no configuration; nothing to deliver");
            accept.events.push(NewEvent {
                event_id: event.id().to_string(),
                source: event.source().to_string(),
                client_id: event.client_id().to_string(),
                message_id: event.message_id().to_string(),
                callbacks: 0,
                outcome: "no-client-config",
            });
        }
    }
}

fn empty_report() -> IngestReport {
    IngestReport {
        accepted: 0,
        callbacks: 0,
        rejected: Vec::new(),
    }
}

fn process_single(body: &[u8], configs: &ConfigSet, core: &CoreOptions) -> Processed {
    let mut accept = Accept::default();
    let mut report = empty_report();
    match pipeline::process(body, configs, core) {
        Ok(outcome) => outcome_of(outcome, &mut accept, &mut report),
        Err(e) => reject_of(&e, None, body, &mut accept, &mut report),
    }
    Processed { accept, report }
}

/// The elements of a batch, each as the exact text it was sent as; `None` when the body is not
/// a JSON array.
fn batch_items(body: &[u8]) -> Option<Vec<&RawValue>> {
    serde_json::from_slice(body).ok()
}

/// Each element goes through the same path as a single event (the core's fast path, its size
/// limit, the reference path for rejections); a rejected element is kept as it was sent.
fn process_batch(items: &[&RawValue], configs: &ConfigSet, core: &CoreOptions) -> Processed {
    let mut accept = Accept::default();
    let mut report = empty_report();
    for (i, item) in items.iter().enumerate() {
        let raw = item.get().as_bytes();
        match pipeline::process(raw, configs, core) {
            Ok(outcome) => outcome_of(outcome, &mut accept, &mut report),
            Err(e) => reject_of(&e, Some(i), raw, &mut accept, &mut report),
        }
    }
    Processed { accept, report }
}

enum Kind {
    Single,
    Batch,
}

fn kind_of(headers: &HeaderMap, body: &[u8]) -> Option<Kind> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/cloudevents+json" => Some(Kind::Single),
        "application/cloudevents-batch+json" => Some(Kind::Batch),
        "application/json" => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            Some(if first == Some(&b'[') {
                Kind::Batch
            } else {
                Kind::Single
            })
        }
        _ => None,
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

async fn ingest(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(kind) = kind_of(&headers, &body) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "use application/cloudevents+json, application/cloudevents-batch+json or application/json",
        );
    };
    let configs = state
        .configs
        .read()
        .map(|c| c.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    let (processed, batch) = match kind {
        Kind::Single => (process_single(&body, &configs, &state.core), false),
        Kind::Batch => {
            let items = match batch_items(&body) {
                Some(items) => items,
                None => {
                    let reason = "a batch must be a JSON array of CloudEvents";
                    state
                        .metrics
                        .events_received
                        .fetch_add(1, Ordering::Relaxed);
                    state
                        .metrics
                        .events_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    let reject = NewReject {
                        event_id: None,
                        reason: reason.to_string(),
                        body: body[..body.len().min(MAX_REJECT_BYTES)].to_vec(),
                    };
                    let accept = Accept {
                        rejects: vec![reject],
                        ..Accept::default()
                    };
                    if let Err(e) = state.store.accept(accept).await {
                        tracing::error!(error = %e, "cannot store a reject");
                    }
                    return error(StatusCode::BAD_REQUEST, reason);
                }
            };
            let processed = if items.len() <= INLINE_BATCH {
                process_batch(&items, &configs, &state.core)
            } else {
                // Off the async workers: the task owns the body and reads its elements again.
                drop(items);
                let core = state.core.clone();
                match tokio::task::spawn_blocking(move || {
                    process_batch(&batch_items(&body).unwrap_or_default(), &configs, &core)
                })
                .await
                {
                    Ok(p) => p,
                    Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "processing failed"),
                }
            };
            (processed, true)
        }
    };
    let Processed { accept, report } = processed;
    let received = report.accepted + report.rejected.len();
    let targets: BTreeSet<TargetKey> = accept
        .callbacks
        .iter()
        .map(|c| TargetKey {
            client_id: c.client_id.clone(),
            target_id: c.target_id.clone(),
        })
        .collect();
    let per_target: Vec<(TargetKey, i64)> = targets
        .iter()
        .map(|k| {
            let n = accept
                .callbacks
                .iter()
                .filter(|c| c.client_id == k.client_id && c.target_id == k.target_id)
                .count();
            (k.clone(), i64::try_from(n).unwrap_or(i64::MAX))
        })
        .collect();
    for e in &accept.events {
        tracing::debug!(event_id = %e.event_id, message_id = %e.message_id, client_id = %e.client_id, callbacks = e.callbacks,
            "event accepted");
    }
    for r in &accept.rejects {
        tracing::info!(event_id = r.event_id.as_deref().unwrap_or("-"), reason = %r.reason, "event rejected");
    }
    let queued = accept.callbacks.len();
    if let Err(e) = state.store.accept(accept).await {
        tracing::error!(error = %e, events = received, "cannot store events; nothing accepted");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage unavailable; nothing was accepted, retry later",
        );
    }
    let m = &state.metrics;
    m.events_received
        .fetch_add(received as u64, Ordering::Relaxed);
    m.events_rejected
        .fetch_add(report.rejected.len() as u64, Ordering::Relaxed);
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
    let status = if !batch {
        if report.rejected.is_empty() {
            StatusCode::ACCEPTED
        } else {
            StatusCode::BAD_REQUEST
        }
    } else if report.rejected.is_empty() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::MULTI_STATUS
    };
    (status, Json(report)).into_response()
}
