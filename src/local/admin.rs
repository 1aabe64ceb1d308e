//! The admin listener of `callbacks serve` (`--admin-listen`, default `127.0.0.1:8081`):
//! `/metrics`, `/healthz` (the process answers) and `/readyz` (storage commits and the disk is
//! above the free-space floor), and the attempts API. It never shares the ingest port.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::server::{unavailable, AppState};
use super::store::Accept;

/// How long `/readyz` waits for the store writer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Every admin route: these and the attempts API ([`super::attempts`]).
pub fn router(state: Arc<AppState>) -> Router {
    let attempts = super::attempts::router(Arc::new(super::attempts::AttemptsState {
        data_dir: state.data_dir.clone(),
        metrics: state.metrics.clone(),
    }));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(attempts)
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if let Some(free) = state.disk_low() {
        return unavailable(&format!(
            "free disk space {free} bytes is below the floor of {} bytes",
            state.limits.min_free_disk
        ));
    }
    let pending = state.store.stats().pending_writes.load(Ordering::Relaxed);
    if pending > 0 {
        return unavailable(&format!(
            "storage cannot commit: {pending} writes (deletes of delivered callbacks among them) are waiting to commit"
        ));
    }
    // An empty transaction through the writer: it answers, and a commit goes through.
    let probe = tokio::time::timeout(READY_TIMEOUT, state.store.accept(Accept::default())).await;
    match probe {
        Ok(Ok(_)) => state.storage_ok.store(true, Ordering::Relaxed),
        Ok(Err(e)) => {
            state.storage_ok.store(false, Ordering::Relaxed);
            return unavailable(&format!("storage cannot commit: {e}"));
        }
        Err(_) => return unavailable("the store writer does not answer"),
    }
    (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    state.perimeter.render(&mut text);
    state.store.stats().render(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
