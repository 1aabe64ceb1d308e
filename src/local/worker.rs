//! Delivery workers: one task per (client, target). Each holds a bounded window of its queue in
//! memory (refilled from the store in id order), its own token bucket, circuit breaker,
//! HTTP client and a cap on requests in flight. A slow or dead target only ever occupies its
//! own task and its own in-flight slots, so it cannot delay any other target.
//!
//! Requests are built and signed when they start, from the configuration in force then
//! ([`Endpoint`]): a rotated API key or a moved endpoint reaches callbacks already queued. A
//! callback whose target is no longer configured is dead-lettered with that reason.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DeliverySettings;
pub use crate::deliver::TargetKey;
use crate::deliver::{
    self, policy, record, Admission, Attempt, AttemptOutcome, AttemptRecord, CircuitBreaker,
    DeadLetterReason, Decision, Egress, Endpoint, HttpSender, Request, RetryPolicy, SenderError,
    TokenBucket,
};

use super::metrics::{Metrics, TargetMetrics};
use super::store::{now_ms, QueuedCallback, Store};

/// Callbacks kept in memory per target (the rest stays on disk until there is room).
const WINDOW: usize = 1024;
/// Refill when fewer than this many are in memory.
const LOW_WATER: usize = 256;
/// Rows read per refill.
const LOAD_BATCH: usize = 512;
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

/// A finished attempt, back from its request task.
struct Done {
    job: QueuedCallback,
    attempt: Attempt,
    probe: bool,
}

struct Worker {
    key: TargetKey,
    engine: Arc<Engine>,
    rt: Arc<TargetRuntime>,
    rt_rx: watch::Receiver<Arc<TargetRuntime>>,
    poke: Arc<Notify>,
    metrics: Arc<TargetMetrics>,
    /// Due now, in id order.
    ready: VecDeque<QueuedCallback>,
    /// Waiting for their retry time, by (due ms, id).
    delayed: BTreeMap<(i64, i64), QueuedCallback>,
    /// Highest id loaded; everything above is still only on disk.
    watermark: i64,
    maybe_more: bool,
    in_flight: usize,
    bucket: TokenBucket,
    circuit: Option<CircuitBreaker>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
}

impl Worker {
    fn new(
        key: TargetKey,
        engine: Arc<Engine>,
        rt: Arc<TargetRuntime>,
        rt_rx: watch::Receiver<Arc<TargetRuntime>>,
        poke: Arc<Notify>,
    ) -> Self {
        let metrics = engine.metrics.target(&key.client_id, &key.target_id);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Worker {
            bucket: deliver::rate_limiter(&rt.settings, Instant::now()),
            circuit: deliver::circuit_breaker(&rt.settings),
            key,
            engine,
            rt,
            rt_rx,
            poke,
            metrics,
            ready: VecDeque::new(),
            delayed: BTreeMap::new(),
            watermark: 0,
            maybe_more: true,
            in_flight: 0,
            done_tx,
            done_rx,
        }
    }

    fn held(&self) -> usize {
        self.ready.len() + self.delayed.len() + self.in_flight
    }

