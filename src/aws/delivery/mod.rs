//! The delivery Lambda (`delivery.mode = "https"`): one SQS batch of Callbacks-bus events from
//! a client's queue in, one HTTPS attempt per callback out, with the delivery engine of
//! `callbacks serve` ([`crate::deliver`]: retry policy, token bucket, circuit breaker, HTTP
//! sender) and the same three request headers.
//!
//! The handler ([`Delivery::handle`]) is a plain async function over small ports, so it runs
//! without the Lambda runtime:
//! - [`QueueOps`]: change a message's visibility, delete it, move it to the client's DLQ
//!   ([`sqs::SqsQueue`] in the Lambda);
//! - [`Sender`]: make one attempt ([`sender::HttpSenders`]: one `reqwest` client per target);
//! - [`ConfigSource`]: the client configuration (the transform-filter Lambda's S3 cache);
//! - [`DeliveryState`]: circuit breaker state and attempt histories ([`state::LocalState`] per
//!   execution environment, or [`state::DynamoState`] shared through DynamoDB).
//!
//! Per message (see README, "On AWS: direct HTTPS delivery"):
//! - body = the compact serialization of `detail.payload` through the generated payload types
//!   ([`crate::transform::body`], the function whose bytes the transform-filter Lambda signs);
//!   the signature is recomputed over exactly those bytes with the API key sent in the same
//!   request, and compared with `detail.signature` (a difference, e.g. after a key rotation,
//!   is logged and counted);
//! - 2xx: reported as processed (the event source mapping deletes it);
//! - retryable failure: `ChangeMessageVisibility` to the back-off or `Retry-After`, whichever
//!   is longer (capped at the SQS maximum), reported as a batch item failure;
//! - permanent failure, negative `Retry-After`, retry budget spent, or the queue's
//!   `maxReceiveCount` reached: sent to the client's DLQ with the attempt history as message
//!   attributes, then deleted;
//! - the retry budget counts from the message's `SentTimestamp` (when the Callbacks-bus rule put
//!   it on the queue), `maxRetryDurationSeconds` (default 2 hours), never past the queue's
//!   retention period.
//!
//! Nothing is deleted before it is delivered or safely on the DLQ: a crash or timeout leaves
//! every unfinished message to come back when its visibility timeout ends.

pub mod dlq;
pub mod sender;
pub mod sqs;
pub mod state;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{CircuitSettings, ClientSettings, DeliverySettings};
use crate::deliver::{self, record, Attempt, Decision, Request, TokenBucket};
pub use crate::deliver::{rfc3339, AttemptRecord, TargetKey, MAX_HISTORY};
use crate::schema::types::{ChannelStatusCallback, DeliveryMode, MessageStatusCallback};
use crate::transform::{self, Payload};

use super::handler::{ConfigFault, ConfigSource};

/// The longest visibility timeout SQS accepts (12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);
/// Wait before a message whose client configuration could not be read is tried again.
pub const CONFIG_FAULT_RETRY: Duration = Duration::from_secs(30);
/// Retrying stops this long before the queue's retention period would delete the message.
pub const RETENTION_MARGIN: Duration = Duration::from_secs(300);
/// An attempt must be able to finish this long before the Lambda's deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Input and output of the Lambda
// ---------------------------------------------------------------------------------------------

/// The event an SQS event source mapping invokes the Lambda with.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsMessage>,
}

/// One SQS message of the batch. Missing fields are empty (a malformed record is dead-lettered
/// or, without a receipt handle, reported as failed: never dropped).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    #[serde(default)]
    pub message_id: String,
    #[serde(default)]
    pub receipt_handle: String,
    #[serde(default)]
    pub body: String,
    /// SQS system attributes (`ApproximateReceiveCount`, `SentTimestamp`, ...), as strings.
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    /// The queue's ARN.
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: String,
}

fn epoch_ms(v: &str) -> Option<SystemTime> {
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
}

impl SqsMessage {
    /// `ApproximateReceiveCount` (at least 1): the attempts made, this one included.
    pub fn receive_count(&self) -> u32 {
        self.attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(1)
            .max(1)
    }

