//! One target's worker: a bounded window of its queue in memory (refilled from the store in id
//! order), its token bucket, circuit breaker and a cap on requests in flight. Each request is
//! built, signed and sent by [`fate::send`] in a task of its own; its fate is decided by
//! [`fate::settle`] through the store's queue port ([`Queued`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};

use crate::deliver::{
    self, fate, policy, Admission, Attempt, AttemptOutcome, CircuitBreaker, DeadLetterReason,
    Received, TokenBucket,
};
use crate::local::metrics::TargetMetrics;
use crate::local::store::{now_ms, Queued, QueuedCallback, Settled};

use super::{Engine, TargetKey, TargetRuntime};

/// Callbacks kept in memory per target (the rest stays on disk until there is room).
const WINDOW: usize = 1024;
/// Refill when fewer than this many are in memory.
const LOW_WATER: usize = 256;
/// Rows read per refill.
const LOAD_BATCH: usize = 512;

/// A finished attempt, back from its request task.
struct Done {
    job: QueuedCallback,
    attempt: Attempt,
    probe: bool,
}

pub(super) struct Worker {
    key: TargetKey,
    engine: Arc<Engine>,
    rt: Arc<TargetRuntime>,
    pub(super) rt_rx: watch::Receiver<Arc<TargetRuntime>>,
    pub(super) poke: Arc<Notify>,
    pub(super) metrics: Arc<TargetMetrics>,
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
    pub(super) fn new(
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

    /// The store's queue port for `job`.
    fn queued(&self, job: QueuedCallback) -> Queued<'_> {
        Queued {
            store: &self.engine.store,
            job,
        }
    }

    async fn refill(&mut self) {
        while self.maybe_more && self.held() < LOW_WATER.max(WINDOW - LOAD_BATCH) {
            let (client_id, target_id) = (&self.key.client_id, &self.key.target_id);
            let loaded = self
                .engine
                .store
                .load(client_id, target_id, self.watermark, LOAD_BATCH)
                .await;
            let rows = match loaded {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(client_id = %client_id, target_id = %target_id, error = %e,
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

    /// Moves the callbacks whose retry time has come to `ready`; when the next one is due.
    fn promote(&mut self, now_i: Instant, now: i64) -> Option<Instant> {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.ready.push_back(entry.remove());
        }
        self.delayed.first_key_value().map(|((due, _), _)| {
            now_i + Duration::from_millis(u64::try_from(due - now).unwrap_or(0))
        })
    }

    /// Starts every request that may start now; returns when to look again.
    async fn dispatch(&mut self) -> Option<Instant> {
        let now_i = Instant::now();
        let mut wake = self.promote(now_i, now_ms());
        let earliest = |w: Option<Instant>, t: Instant| Some(w.map_or(t, |w| w.min(t)));
        if self.rt.endpoint.is_none() {
            while let Some(job) = self.ready.pop_front() {
                let reason = DeadLetterReason::TargetGone.to_string();
                self.dead_letter(job, reason).await;
            }
        }
        while self.in_flight < self.rt.max_in_flight() {
            let Some(job) = self.ready.pop_front() else {
                break;
            };
            let queued = self.queued(job);
            if let Some(reason) = fate::expired(&queued, &self.rt.policy) {
                let job = queued.job;
                self.dead_letter(job, reason.to_string()).await;
                continue;
            }
            let job = queued.job;
            let probe = match self.circuit.as_mut().map(|c| c.admit(now_i)) {
                None | Some(Admission::Allowed) => false,
                Some(Admission::Probe) => true,
                Some(Admission::Denied { retry_at }) => {
                    if let Some(at) = retry_at {
                        wake = earliest(wake, at);
                    }
                    self.ready.push_front(job);
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
                self.ready.push_front(job);
                break;
            }
            self.start(job, probe);
        }
        self.publish_circuit(now_i);
        wake
    }

    /// Starts one attempt: the request is built and signed now, with the endpoint in force.
    fn start(&mut self, job: QueuedCallback, probe: bool) {
        self.in_flight += 1;
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let rt = self.rt.clone();
        let tx = self.done_tx.clone();
        tracing::debug!(client_id = %self.key.client_id, target_id = %self.key.target_id, event_id = %job.event_id,
            message_id = %job.message_id, attempt = job.attempts + 1, probe, "sending callback");
        tokio::spawn(async move {
            // `dispatch` starts nothing for a target without an endpoint.
            let Some(endpoint) = rt.endpoint.as_ref() else {
                return;
            };
            let signature = endpoint.signature(&job.body);
            let attempt = fate::send(&rt.sender, endpoint, &job.body, signature).await;
            let _ = tx.send(Done {
                job,
                attempt,
                probe,
            });
        });
    }

    fn publish_circuit(&self, now: Instant) {
        let state = self
            .circuit
            .as_ref()
            .map_or(0, |c| c.state(now).metric_value());
        self.metrics.circuit_state.store(state, Ordering::Relaxed);
    }

    async fn dead_letter(&mut self, job: QueuedCallback, reason: String) {
        let settled = self.queued(job).dead_letter(reason, None).await;
        self.count(settled);
    }

    /// Counts what became of a callback; one rescheduled goes back into the window.
    fn count(&mut self, settled: Settled) {
        match settled {
            Settled::Delivered { age } => {
                self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
                self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                self.engine.metrics.end_to_end.observe(age);
            }
            Settled::Retried(job) => {
                self.metrics.retried.fetch_add(1, Ordering::Relaxed);
                self.delayed.insert((job.due_at_ms, job.id), job);
            }
            Settled::DeadLettered => {
                self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Feeds an attempt's outcome to the circuit breaker.
    fn report_circuit(&mut self, outcome: &AttemptOutcome, probe: bool) {
        let now_i = Instant::now();
        if let Some(c) = self.circuit.as_mut() {
            if policy::is_endpoint_failure(outcome) {
                c.on_failure(now_i, probe);
            } else if matches!(outcome, AttemptOutcome::Status { .. }) {
                c.on_success();
            } else if probe {
                c.probe_abandoned();
            }
        }
        self.publish_circuit(now_i);
    }

    async fn complete(&mut self, done: Done) {
        let Done {
            job,
            attempt,
            probe,
        } = done;
        self.in_flight -= 1;
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.metrics.attempts.fetch_add(1, Ordering::Relaxed);
        self.metrics.request_duration.observe(attempt.duration);
        self.report_circuit(&attempt.outcome, probe);
        let settled = fate::settle(self.queued(job), &self.rt.policy, &attempt).await;
        let last = if matches!(settled, Settled::Delivered { .. }) {
            &self.metrics.last_success_ms
        } else {
            &self.metrics.last_failure_ms
        };
        last.store(now_ms(), Ordering::Relaxed);
        self.count(settled);
    }

    pub(super) async fn run(mut self) {
        let shutdown = self.engine.shutdown.clone();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            #[cfg(test)]
            super::tests::fault(&self.key);
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
        self.drain().await;
    }

    /// Shutting down: start nothing new; wait for requests in flight, up to the grace period.
    /// Whatever has not finished stays queued (and is sent again after the restart).
    async fn drain(&mut self) {
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
