//! The handler: one batch in, each message's fate out (deliver, retry, defer, dead-letter).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::aws::handler::{ConfigFault, ConfigLookup, ConfigSource};
use crate::config::{ClientSettings, DeliverySettings};
use crate::deliver::{self, record, Decision, Request, TokenBucket};

use super::{
    parse_body, request_body, AttemptRecord, BatchResult, CallbackEvent, DeadLetter,
    DeliveryOptions, DeliveryState, Fate, Gate, ItemFailure, QueueInfo, QueueOps, Sender,
    SqsMessage, TargetKey, CONFIG_FAULT_RETRY, DEADLINE_MARGIN, MAX_VISIBILITY, RETENTION_MARGIN,
};

struct Bucket {
    rate: f64,
    bucket: Arc<tokio::sync::Mutex<TokenBucket>>,
}

/// The delivery handler and what it keeps between invocations of one execution environment
/// (token buckets; the HTTP clients live in the [`Sender`]).
pub struct Delivery<Q, S, C, D> {
    pub queue: Q,
    pub sender: S,
    pub configs: Arc<C>,
    pub state: D,
    pub options: DeliveryOptions,
    buckets: Mutex<HashMap<TargetKey, Bucket>>,
}

/// One message being handled: the record, its queue, its event and when it was received.
struct Msg<'a> {
    rec: &'a SqsMessage,
    queue: &'a QueueInfo,
    ev: &'a CallbackEvent,
    received: Instant,
    /// When the Lambda will be stopped.
    deadline: Option<Instant>,
    /// The queue's `maxReceiveCount` is reached: a message not delivered now is dead-lettered.
    last_receive: bool,
}

/// Per-message outcome with what the metrics need.
struct Processed {
    fate: Fate,
    client_id: Option<String>,
    latency_ms: Option<f64>,
    signature_recomputed: bool,
}

impl Processed {
    fn new(fate: Fate) -> Self {
        Processed {
            fate,
            client_id: None,
            latency_ms: None,
            signature_recomputed: false,
        }
    }
}