    /// When the callback was queued: `SentTimestamp`, else `ApproximateFirstReceiveTimestamp`.
    /// The retry budget counts from here.
    pub fn queued_at(&self) -> Option<SystemTime> {
        self.attributes
            .get("SentTimestamp")
            .and_then(|v| epoch_ms(v))
            .or_else(|| {
                self.attributes
                    .get("ApproximateFirstReceiveTimestamp")
                    .and_then(|v| epoch_ms(v))
            })
    }
}

/// The partial batch response (`ReportBatchItemFailures`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// The Callbacks-bus event `detail` (docs/CONTRACTS.md): one transform-filter output element.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackEvent {
    pub client_id: String,
    pub target_id: String,
    #[serde(default)]
    pub subscription_ids: Vec<String>,
    pub signature: String,
    pub payload: Value,
    pub event_id: String,
    pub message_id: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// Reads a queue message body: an EventBridge envelope (the Callbacks-bus rule's target input)
/// whose `detail` is a [`CallbackEvent`], or the detail itself.
pub fn parse_body(body: &str) -> Result<CallbackEvent, String> {
    let mut v: Value =
        serde_json::from_str(body).map_err(|e| format!("the message body is not JSON: {e}"))?;
    let detail = if v.get("detail-type").is_some() {
        v.get_mut("detail").map(Value::take).unwrap_or(Value::Null)
    } else {
        v
    };
    serde_json::from_value(detail)
        .map_err(|e| format!("the message is not a Callbacks-bus event: {e}"))
}

/// The exact request body for a payload: parsed into the generated payload types and written
/// with [`transform::body`], the serializer whose output the transform-filter Lambda signed
/// (so, for an unchanged payload, these are the signed bytes).
pub fn request_body(payload: Value) -> Result<Vec<u8>, String> {
    typed_payload(payload).map(|p| transform::body(&p))
}

/// `detail.payload` read into the generated payload types (whatever key order or escaping
/// EventBridge gave it).
pub fn typed_payload(payload: Value) -> Result<Payload, String> {
    let channel = payload.pointer("/data/0/type").and_then(Value::as_str) == Some("ChannelStatus");
    let typed = if channel {
        serde_json::from_value::<ChannelStatusCallback>(payload).map(Payload::ChannelStatus)
    } else {
        serde_json::from_value::<MessageStatusCallback>(payload).map(Payload::MessageStatus)
    };
    typed.map_err(|e| format!("detail.payload is not a callback body: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/// What the handler needs to know about a source queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue's URL.
    pub url: String,
    /// The URL of its dead-letter queue (from its redrive policy).
    pub dlq_url: Option<String>,
    /// The redrive policy's `maxReceiveCount`: the handler dead-letters a message itself on its
    /// last receive, so that SQS never moves it without its history.
    pub max_receive_count: Option<u32>,
    /// `MessageRetentionPeriod`: retrying stops before SQS would delete the message.
    pub retention: Option<Duration>,
}

/// An SQS (or DLQ) call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueFault(pub String);

/// A callback on its way to the client's DLQ. The body is the queue message body unchanged (a
/// replay puts it back on the client's queue as it was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub body: String,
    pub client_id: Option<String>,
    pub target_id: Option<String>,
    pub event_id: Option<String>,
    pub message_id: Option<String>,
    pub reason: String,
    /// Attempts made (HTTP requests sent, or receives when that is all that is known).
    pub attempts: u32,
    pub first_attempt_at: Option<String>,
    pub last_outcome: Option<String>,
    pub history: Vec<AttemptRecord>,
}

/// The queue operations of the handler.
pub trait QueueOps: Send + Sync + 'static {
    /// The URL, DLQ and limits of the queue with this ARN (cached by implementations).
    fn info(&self, queue_arn: &str) -> impl Future<Output = Result<QueueInfo, QueueFault>> + Send;
    fn change_visibility(
        &self,
        queue: &QueueInfo,
        receipt_handle: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), QueueFault>> + Send;
    fn delete(
        &self,
        queue: &QueueInfo,
        receipt_handle: &str,
    ) -> impl Future<Output = Result<(), QueueFault>> + Send;
    /// Sends the letter to the queue's DLQ (with its history as message attributes).
    fn dead_letter(
        &self,
        queue: &QueueInfo,
        letter: &DeadLetter,
    ) -> impl Future<Output = Result<(), QueueFault>> + Send;
}

