//! The ports of the handler: the queue, the sender and the shared delivery state.

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::config::{CircuitSettings, DeliverySettings};
use crate::deliver::{Attempt, Request};

use super::{AttemptRecord, TargetKey};

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