impl<Q: QueueOps, S: Sender, C: ConfigSource, D: DeliveryState> Delivery<Q, S, C, D> {
    pub fn new(queue: Q, sender: S, configs: Arc<C>, state: D, options: DeliveryOptions) -> Self {
        Delivery {
            queue,
            sender,
            configs,
            state,
            options,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn buckets(&self) -> MutexGuard<'_, HashMap<TargetKey, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This invocation's token bucket for a target at `rate` requests per second.
    fn bucket(&self, key: &TargetKey, rate: f64) -> Arc<tokio::sync::Mutex<TokenBucket>> {
        let mut buckets = self.buckets();
        match buckets.get(key) {
            Some(b) if b.rate == rate => Arc::clone(&b.bucket),
            _ => {
                let bucket = Arc::new(tokio::sync::Mutex::new(TokenBucket::new(
                    rate,
                    Instant::now(),
                )));
                buckets.insert(
                    key.clone(),
                    Bucket {
                        rate,
                        bucket: Arc::clone(&bucket),
                    },
                );
                bucket
            }
        }
    }

    /// Handles one batch. `deadline`: when the Lambda will be stopped (no attempt is started
    /// that could not finish before it).
    pub async fn handle(
        self: &Arc<Self>,
        records: Vec<SqsMessage>,
        deadline: Option<Instant>,
    ) -> BatchResult {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let ids: Vec<String> = records.iter().map(|r| r.message_id.clone()).collect();
        for (i, rec) in records.into_iter().enumerate() {
            let this = Arc::clone(self);
            let task = async move { (i, this.process(rec, deadline).await) };
            tasks.spawn(tracing::Instrument::instrument(
                task,
                tracing::Span::current(),
            ));
        }
        let mut processed: Vec<Option<Processed>> = (0..ids.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, p)) => {
                    if let Some(slot) = processed.get_mut(i) {
                        *slot = Some(p);
                    }
                }
                Err(e) => tracing::error!(error = %e, "delivery task failed"),
            }
        }
        let mut result = BatchResult::default();
        for (id, p) in ids.into_iter().zip(processed) {
            // A task that died leaves its message on the queue.
            let p = p.unwrap_or_else(|| {
                Processed::new(Fate::Failed {
                    reason: "delivery task failed".into(),
                })
            });
            if let Some(client) = &p.client_id {
                let m = result.metrics.entry(client.clone()).or_default();
                match &p.fate {
                    Fate::Delivered { .. } => m.delivered += 1,
                    Fate::Retried { .. } => m.retried += 1,
                    Fate::Deferred { .. } => m.deferred += 1,
                    Fate::DeadLettered { .. } => m.dead_lettered += 1,
                    Fate::Failed { .. } => m.failed += 1,
                }
                m.signature_recomputed += u64::from(p.signature_recomputed);
                m.latencies_ms.extend(p.latency_ms);
            }
            if p.fate.stays() {
                result.response.batch_item_failures.push(ItemFailure {
                    item_identifier: id.clone(),
                });
            }
            result.fates.push((id, p.fate));
        }
        result.duration = started.elapsed();
        result
    }

    async fn process(&self, rec: SqsMessage, deadline: Option<Instant>) -> Processed {
        let received = Instant::now();
        let sqs_id = rec.message_id.clone();
        if rec.receipt_handle.is_empty() || sqs_id.is_empty() {
            tracing::error!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = %sqs_id, "record without a message id or receipt handle; left on the queue");
            return Processed::new(Fate::Failed {
                reason: "record without a message id or receipt handle".into(),
            });
        }
        let queue = match self.queue.info(&rec.event_source_arn).await {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = %sqs_id, error = %e, "source queue unknown; left on the queue");
                return Processed::new(Fate::Failed {
                    reason: e.to_string(),
                });
            }
        };
        let ev = match parse_body(&rec.body) {
            Ok(ev) => ev,
            Err(reason) => {
                tracing::error!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = %sqs_id, reason = %reason, "malformed message");
                let letter = self.letter(&rec, None, reason, Vec::new()).await;
                return Processed::new(self.dead_letter(&queue, &rec, letter).await);
            }
        };
        let last_receive = queue
            .max_receive_count
            .is_some_and(|max| rec.receive_count() >= max);
        let m = Msg {
            rec: &rec,
            queue: &queue,
            ev: &ev,
            received,
            deadline,
            last_receive,
        };
        let mut out = self.deliver(&m).await;
        out.client_id = Some(ev.client_id.clone());
        out
    }

    async fn letter(
        &self,
        rec: &SqsMessage,
        ev: Option<&CallbackEvent>,
        reason: String,
        this_invocation: Vec<AttemptRecord>,
    ) -> DeadLetter {
        let made_now = u32::try_from(this_invocation.len()).unwrap_or(u32::MAX);
        let mut history = self.state.history(&rec.message_id).await;
        history.extend(this_invocation);
        record::trim_history(&mut history);
        // Without a full history (per-environment state, or a store that lost it), the
        // earlier receives are the earlier attempts, plus the attempts of this receive.
        let attempts = u32::try_from(history.len()).unwrap_or(u32::MAX).max(
            rec.receive_count()
                .saturating_sub(1)
                .saturating_add(made_now),
        );
        DeadLetter {
            body: rec.body.clone(),
            client_id: ev.map(|e| e.client_id.clone()),
            target_id: ev.map(|e| e.target_id.clone()),
            event_id: ev.map(|e| e.event_id.clone()),
            message_id: ev.map(|e| e.message_id.clone()),
            reason,
            attempts,
            first_attempt_at: history.first().map(|a| a.at.clone()),
            last_outcome: history.last().map(|a| a.outcome.clone()),
            history,
        }
    }

    async fn dead_letter(&self, queue: &QueueInfo, rec: &SqsMessage, letter: DeadLetter) -> Fate {
        let event_id = letter.event_id.clone();
        let message_id = letter.message_id.clone();
        if let Err(e) = self.queue.dead_letter(queue, &letter).await {
            tracing::error!(event_id = event_id.as_deref(), message_id = message_id.as_deref(), sqs_message_id = %rec.message_id, error = %e, "cannot dead-letter; left on the queue");
            return Fate::Failed {
                reason: e.to_string(),
            };
        }
        tracing::warn!(event_id = event_id.as_deref(), message_id = message_id.as_deref(), sqs_message_id = %rec.message_id, attempts = letter.attempts, reason = %letter.reason, "dead-lettered");
        if let Err(e) = self.queue.delete(queue, &rec.receipt_handle).await {
            // Not reported as failed: the event source mapping deletes it.
            tracing::warn!(event_id = event_id.as_deref(), message_id = message_id.as_deref(), sqs_message_id = %rec.message_id, error = %e, "delete after dead-lettering failed");
        }
        self.state.forget(&rec.message_id).await;
        Fate::DeadLettered {
            reason: letter.reason,
        }
    }

    /// Makes the message visible again after `wait` (capped at what SQS allows for this receive).
    async fn back_off(&self, m: &Msg<'_>, wait: Duration) -> Duration {
        let cap = MAX_VISIBILITY
            .saturating_sub(m.received.elapsed())
            .saturating_sub(Duration::from_secs(1));
        let secs = Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        let after = secs.min(cap);
        if let Err(e) = self
            .queue
            .change_visibility(m.queue, &m.rec.receipt_handle, after)
            .await
        {
            // The queue's own visibility timeout brings it back instead.
            tracing::warn!(event_id = %m.ev.event_id, message_id = %m.ev.message_id, sqs_message_id = %m.rec.message_id, error = %e, "ChangeMessageVisibility failed");
        }
        after
    }

    /// Dead-letters a message whose event was read: its history so far plus `made` (the
    /// attempts of this receive).
    async fn give_up(&self, m: &Msg<'_>, reason: String, made: Vec<AttemptRecord>) -> Fate {
        let letter = self.letter(m.rec, Some(m.ev), reason, made).await;
        self.dead_letter(m.queue, m.rec, letter).await
    }

    /// The client's configuration, or what became of the message without it.
    async fn client_of(&self, m: &Msg<'_>) -> Result<Arc<ClientSettings>, Fate> {
        let (ev, rec) = (m.ev, m.rec);
        match self.configs.client(&ev.client_id).await {
            Ok(ConfigLookup {
                settings: Some(client),
                ..
            }) => Ok(client),
            Ok(_) => Err(self
                .give_up(
                    m,
                    format!("client {:?} has no configuration", ev.client_id),
                    Vec::new(),
                )
                .await),
            Err(ConfigFault { reason, .. }) => {
                tracing::error!(event_id = %ev.event_id, message_id = %ev.message_id, sqs_message_id = %rec.message_id, reason = %reason, "client configuration unavailable");
                if m.last_receive {
                    let reason =
                        format!("client configuration unavailable on the last receive: {reason}");
                    return Err(self.give_up(m, reason, Vec::new()).await);
                }
                let after = self.back_off(m, CONFIG_FAULT_RETRY).await;
                Err(Fate::Deferred {
                    after,
                    why: "configuration unavailable",
                })
            }
        }
    }

    /// The circuit breaker's gate, or the message deferred or dead-lettered behind it.
    async fn gate(
        &self,
        m: &Msg<'_>,
        key: &TargetKey,
        settings: &DeliverySettings,
        policy: &deliver::RetryPolicy,
        age: Duration,
    ) -> Result<Gate, Fate> {
        let Some(circuit) = &settings.circuit_breaker else {
            return Ok(Gate::Allowed);
        };
        let gate = self
            .state
            .admit(key, circuit, settings.timeout, SystemTime::now())
            .await;
        let Gate::Denied(wait) = gate else {
            return Ok(gate);
        };
        let receive_count = m.rec.receive_count();
        let wait = wait.max(policy.backoff.delay(receive_count, rand::random::<f64>()));
        if m.last_receive || age.saturating_add(wait) > policy.budget {
            let why = if m.last_receive {
                "the queue's maxReceiveCount is reached"
            } else {
                "the retry budget is spent"
            };
            return Err(self
                .give_up(m, format!("circuit open and {why}"), Vec::new())
                .await);
        }
        tracing::info!(event_id = %m.ev.event_id, message_id = %m.ev.message_id, sqs_message_id = %m.rec.message_id, wait_ms = wait.as_millis() as u64, "circuit open; deferred");
        let after = self.back_off(m, wait).await;
        Err(Fate::Deferred {
            after,
            why: "circuit open",
        })
    }

    /// Waits for this invocation's share of the target's rate limit, or defers the message
    /// when no token comes before the deadline.
    async fn take_token(
        &self,
        m: &Msg<'_>,
        key: &TargetKey,
        client: &ClientSettings,
        settings: &DeliverySettings,
        gate: Gate,
    ) -> Result<(), Fate> {
        let cap = self.options.concurrency.of(client);
        let rate = f64::from(settings.rate_limit_per_second.max(1)) / f64::from(cap.max(1));
        let bucket = self.bucket(key, rate);
        loop {
            let wait = match bucket.lock().await.try_take(Instant::now()) {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            let too_late = m
                .deadline
                .is_some_and(|d| Instant::now() + wait + settings.timeout + DEADLINE_MARGIN > d);
            if too_late {
                if gate == Gate::Probe {
                    self.state.abandon_probe(key).await;
                }
                let after = self.back_off(m, wait).await;
                tracing::info!(event_id = %m.ev.event_id, message_id = %m.ev.message_id, sqs_message_id = %m.rec.message_id, "no rate-limit token before the deadline; deferred");
                return Err(Fate::Deferred {
                    after,
                    why: "rate limit",
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Acts on the policy's decision about one attempt: acknowledged, retried after the
    /// back-off, or dead-lettered. Returns the fate and, when delivered, the latency.
    async fn settle(
        &self,
        m: &Msg<'_>,
        decision: Decision,
        record: AttemptRecord,
    ) -> (Fate, Option<f64>) {
        let (ev, sqs_id, receive_count) = (m.ev, &m.rec.message_id, m.rec.receive_count());
        match decision {
            Decision::Delivered => {
                let latency_ms = m
                    .rec
                    .queued_at()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .map(|d| d.as_secs_f64() * 1000.0);
                tracing::info!(event_id = %ev.event_id, message_id = %ev.message_id, sqs_message_id = %sqs_id, status = record.status, attempts = receive_count, "delivered");
                if receive_count > 1 {
                    self.state.forget(sqs_id).await;
                }
                let status = record.status.unwrap_or(200);
                (Fate::Delivered { status }, latency_ms)
            }
            Decision::RetryAfter(wait) if !m.last_receive => {
                self.state.record_attempt(sqs_id, &record).await;
                let after = self.back_off(m, wait).await;
                tracing::info!(event_id = %ev.event_id, message_id = %ev.message_id, sqs_message_id = %sqs_id, outcome = %record.outcome, attempts = receive_count, retry_in_s = after.as_secs(), "retrying");
                (Fate::Retried { after }, None)
            }
            Decision::RetryAfter(_) => {
                let reason = format!(
                    "the queue's maxReceiveCount ({receive_count}) is reached; last outcome {}",
                    record.outcome
                );
                (self.give_up(m, reason, vec![record]).await, None)
            }
            Decision::DeadLetter(reason) => (
                self.give_up(m, reason.to_string(), vec![record]).await,
                None,
            ),
        }
    }

    /// Decides the fate of one callback: the configuration in force, the exact body signed
    /// with the current key, the retry budget, the circuit breaker, the rate limit, one
    /// attempt, and what the policy makes of it.
    async fn deliver(&self, m: &Msg<'_>) -> Processed {
        let (ev, sqs_id) = (m.ev, &m.rec.message_id);
        let client = match self.client_of(m).await {
            Ok(c) => c,
            Err(fate) => return Processed::new(fate),
        };
        let Some(target) = client
            .targets
            .iter()
            .find(|t| t.target_id.as_str() == ev.target_id)
        else {
            let reason = format!("target {:?} is not configured", ev.target_id);
            return Processed::new(self.give_up(m, reason, Vec::new()).await);
        };
        let settings = DeliverySettings::of(target);
        let key = TargetKey {
            client_id: ev.client_id.clone(),
            target_id: ev.target_id.clone(),
        };

        // The exact bytes, and the signature over them with the key sent alongside.
        let body = match request_body(ev.payload.clone()) {
            Ok(b) => Bytes::from(b),
            Err(reason) => return Processed::new(self.give_up(m, reason, Vec::new()).await),
        };
        let endpoint = deliver::Endpoint::of(&client, target);
        let signature = endpoint.signature(&body);
        let signature_recomputed = signature != ev.signature;
        if signature_recomputed {
            tracing::warn!(event_id = %ev.event_id, message_id = %ev.message_id, sqs_message_id = %sqs_id, "detail.signature does not match the body and the current API key (key rotated since the event was signed?); sending the signature of the current key");
        }
        let headers = endpoint.headers(signature);
        let done = |fate: Fate, latency_ms: Option<f64>| Processed {
            fate,
            client_id: None,
            latency_ms,
            signature_recomputed,
        };

        // The retry budget: from queue entry, never past the queue's retention.
        let mut policy = deliver::retry_policy(&settings);
        if let Some(retention) = m.queue.retention {
            policy.budget = policy
                .budget
                .min(retention.saturating_sub(RETENTION_MARGIN));
        }
        let receive_count = m.rec.receive_count();
        let age = m
            .rec
            .queued_at()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        if receive_count > 1 && !policy.within_budget(age) {
            let reason = deliver::DeadLetterReason::BudgetExhausted {
                attempts: receive_count - 1,
            };
            return done(self.give_up(m, reason.to_string(), Vec::new()).await, None);
        }
        let gate = match self.gate(m, &key, &settings, &policy, age).await {
            Ok(gate) => gate,
            Err(fate) => return done(fate, None),
        };
        if let Err(fate) = self.take_token(m, &key, &client, &settings, gate).await {
            return done(fate, None);
        }

        let request = Request {
            url: &endpoint.url,
            headers: &headers,
            body: &body,
        };
        let attempt = self.sender.send(&key, &settings, request).await;
        if let Some(circuit) = &settings.circuit_breaker {
            let failed = deliver::policy::is_endpoint_failure(&attempt.outcome);
            self.state
                .report(&key, circuit, gate, failed, SystemTime::now())
                .await;
        }
        let decision = policy.decide(&attempt.outcome, receive_count, age, rand::random::<f64>());
        let (fate, latency_ms) = self.settle(m, decision, AttemptRecord::of(&attempt)).await;
        done(fate, latency_ms)
    }
}

// ---------------------------------------------------------------------------------------------
