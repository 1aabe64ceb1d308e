//! The queue port: one callback received from a queue, held until its fate is settled.
//!
//! Both delivery drivers act on a callback through this one trait, and [`super::fate`] decides
//! which method is called. The backends sit side by side, each beside its driver:
//! - SQLite (`callbacks serve`, `local::store::queue`): the worker loads rows with `Store::load`;
//!   ack deletes the row, retry-after reschedules it with its history, dead-letter moves it to
//!   the `dlq` table;
//! - SQS (the delivery Lambda, `aws::delivery::received`): the event source mapping receives
//!   the batch; ack lets it delete the message, retry-after changes its visibility (history kept
//!   in the delivery state), dead-letter sends it to the client's DLQ and deletes it.
//!
//! Receiving is not part of the port: serve reads its window of one target's queue, while the
//! Lambda is handed its batch by the event source mapping.

use std::future::Future;
use std::time::Duration;

use super::AttemptRecord;

/// One received callback. Every action consumes it: a callback is settled once.
pub trait Received: Send + Sized {
    /// What the driver gets back once the callback's fate has been acted on.
    type Settled: Send;

    /// Attempts already made (before the one about to start).
    fn attempts(&self) -> u32;

    /// Time since the callback was queued: the retry budget runs from then.
    fn age(&self) -> Duration;

    /// Whether the queue will never hand this callback out again (SQS: the redrive policy's
    /// `maxReceiveCount` is reached), so a retry has to become a dead letter now.
    fn last_receive(&self) -> bool {
        false
    }

    /// Delivered: remove it from the queue.
    fn ack(self, attempt: AttemptRecord) -> impl Future<Output = Self::Settled> + Send;

    /// Not delivered yet: hand it out again after `wait`, keeping `attempt` in its history.
    fn retry_after(
        self,
        wait: Duration,
        attempt: AttemptRecord,
    ) -> impl Future<Output = Self::Settled> + Send;

    /// Never to be delivered: move it to the client's dead-letter queue with `reason` and its
    /// history, plus `attempt` when the decision followed one.
    fn dead_letter(
        self,
        reason: String,
        attempt: Option<AttemptRecord>,
    ) -> impl Future<Output = Self::Settled> + Send;
}