    async fn refill(&mut self) {
        while self.maybe_more && self.held() < LOW_WATER.max(WINDOW - LOAD_BATCH) {
            let rows = match self
                .engine
                .store
                .load(
                    &self.key.client_id,
                    &self.key.target_id,
                    self.watermark,
                    LOAD_BATCH,
                )
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(client_id = %self.key.client_id, target_id = %self.key.target_id, error = %e,
                        "cannot read the queue; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return;
                }
            };
            self.maybe_more = rows.len() == LOAD_BATCH;
            let now = now_ms();
            for job in rows {
                self.watermark = self.watermark.max(job.id);
                if job.due_at_ms <= now {
                    self.ready.push_back(job);
                } else {
                    self.delayed.insert((job.due_at_ms, job.id), job);
                }
            }
        }
    }

    fn update_runtime(&mut self) {
        let rt = self.rt_rx.borrow_and_update().clone();
        if rt.settings.rate_limit_per_second != self.rt.settings.rate_limit_per_second {
            self.bucket = deliver::rate_limiter(&rt.settings, Instant::now());
        }
        if rt.settings.circuit_breaker != self.rt.settings.circuit_breaker {
            self.circuit = deliver::circuit_breaker(&rt.settings);
        }
        tracing::info!(client_id = %self.key.client_id, target_id = %self.key.target_id, "delivery settings updated");
        self.rt = rt;
    }

    /// Starts every request that may start now; returns when to look again.
    async fn dispatch(&mut self) -> Option<Instant> {
        let now_i = Instant::now();
        let now = now_ms();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.ready.push_back(entry.remove());
        }
        let mut wake = self.delayed.first_key_value().map(|((due, _), _)| {
            now_i + Duration::from_millis(u64::try_from(due - now).unwrap_or(0))
        });
        let earliest = |w: Option<Instant>, t: Instant| Some(w.map_or(t, |w| w.min(t)));
        if self.rt.endpoint.is_none() {
            while let Some(job) = self.ready.pop_front() {
                self.dead_letter(job, DeadLetterReason::TargetGone).await;
            }
        }
        while self.in_flight < self.rt.max_in_flight() {
            let Some(job) = self.ready.front() else { break };
            // A callback already tried whose budget ran out while it waited (e.g. behind an
            // open circuit) is not sent again.
            let age = Duration::from_millis(u64::try_from(now - job.created_at_ms).unwrap_or(0));
            if job.attempts > 0 && !self.rt.policy.within_budget(age) {
                if let Some(job) = self.ready.pop_front() {
                    let reason = DeadLetterReason::BudgetExhausted {
                        attempts: job.attempts,
                    };
                    self.dead_letter(job, reason).await;
                }
                continue;
            }
            let probe = match self.circuit.as_mut().map(|c| c.admit(now_i)) {
                None | Some(Admission::Allowed) => false,
                Some(Admission::Probe) => true,
                Some(Admission::Denied { retry_at }) => {
                    if let Some(at) = retry_at {
                        wake = earliest(wake, at);
                    }
                    break;
                }
            };
            if let Err(wait) = self.bucket.try_take(now_i) {
                if probe {
                    if let Some(c) = self.circuit.as_mut() {
                        c.probe_abandoned();
                    }
                }
                wake = earliest(wake, now_i + wait);
                break;
            }
            let (Some(job), Some(endpoint)) = (self.ready.pop_front(), self.rt.endpoint.clone())
            else {
                break;
            };
            self.start(job, &endpoint, probe);
        }
        self.publish_circuit(now_i);
        wake
    }

    /// Starts one attempt: the request is built and signed now, with the endpoint in force.
    fn start(&mut self, job: QueuedCallback, endpoint: &Endpoint, probe: bool) {
        self.in_flight += 1;
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let sender = self.rt.sender.clone();
        let tx = self.done_tx.clone();
        let url = endpoint.url.clone();
        let headers = endpoint.signed_headers(&job.body);
        tracing::debug!(client_id = %self.key.client_id, target_id = %self.key.target_id, event_id = %job.event_id,
            message_id = %job.message_id, attempt = job.attempts + 1, probe, "sending callback");
        tokio::spawn(async move {
            let attempt = sender
                .send(Request {
                    url: &url,
                    headers: &headers,
                    body: &job.body,
                })
                .await;
            let _ = tx.send(Done {
                job,
                attempt,
                probe,
            });
        });
    }

    fn publish_circuit(&self, now: Instant) {
        if let Some(c) = &self.circuit {
            self.metrics
                .circuit_state
                .store(c.state(now).metric_value(), Ordering::Relaxed);
        } else {
            self.metrics.circuit_state.store(0, Ordering::Relaxed);
        }
    }

    async fn dead_letter(&mut self, job: QueuedCallback, reason: DeadLetterReason) {
        tracing::warn!(client_id = %self.key.client_id, target_id = %self.key.target_id, event_id = %job.event_id,
            message_id = %job.message_id, attempts = job.attempts, reason = %reason, "callback dead-lettered");
        self.engine
            .store
            .dead_letter(job.id, job.attempts, &job.history, reason.to_string())
            .await;
        self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
    }

    async fn complete(&mut self, done: Done) {
        let Done {
            mut job,
            attempt,
            probe,
        } = done;
        self.in_flight -= 1;
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.metrics.attempts.fetch_add(1, Ordering::Relaxed);
        self.metrics.request_duration.observe(attempt.duration);
        let now_i = Instant::now();
        if let Some(c) = self.circuit.as_mut() {
            if policy::is_endpoint_failure(&attempt.outcome) {
                c.on_failure(now_i);
            } else if matches!(attempt.outcome, AttemptOutcome::Status { .. }) {
                c.on_success();
            } else if probe {
                c.probe_abandoned();
            }
        }
        self.publish_circuit(now_i);
        job.attempts += 1;
        let record = AttemptRecord::of(&attempt);
        let status = record.status;
        record::push_history(&mut job.history, record);
        let now = now_ms();
        let age = Duration::from_millis(u64::try_from(now - job.created_at_ms).unwrap_or(0));
        let decision =
            self.rt
                .policy
                .decide(&attempt.outcome, job.attempts, age, rand::random::<f64>());
        let last = if matches!(decision, Decision::Delivered) {
            &self.metrics.last_success_ms
        } else {
            &self.metrics.last_failure_ms
        };
        last.store(now, Ordering::Relaxed);
        match decision {
            Decision::Delivered => {
                tracing::info!(client_id = %self.key.client_id, target_id = %self.key.target_id, event_id = %job.event_id,
                    message_id = %job.message_id, attempts = job.attempts, status = ?status, "callback delivered");
                self.engine.store.delivered(job.id).await;
                self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
                self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                self.engine.metrics.end_to_end.observe(age);
            }
            Decision::RetryAfter(wait) => {
                tracing::info!(client_id = %self.key.client_id, target_id = %self.key.target_id, event_id = %job.event_id,
                    message_id = %job.message_id, attempts = job.attempts, outcome = %attempt.outcome.describe(),
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "callback attempt failed; will retry");
                let due = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                job.due_at_ms = due;
                self.engine
                    .store
                    .reschedule(job.id, due, job.attempts, &job.history)
                    .await;
                self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                self.delayed.insert((due, job.id), job);
            }
            Decision::DeadLetter(reason) => self.dead_letter(job, reason).await,
        }
    }

    async fn run(mut self) {
        let shutdown = self.engine.shutdown.clone();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            #[cfg(test)]
            tests::fault(&self.key);
            self.refill().await;
            let wake = self.dispatch().await;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = self.done_rx.recv() => self.complete(done).await,
                _ = self.poke.notified() => self.maybe_more = true,
                Ok(()) = self.rt_rx.changed() => self.update_runtime(),
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()), if wake.is_some() => {}
            }
        }
        // Shutting down: start nothing new; wait for requests in flight, up to the grace period.
        // Whatever has not finished stays queued (and is sent again after the restart).
        let deadline = tokio::time::Instant::now() + self.engine.grace;
        while self.in_flight > 0 {
            tokio::select! {
                Some(done) = self.done_rx.recv() => self.complete(done).await,
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(client_id = %self.key.client_id, target_id = %self.key.target_id, in_flight = self.in_flight,
                        "shutdown grace period over; unfinished callbacks stay queued");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
