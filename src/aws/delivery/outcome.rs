//! What the handler decides and reports: the per-client concurrency cap and rate share, each
//! message's fate, the invocation's counts and their Embedded Metric Format documents.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::aws::emf::{self, Metric};
use crate::config::{ClientSettings, DeliverySettings};
use crate::schema::types::DeliveryMode;

use super::BatchResponse;

/// The requests per second the Terraform formula gives one execution environment: a batch of
/// 10 callbacks for one target then takes about a second of Lambda time, not `10·C/r` seconds of
/// waiting for tokens (a cap equal to the summed rate gave each environment 1/s).
pub const RATE_PER_ENVIRONMENT: u64 = 10;

/// How many invocations may deliver for one client at once: the event source mapping's
/// `maximum_concurrency`. Each invocation gets `invocationRateLimit / cap` of a target's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyCap {
    /// The Terraform formula (`modules/client-delivery`, `local.maximum_concurrency`): one
    /// execution environment per [`RATE_PER_ENVIRONMENT`] requests per second of the client's
    /// https targets' summed `invocationRateLimit`, rounded up, at least 2, at most 1000.
    Terraform,
    /// A fixed cap (`CLIENT_MAX_CONCURRENCY`, when the mappings are set differently).
    Fixed(u32),
}

impl ConcurrencyCap {
    /// The cap for one client.
    pub fn of(self, client: &ClientSettings) -> u32 {
        match self {
            ConcurrencyCap::Fixed(n) => n.max(1),
            ConcurrencyCap::Terraform => {
                let sum: u64 = client
                    .targets
                    .iter()
                    .filter(|t| DeliverySettings::of(t).mode == DeliveryMode::Https)
                    .map(|t| t.invocation_rate_limit.get())
                    .sum();
                let environments = sum.div_ceil(RATE_PER_ENVIRONMENT);
                u32::try_from(environments.clamp(2, 1000)).unwrap_or(1000)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOptions {
    pub concurrency: ConcurrencyCap,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            concurrency: ConcurrencyCap::Terraform,
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// 2xx.
    Delivered { status: u16 },
    /// A retryable failure: visible again after `after`; reported as a batch item failure.
    Retried { after: Duration },
    /// Not attempted (circuit open, no rate-limit token before the deadline, configuration
    /// unavailable): visible again after `after`; reported as a batch item failure.
    Deferred { after: Duration, why: &'static str },
    /// On the client's DLQ and deleted from the queue.
    DeadLettered { reason: String },
    /// Something on our side failed (e.g. the DLQ send): left for the visibility timeout;
    /// reported as a batch item failure.
    Failed { reason: String },
}

impl Fate {
    /// Whether the message stays on the queue (a batch item failure).
    pub fn stays(&self) -> bool {
        matches!(
            self,
            Fate::Retried { .. } | Fate::Deferred { .. } | Fate::Failed { .. }
        )
    }
}

/// The counts of one invocation, per client (EMF, dimension `ClientId`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientMetrics {
    pub delivered: u64,
    pub retried: u64,
    pub deferred: u64,
    pub dead_lettered: u64,
    pub failed: u64,
    pub signature_recomputed: u64,
    /// Queue entry (`SentTimestamp`) to 2xx, per delivered callback.
    pub latencies_ms: Vec<f64>,
}

/// What one invocation did.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    pub response: BatchResponse,
    /// Per message, in batch order: (SQS message id, fate).
    pub fates: Vec<(String, Fate)>,
    pub metrics: HashMap<String, ClientMetrics>,
    pub duration: Duration,
}

impl BatchResult {
    /// One Embedded Metric Format document per client: `CallbacksDelivered`,
    /// `DeliveryRetried`, `DeliveryDeferred`, `DeliveryFailed` (dead-lettered), `DeliveryErrors`,
    /// `SignatureRecomputed` (Count) and `DeliveryLatencyMs` (Milliseconds, all values).
    pub fn to_emf(&self, namespace: &str, timestamp_ms: u64) -> Vec<Value> {
        let mut clients: Vec<_> = self.metrics.iter().collect();
        clients.sort_by(|a, b| a.0.cmp(b.0));
        clients
            .into_iter()
            .map(|(client, m)| {
                emf::document(
                    namespace,
                    ("ClientId", client),
                    timestamp_ms,
                    vec![
                        Metric::count("CallbacksDelivered", m.delivered),
                        Metric::count("DeliveryRetried", m.retried),
                        Metric::count("DeliveryDeferred", m.deferred),
                        Metric::count("DeliveryFailed", m.dead_lettered),
                        Metric::count("DeliveryErrors", m.failed),
                        Metric::count("SignatureRecomputed", m.signature_recomputed),
                        Metric::milliseconds("DeliveryLatencyMs", m.latencies_ms.clone()),
                    ],
                )
            })
            .collect()
    }
}
