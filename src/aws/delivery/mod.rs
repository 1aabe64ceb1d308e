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

mod attempt;
mod batch;
pub mod dlq;
mod message;
mod outcome;
mod ports;
mod received;
pub mod sender;
mod settings;
pub mod sqs;
pub mod state;

use std::time::Duration;

pub use crate::deliver::{rfc3339, AttemptRecord, TargetKey, MAX_HISTORY};
pub use batch::Delivery;
pub use message::{
    parse_body, request_body, typed_payload, BatchResponse, CallbackEvent, ItemFailure, SqsEvent,
    SqsMessage,
};
pub use outcome::{
    BatchResult, ClientMetrics, ConcurrencyCap, DeliveryOptions, Fate, RATE_PER_ENVIRONMENT,
};
pub use ports::{DeadLetter, DeliveryState, Gate, QueueFault, QueueInfo, QueueOps, Sender};
pub use settings::DeliveryLambdaSettings;

/// The longest visibility timeout SQS accepts (12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);
/// Wait before a message whose client configuration could not be read is tried again.
pub const CONFIG_FAULT_RETRY: Duration = Duration::from_secs(30);
/// Retrying stops this long before the queue's retention period would delete the message.
pub const RETENTION_MARGIN: Duration = Duration::from_secs(300);
/// An attempt must be able to finish this long before the Lambda's deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests;
