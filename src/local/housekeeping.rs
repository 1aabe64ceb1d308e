//! The background task of `callbacks serve`: configuration reload (off the async runtime),
//! periodic pokes of queued targets, gauges and pruning.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::deliver::Egress;

use super::reload::ConfigWatcher;
use super::run::runtimes;
use super::server;
use super::store;
use super::worker::TargetKey;

/// Settings of the background task.
pub(super) struct Housekeeping {
    pub egress: Egress,
    pub interval: Duration,
    pub event_retention: Duration,
    pub dlq_retention: Duration,
}

/// Runs `f` on a blocking thread, off the async runtime (file reads, client building).
pub(super) async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "configuration reload failed; keeping the current configuration");
            None
        }
    }
}

/// Applies a configuration poll. The directory is read and the delivery clients (with their
/// PEM files) are built on a blocking thread, off the async runtime.
async fn apply_reload(
    watcher: &Arc<std::sync::Mutex<ConfigWatcher>>,
    state: &server::AppState,
    egress: &Egress,
) {
    let metrics = &state.metrics;
    let w = watcher.clone();
    let polled = off_runtime(move || w.lock().unwrap_or_else(|p| p.into_inner()).poll()).await;
    match polled {
        Some(Ok(Some(r))) => {
            metrics
                .config_reload_errors
                .fetch_add(r.problems.len() as u64, Ordering::Relaxed);
            state
                .perimeter
                .config_clients_removed
                .fetch_add(r.removed as u64, Ordering::Relaxed);
            let (configs, egress) = (r.configs, egress.clone());
            let Some((configs, rts, problems)) = off_runtime(move || {
                let (rts, problems) = runtimes(&configs, &egress);
                (configs, rts, problems)
            })
            .await
            else {
                return;
            };
            for p in &problems {
                tracing::error!(problem = %p, "cannot build delivery client");
            }
            state.engine.configure(rts);
            tracing::info!(clients = configs.len(), "configuration reloaded");
            *state.configs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(configs);
        }
        Some(Ok(None)) | None => {}
        Some(Err(e)) => {
            metrics.config_reload_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "cannot read the configuration directory; keeping the current configuration");
        }
    }
}

fn cutoff(retention: Duration) -> i64 {
    store::now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
}

/// Background: configuration reload, periodic pokes (re-queued dead letters), gauges, pruning.
pub(super) async fn housekeeping(
    watcher: ConfigWatcher,
    state: Arc<server::AppState>,
    mut known: Vec<TargetKey>,
    h: Housekeeping,
) {
    let watcher = Arc::new(std::sync::Mutex::new(watcher));
    let (store, engine, metrics) = (&state.store, &state.engine, &state.metrics);
    let mut tick = tokio::time::interval(h.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_gauges = tokio::time::Instant::now();
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        apply_reload(&watcher, &state, &h.egress).await;
        // Pick up callbacks re-queued by `callbacks dlq replay` (and any target with rows).
        if let Ok(q) = store.queued_targets().await {
            known = q;
        }
        engine.poke_all(known.iter().cloned());
        if last_gauges.elapsed() >= Duration::from_secs(10) {
            last_gauges = tokio::time::Instant::now();
            if let Ok(d) = store.dlq_depths().await {
                metrics.set_dlq_depths(d);
            }
            if let Ok(depths) = store.depths().await {
                for (c, t, n) in depths {
                    metrics
                        .target(&c, &t)
                        .queue_depth
                        .store(n, Ordering::Relaxed);
                }
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            store.prune_events(cutoff(h.event_retention)).await;
            store.prune_dlq(cutoff(h.dlq_retention)).await;
            store
                .prune_rejects(cutoff(state.limits.reject_retention))
                .await;
            store.flush().await;
            if let Ok(n) = store.rejects_bytes().await {
                state.rejects_bytes.store(n, Ordering::Relaxed);
            }
        }
    }
}

/// How often old audit rows and rejects are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
