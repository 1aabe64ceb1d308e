//! Delivery workers: one task per (client, target) ([`target`]), started, fed, restarted and
//! stopped by the [`Engine`]. Each holds a bounded window of its queue in memory (refilled from
//! the store in id order), its own token bucket, circuit breaker, HTTP client and a cap on
//! requests in flight. A slow or dead target only ever occupies its own task and its own
//! in-flight slots, so it cannot delay any other target.
//!
//! Requests are built and signed when they start, from the configuration in force then
//! ([`Endpoint`]): a rotated API key or a moved endpoint reaches callbacks already queued. A
//! callback whose target is no longer configured is dead-lettered with that reason.

mod target;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DeliverySettings;
pub use crate::deliver::TargetKey;
use crate::deliver::{self, Egress, Endpoint, HttpSender, RetryPolicy, SenderError};

use super::metrics::Metrics;
use super::store::Store;
use target::Worker;

/// The first pause before a panicked worker is started again (doubles up to the maximum).
const RESTART_PAUSE: Duration = Duration::from_millis(100);
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(30);

/// What a worker needs to know about its target; replaced on configuration reload.
pub struct TargetRuntime {
    pub settings: DeliverySettings,
    pub sender: HttpSender,
    pub policy: RetryPolicy,
    /// Where and with which key requests go; `None` once the target is no longer configured.
    pub endpoint: Option<Endpoint>,
}

impl TargetRuntime {
    pub fn new(
        settings: DeliverySettings,
        endpoint: Option<Endpoint>,
        egress: &Egress,
    ) -> Result<Arc<Self>, SenderError> {
        let sender = HttpSender::new(deliver::sender_config(&settings, egress))?;
        let policy = deliver::retry_policy(&settings);
        Ok(Arc::new(TargetRuntime {
            settings,
            sender,
            policy,
            endpoint,
        }))
    }

    /// The same runtime for a target that has been removed from the configuration.
    fn gone(&self) -> Arc<Self> {
        Arc::new(TargetRuntime {
            settings: self.settings.clone(),
            sender: self.sender.clone(),
            policy: self.policy,
            endpoint: None,
        })
    }

    fn same_as(&self, other: &TargetRuntime) -> bool {
        self.settings == other.settings && self.endpoint == other.endpoint
    }

    fn max_in_flight(&self) -> usize {
        usize::try_from(self.settings.rate_limit_per_second)
            .unwrap_or(64)
            .clamp(4, 64)
    }
}

/// Delivery settings for a target that has queued callbacks but is no longer configured (its
/// callbacks are dead-lettered, never sent).
pub fn orphan_settings() -> DeliverySettings {
    DeliverySettings::defaults(10)
}

struct Handle {
    poke: Arc<Notify>,
    runtime: watch::Sender<Arc<TargetRuntime>>,
}

/// Starts, feeds and stops the workers.
pub struct Engine {
    store: Store,
    metrics: Arc<Metrics>,
    egress: Egress,
    workers: Mutex<HashMap<TargetKey, Handle>>,
    /// The configured runtime of each target (workers start lazily, when there is work).
    configured: Mutex<HashMap<TargetKey, Arc<TargetRuntime>>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
}

impl Engine {
    pub fn new(store: Store, metrics: Arc<Metrics>, egress: Egress, grace: Duration) -> Arc<Self> {
        Arc::new(Engine {
            store,
            metrics,
            egress,
            workers: Mutex::new(HashMap::new()),
            configured: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            grace,
        })
    }

    /// Installs the runtimes of the configured targets; running workers pick up changes.
    pub fn configure(&self, runtimes: HashMap<TargetKey, Arc<TargetRuntime>>) {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        for (key, h) in workers.iter() {
            let current = h.runtime.borrow().clone();
            let next = match runtimes.get(key) {
                Some(rt) => rt.clone(),
                None if current.endpoint.is_none() => continue,
                None => current.gone(),
            };
            if !current.same_as(&next) {
                let _ = h.runtime.send(next);
            }
        }
        *self.configured.lock().unwrap_or_else(|p| p.into_inner()) = runtimes;
    }

    /// Tells a target's worker there is new work, starting the worker if needed.
    pub fn poke(self: &Arc<Self>, key: &TargetKey) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = workers.get(key) {
            h.poke.notify_one();
            return;
        }
        let rt = self
            .configured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        let rt = match rt {
            Some(rt) => rt,
            None => match TargetRuntime::new(orphan_settings(), None, &self.egress) {
                Ok(rt) => {
                    tracing::warn!(client_id = %key.client_id, target_id = %key.target_id,
                        "callbacks queued for a target that is not configured: dead-lettering them");
                    rt
                }
                Err(e) => {
                    tracing::error!(client_id = %key.client_id, target_id = %key.target_id, error = %e, "cannot start worker");
                    return;
                }
            },
        };
        let poke = Arc::new(Notify::new());
        let (tx, rx) = watch::channel(rt.clone());
        let worker = Worker::new(key.clone(), self.clone(), rt, rx, poke.clone());
        poke.notify_one();
        workers.insert(key.clone(), Handle { poke, runtime: tx });
        self.tracker
            .spawn(self.clone().supervise(key.clone(), worker));
    }

    /// Runs a target's worker; one that panics is counted (`callbacks_worker_restarts_total`)
    /// and started again, after a pause that doubles with each panic (100 ms to 30 s). The new
    /// worker reads the target's queue from the store again: callbacks whose request was in
    /// flight when it panicked may be sent twice (at least once, as after a crash).
    async fn supervise(self: Arc<Self>, key: TargetKey, mut worker: Worker) {
        let mut pause = RESTART_PAUSE;
        loop {
            let (rt_rx, poke) = (worker.rt_rx.clone(), worker.poke.clone());
            let metrics = worker.metrics.clone();
            let panicked = match tokio::spawn(worker.run()).await {
                Ok(()) => return,
                Err(e) => e.is_panic(),
            };
            if !panicked || self.shutdown.is_cancelled() {
                return;
            }
            self.metrics.worker_restarts.fetch_add(1, Ordering::Relaxed);
            metrics.in_flight.store(0, Ordering::Relaxed);
            tracing::error!(client_id = %key.client_id, target_id = %key.target_id, pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "delivery worker panicked; starting it again");
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(MAX_RESTART_PAUSE);
            let rt = rt_rx.borrow().clone();
            worker = Worker::new(key.clone(), self.clone(), rt, rt_rx, poke);
        }
    }

    /// Pokes every worker (periodic: picks up rows written by `dlq replay`).
    pub fn poke_all(self: &Arc<Self>, keys: impl IntoIterator<Item = TargetKey>) {
        for k in keys {
            self.poke(&k);
        }
    }

    /// Stops starting deliveries, waits (up to the grace period) for those in flight and
    /// flushes the store. Callbacks not delivered stay queued for the next start.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        self.store.flush().await;
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
