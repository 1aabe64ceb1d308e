//! One message's way to its attempt in the delivery Lambda: the client configuration in force,
//! the exact body signed with the current key, the retry budget, the circuit breaker's gate and
//! this invocation's share of the rate limit; then one attempt ([`fate::send`]) and its fate
//! ([`fate::settle`]) through the SQS queue port ([`SqsReceived`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::aws::handler::{ConfigFault, ConfigLookup, ConfigSource};
use crate::config::{ClientSettings, DeliverySettings};
use crate::deliver::fate::{self, Transport};
use crate::deliver::{self, Attempt, Received, Request, RetryPolicy};

use super::batch::{Delivery, Processed};
use super::received::{Msg, SqsReceived};
use super::{
    request_body, DeliveryState, Fate, Gate, QueueInfo, QueueOps, Sender, TargetKey,
    CONFIG_FAULT_RETRY, DEADLINE_MARGIN, RETENTION_MARGIN,
};

impl<Q: QueueOps, S: Sender, C: ConfigSource, D: DeliveryState> Delivery<Q, S, C, D> {
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

    /// Decides the fate of one callback: the configuration in force, the exact body signed
    /// with the current key, the retry budget, the circuit breaker, the rate limit, one
    /// attempt, and what the policy makes of it.
    pub(super) async fn deliver(&self, m: Msg<'_>) -> Processed {
        let (ev, rec) = (m.ev, m.rec);
        let client = match self.client_of(&m).await {
            Ok(c) => c,
            Err(fate) => return Processed::new(fate),
        };
        let Some(target) = client
            .targets
            .iter()
            .find(|t| t.target_id.as_str() == ev.target_id)
        else {
            let reason = format!("target {:?} is not configured", ev.target_id);
            return Processed::new(self.give_up(&m, reason, Vec::new()).await);
        };
        let settings = DeliverySettings::of(target);
        let key = TargetKey {
            client_id: ev.client_id.clone(),
            target_id: ev.target_id.clone(),
        };

        // The exact bytes, and the signature over them with the key sent alongside.
        let body = match request_body(ev.payload.clone()) {
            Ok(b) => Bytes::from(b),
            Err(reason) => return Processed::new(self.give_up(&m, reason, Vec::new()).await),
        };
        let endpoint = deliver::Endpoint::of(&client, target);
        let signature = endpoint.signature(&body);
        let signature_recomputed = signature != ev.signature;
        if signature_recomputed {
            tracing::warn!(event_id = %ev.event_id, message_id = %ev.message_id, sqs_message_id = %rec.message_id, "detail.signature does not match the body and the current API key (key rotated since the event was signed?); sending the signature of the current key");
        }
        let done = |fate: Fate, latency_ms: Option<f64>| Processed {
            fate,
            client_id: None,
            latency_ms,
            signature_recomputed,
        };

        let policy = retry_policy(&settings, m.queue);
        let callback = SqsReceived {
            delivery: self,
            age: since(rec.queued_at()),
            msg: m,
        };
        if let Some(reason) = fate::expired(&callback, &policy) {
            return done(callback.dead_letter(reason.to_string(), None).await, None);
        }
        let gate = match self
            .gate(&callback.msg, &key, &settings, &policy, callback.age)
            .await
        {
            Ok(gate) => gate,
            Err(fate) => return done(fate, None),
        };
        if let Err(fate) = self
            .take_token(&callback.msg, &key, &client, &settings, gate)
            .await
        {
            return done(fate, None);
        }

        let transport = TargetTransport {
            sender: &self.sender,
            key: &key,
            settings: &settings,
        };
        let attempt = fate::send(&transport, &endpoint, &body, signature).await;
        if let Some(circuit) = &settings.circuit_breaker {
            let failed = deliver::policy::is_endpoint_failure(&attempt.outcome);
            self.state
                .report(&key, circuit, gate, failed, SystemTime::now())
                .await;
        }
        let fate = fate::settle(callback, &policy, &attempt).await;
        let latency_ms = matches!(fate, Fate::Delivered { .. })
            .then(|| since(rec.queued_at()).as_secs_f64() * 1000.0);
        done(fate, latency_ms)
    }
}

/// The retry budget: from queue entry, never past the queue's retention.
fn retry_policy(settings: &DeliverySettings, queue: &QueueInfo) -> RetryPolicy {
    let mut policy = deliver::retry_policy(settings);
    if let Some(retention) = queue.retention {
        policy.budget = policy
            .budget
            .min(retention.saturating_sub(RETENTION_MARGIN));
    }
    policy
}

/// Time since `t` (zero when unknown or in the future).
fn since(t: Option<SystemTime>) -> Duration {
    t.and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// The [`Sender`] as the transport of one target's request.
struct TargetTransport<'a, S> {
    sender: &'a S,
    key: &'a TargetKey,
    settings: &'a DeliverySettings,
}

impl<S: Sender> Transport for TargetTransport<'_, S> {
    fn send(&self, request: Request<'_>) -> impl Future<Output = Attempt> + Send {
        self.sender.send(self.key, self.settings, request)
    }
}