/// Makes one HTTP attempt for a target. Never fails: every problem is an [`AttemptOutcome`].
pub trait Sender: Send + Sync + 'static {
    fn send(
        &self,
        target: &TargetKey,
        settings: &DeliverySettings,
        request: Request<'_>,
    ) -> impl Future<Output = Attempt> + Send;
}

/// The circuit breaker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Allowed,
    /// Allowed as the half-open probe: its outcome decides.
    Probe,
    /// Not now; ask again after this long.
    Denied(Duration),
}

/// Circuit breaker state and attempt histories. Every method is best effort: a store that
/// cannot be reached lets requests through (fails open) and loses only history detail.
pub trait DeliveryState: Send + Sync + 'static {
    fn admit(
        &self,
        target: &TargetKey,
        circuit: &CircuitSettings,
        request_timeout: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Gate> + Send;
    fn report(
        &self,
        target: &TargetKey,
        circuit: &CircuitSettings,
        gate: Gate,
        endpoint_failed: bool,
        now: SystemTime,
    ) -> impl Future<Output = ()> + Send;
    /// An admitted probe was not sent after all.
    fn abandon_probe(&self, target: &TargetKey) -> impl Future<Output = ()> + Send;
    fn record_attempt(
        &self,
        sqs_message_id: &str,
        attempt: &AttemptRecord,
    ) -> impl Future<Output = ()> + Send;
    fn history(&self, sqs_message_id: &str) -> impl Future<Output = Vec<AttemptRecord>> + Send;
    fn forget(&self, sqs_message_id: &str) -> impl Future<Output = ()> + Send;
}

// ---------------------------------------------------------------------------------------------
// Options, results, metrics
// ---------------------------------------------------------------------------------------------

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
                let count = |name: &str| serde_json::json!({"Name": name, "Unit": "Count"});
                serde_json::json!({
                    "_aws": {
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": [["ClientId"]],
                            "Metrics": [
                                count("CallbacksDelivered"), count("DeliveryRetried"),
                                count("DeliveryDeferred"), count("DeliveryFailed"),
                                count("DeliveryErrors"), count("SignatureRecomputed"),
                                {"Name": "DeliveryLatencyMs", "Unit": "Milliseconds"}
                            ]
                        }]
                    },
                    "ClientId": client,
                    "CallbacksDelivered": m.delivered,
                    "DeliveryRetried": m.retried,
                    "DeliveryDeferred": m.deferred,
                    "DeliveryFailed": m.dead_lettered,
                    "DeliveryErrors": m.failed,
                    "SignatureRecomputed": m.signature_recomputed,
                    "DeliveryLatencyMs": m.latencies_ms,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------------------------

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
        let mut out = self.deliver(&rec, &queue, &ev, received, deadline).await;
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
    async fn back_off(
        &self,
        queue: &QueueInfo,
        rec: &SqsMessage,
        ev: &CallbackEvent,
        wait: Duration,
        received: Instant,
    ) -> Duration {
        let cap = MAX_VISIBILITY
            .saturating_sub(received.elapsed())
            .saturating_sub(Duration::from_secs(1));
        let secs = Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        let after = secs.min(cap);
        if let Err(e) = self
            .queue
            .change_visibility(queue, &rec.receipt_handle, after)
            .await
        {
            // The queue's own visibility timeout brings it back instead.
            tracing::warn!(event_id = %ev.event_id, message_id = %ev.message_id, sqs_message_id = %rec.message_id, error = %e, "ChangeMessageVisibility failed");
        }
        after
    }

    async fn deliver(
        &self,
        rec: &SqsMessage,
        queue: &QueueInfo,
        ev: &CallbackEvent,
        received: Instant,
        deadline: Option<Instant>,
    ) -> Processed {
        let (event_id, message_id, sqs_id) = (&ev.event_id, &ev.message_id, &rec.message_id);
        let receive_count = rec.receive_count();
        let last_receive = queue
            .max_receive_count
            .is_some_and(|max| receive_count >= max);

        // The client's configuration and the target.
        let client = match self.configs.client(&ev.client_id).await {
            Ok(lookup) => lookup.settings,
            Err(ConfigFault { reason, .. }) => {
                tracing::error!(event_id = %event_id, message_id = %message_id, sqs_message_id = %sqs_id, reason = %reason, "client configuration unavailable");
                if last_receive {
                    let letter = self
                        .letter(
                            rec,
                            Some(ev),
                            format!(
                                "client configuration unavailable on the last receive: {reason}"
                            ),
                            Vec::new(),
                        )
                        .await;
                    return Processed::new(self.dead_letter(queue, rec, letter).await);
                }
                let after = self
                    .back_off(queue, rec, ev, CONFIG_FAULT_RETRY, received)
                    .await;
                return Processed::new(Fate::Deferred {
                    after,
                    why: "configuration unavailable",
                });
            }
        };
        let Some(client) = client else {
            let letter = self
                .letter(
                    rec,
                    Some(ev),
                    format!("client {:?} has no configuration", ev.client_id),
                    Vec::new(),
                )
                .await;
            return Processed::new(self.dead_letter(queue, rec, letter).await);
        };
        let Some(target) = client
            .targets
            .iter()
            .find(|t| t.target_id.as_str() == ev.target_id)
        else {
            let letter = self
                .letter(
                    rec,
                    Some(ev),
                    format!("target {:?} is not configured", ev.target_id),
                    Vec::new(),
                )
                .await;
            return Processed::new(self.dead_letter(queue, rec, letter).await);
        };
        let settings = DeliverySettings::of(target);
        let key = TargetKey {
            client_id: ev.client_id.clone(),
            target_id: ev.target_id.clone(),
        };

        // The exact bytes, and the signature over them with the key sent alongside.
        let body = match request_body(ev.payload.clone()) {
            Ok(b) => Bytes::from(b),
            Err(reason) => {
                let letter = self.letter(rec, Some(ev), reason, Vec::new()).await;
                return Processed::new(self.dead_letter(queue, rec, letter).await);
            }
        };
        let endpoint = deliver::Endpoint::of(&client, target);
        let signature = endpoint.signature(&body);
        let signature_recomputed = signature != ev.signature;
        if signature_recomputed {
            tracing::warn!(event_id = %event_id, message_id = %message_id, sqs_message_id = %sqs_id, "detail.signature does not match the body and the current API key (key rotated since the event was signed?); sending the signature of the current key");
        }
        let headers = endpoint.headers(signature);

        // The retry budget: from queue entry, never past the queue's retention.
        let mut policy = deliver::retry_policy(&settings);
        if let Some(retention) = queue.retention {
            policy.budget = policy
                .budget
                .min(retention.saturating_sub(RETENTION_MARGIN));
        }
        let now = SystemTime::now();
        let queued_at = rec.queued_at();
        let age = queued_at
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        let done = |fate: Fate| Processed {
            fate,
            client_id: None,
            latency_ms: None,
            signature_recomputed,
        };
        if receive_count > 1 && !policy.within_budget(age) {
            let letter = self
                .letter(
                    rec,
                    Some(ev),
                    deliver::DeadLetterReason::BudgetExhausted {
                        attempts: receive_count - 1,
                    }
                    .to_string(),
                    Vec::new(),
                )
                .await;
            return done(self.dead_letter(queue, rec, letter).await);
        }

        // Circuit breaker.
        let mut gate = Gate::Allowed;
        if let Some(circuit) = &settings.circuit_breaker {
            gate = self.state.admit(&key, circuit, settings.timeout, now).await;
            if let Gate::Denied(wait) = gate {
                let wait = wait.max(policy.backoff.delay(receive_count, rand::random::<f64>()));
                if last_receive || age.saturating_add(wait) > policy.budget {
                    let letter = self
                        .letter(
                            rec,
                            Some(ev),
                            format!(
                                "circuit open and {}",
                                if last_receive {
                                    "the queue's maxReceiveCount is reached"
                                } else {
                                    "the retry budget is spent"
                                }
                            ),
                            Vec::new(),
                        )
                        .await;
                    return done(self.dead_letter(queue, rec, letter).await);
                }
                tracing::info!(event_id = %event_id, message_id = %message_id, sqs_message_id = %sqs_id, wait_ms = wait.as_millis() as u64, "circuit open; deferred");
                let after = self.back_off(queue, rec, ev, wait, received).await;
                return done(Fate::Deferred {
                    after,
                    why: "circuit open",
                });
            }
        }

        // This invocation's share of the target's rate limit.
        let cap = self.options.concurrency.of(&client);
        let rate = f64::from(settings.rate_limit_per_second.max(1)) / f64::from(cap.max(1));
        let bucket = self.bucket(&key, rate);
        loop {
            let wait = match bucket.lock().await.try_take(Instant::now()) {
                Ok(()) => break,
                Err(wait) => wait,
            };
            let too_late = deadline
                .is_some_and(|d| Instant::now() + wait + settings.timeout + DEADLINE_MARGIN > d);
            if too_late {
                if gate == Gate::Probe {
                    self.state.abandon_probe(&key).await;
                }
                let after = self.back_off(queue, rec, ev, wait, received).await;
                tracing::info!(event_id = %event_id, message_id = %message_id, sqs_message_id = %sqs_id, "no rate-limit token before the deadline; deferred");
                return done(Fate::Deferred {
                    after,
                    why: "rate limit",
                });
            }
            tokio::time::sleep(wait).await;
        }

        // The attempt.
        let attempt = self
            .sender
            .send(
                &key,
                &settings,
                Request {
                    url: &endpoint.url,
                    headers: &headers,
                    body: &body,
                },
            )
            .await;
        let record = AttemptRecord::of(&attempt);
        if let Some(circuit) = &settings.circuit_breaker {
            let failed = deliver::policy::is_endpoint_failure(&attempt.outcome);
            self.state
                .report(&key, circuit, gate, failed, SystemTime::now())
                .await;
        }
        let decision = policy.decide(&attempt.outcome, receive_count, age, rand::random::<f64>());
        match decision {
            Decision::Delivered => {
                let latency_ms = queued_at
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .map(|d| d.as_secs_f64() * 1000.0);
                tracing::info!(event_id = %event_id, message_id = %message_id, sqs_message_id = %sqs_id, status = record.status, attempts = receive_count, "delivered");
                if receive_count > 1 {
                    self.state.forget(sqs_id).await;
                }
                Processed {
                    fate: Fate::Delivered {
                        status: record.status.unwrap_or(200),
                    },
                    client_id: None,
                    latency_ms,
                    signature_recomputed,
                }
            }
            Decision::RetryAfter(wait) if !last_receive => {
                self.state.record_attempt(sqs_id, &record).await;
                let after = self.back_off(queue, rec, ev, wait, received).await;
                tracing::info!(event_id = %event_id, message_id = %message_id, sqs_message_id = %sqs_id, outcome = %record.outcome, attempts = receive_count, retry_in_s = after.as_secs(), "retrying");
                done(Fate::Retried { after })
            }
            Decision::RetryAfter(_) => {
                let letter = self
                    .letter(rec, Some(ev), format!("the queue's maxReceiveCount ({receive_count}) is reached; last outcome {}", record.outcome), vec![record])
                    .await;
                done(self.dead_letter(queue, rec, letter).await)
            }
            Decision::DeadLetter(reason) => {
                let letter = self
                    .letter(rec, Some(ev), reason.to_string(), vec![record])
                    .await;
                done(self.dead_letter(queue, rec, letter).await)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// The delivery Lambda's settings, from its environment (names as the Terraform sets them).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryLambdaSettings {
    /// `CLIENT_CONFIG_BUCKET`, `CLIENT_CONFIG_PREFIX`, `APPLICATION_ID_MAP_KEY`,
    /// `CONFIG_CACHE_TTL_SECONDS`: as for the transform-filter Lambda.
    pub config: super::s3_config::S3ConfigSettings,
    /// `METRICS_NAMESPACE`.
    pub metrics_namespace: String,
    /// `DELIVERY_STATE_TABLE` (optional): the DynamoDB table that shares circuit breaker state
    /// and attempt histories between invocations. Without it, both live per execution
    /// environment.
    pub state_table: Option<String>,
    /// `EXTRA_CA_BUNDLE_FILE` (optional): a PEM bundle trusted in addition to the system roots.
    pub extra_ca_file: Option<std::path::PathBuf>,
    /// `ALLOW_PRIVATE_EGRESS` (`true`; tests on loopback only): endpoints on loopback,
    /// private and other non-public addresses are connected to (the egress guard).
    pub allow_private_egress: bool,
    /// `CLIENT_MAX_CONCURRENCY` (optional): the event source mappings' `maximum_concurrency`
    /// when it is not the Terraform formula.
    pub concurrency: ConcurrencyCap,
    /// `S3_FORCE_PATH_STYLE` or an endpoint override.
    pub s3_force_path_style: bool,
    /// `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL` (tests against an emulator): queue URLs are
    /// built on this base instead of `https://sqs.<region>.amazonaws.com`.
    pub sqs_url_base: Option<String>,
}

impl DeliveryLambdaSettings {
    pub fn from_env() -> Result<Self, super::SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, super::SettingsError> {
        let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let bucket = non_empty("CLIENT_CONFIG_BUCKET").ok_or(super::SettingsError {
            name: "CLIENT_CONFIG_BUCKET",
            reason: "is required".into(),
        })?;
        let ttl = match non_empty("CONFIG_CACHE_TTL_SECONDS") {
            None => super::DEFAULT_CONFIG_TTL,
            Some(v) => {
                Duration::from_secs(v.trim().parse::<u64>().map_err(|_| super::SettingsError {
                    name: "CONFIG_CACHE_TTL_SECONDS",
                    reason: format!("{v:?} is not a whole number of seconds"),
                })?)
            }
        };
        let concurrency = match non_empty("CLIENT_MAX_CONCURRENCY") {
            None => ConcurrencyCap::Terraform,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => ConcurrencyCap::Fixed(n),
                _ => {
                    return Err(super::SettingsError {
                        name: "CLIENT_MAX_CONCURRENCY",
                        reason: format!("{v:?} is not a positive whole number"),
                    })
                }
            },
        };
        let endpoint = non_empty("AWS_ENDPOINT_URL_SQS").or_else(|| non_empty("AWS_ENDPOINT_URL"));
        Ok(DeliveryLambdaSettings {
            config: super::s3_config::S3ConfigSettings {
                bucket,
                prefix: var("CLIENT_CONFIG_PREFIX").unwrap_or_default(),
                application_id_map_key: non_empty("APPLICATION_ID_MAP_KEY"),
                ttl,
            },
            metrics_namespace: non_empty("METRICS_NAMESPACE")
                .unwrap_or_else(|| super::emf::DEFAULT_NAMESPACE.to_string()),
            state_table: non_empty("DELIVERY_STATE_TABLE"),
            extra_ca_file: non_empty("EXTRA_CA_BUNDLE_FILE").map(std::path::PathBuf::from),
            allow_private_egress: non_empty("ALLOW_PRIVATE_EGRESS")
                .is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True")),
            concurrency,
            s3_force_path_style: non_empty("S3_FORCE_PATH_STYLE")
                .is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True"))
                || non_empty("AWS_ENDPOINT_URL").is_some()
                || non_empty("AWS_ENDPOINT_URL_S3").is_some(),
            sqs_url_base: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        })
    }
}

#[cfg(test)]
mod tests;
