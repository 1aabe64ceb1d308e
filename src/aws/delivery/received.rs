//! The SQS backend of the queue port ([`Received`]): one message of the batch. Ack leaves it
//! to the event source mapping to delete; retry-after changes its visibility (its attempt kept
//! in the [`DeliveryState`]); dead-letter sends it to the client's DLQ with its history, then
//! deletes it. The letter and the visibility change are here too, for the messages that end
//! before an attempt (malformed, no configuration, circuit open).

use std::time::{Duration, Instant};

use crate::aws::handler::ConfigSource;
use crate::deliver::{record, Received};

use super::batch::Delivery;
use super::{
    AttemptRecord, CallbackEvent, DeadLetter, DeliveryState, Fate, QueueInfo, QueueOps, Sender,
    SqsMessage, MAX_VISIBILITY,
};

/// One message being handled: the record, its queue, its event and when it was received.
pub(super) struct Msg<'a> {
    pub rec: &'a SqsMessage,
    pub queue: &'a QueueInfo,
    pub ev: &'a CallbackEvent,
    pub received: Instant,
    /// When the Lambda will be stopped.
    pub deadline: Option<Instant>,
    /// The queue's `maxReceiveCount` is reached: a message not delivered now is dead-lettered.
    pub last_receive: bool,
}

/// A message of the batch with its handler: the port [`crate::deliver::fate`] acts through.
pub(super) struct SqsReceived<'a, Q, S, C, D> {
    pub delivery: &'a Delivery<Q, S, C, D>,
    pub msg: Msg<'a>,
    /// Since `SentTimestamp` (the retry budget runs from there), read when it was received.
    pub age: Duration,
}

impl<Q: QueueOps, S: Sender, C: ConfigSource, D: DeliveryState> Received
    for SqsReceived<'_, Q, S, C, D>
{
    type Settled = Fate;

    /// The earlier receives are the earlier attempts.
    fn attempts(&self) -> u32 {
        self.msg.rec.receive_count().saturating_sub(1)
    }

    fn age(&self) -> Duration {
        self.age
    }

    fn last_receive(&self) -> bool {
        self.msg.last_receive
    }

    async fn ack(self, attempt: AttemptRecord) -> Fate {
        let (ev, rec) = (self.msg.ev, self.msg.rec);
        let receive_count = rec.receive_count();
        tracing::info!(event_id = %ev.event_id, message_id = %ev.message_id, sqs_message_id = %rec.message_id, status = attempt.status, attempts = receive_count, "delivered");
        if receive_count > 1 {
            self.delivery.state.forget(&rec.message_id).await;
        }
        Fate::Delivered {
            status: attempt.status.unwrap_or(200),
        }
    }

    async fn retry_after(self, wait: Duration, attempt: AttemptRecord) -> Fate {
        let (ev, rec) = (self.msg.ev, self.msg.rec);
        self.delivery
            .state
            .record_attempt(&rec.message_id, &attempt)
            .await;
        let after = self.delivery.back_off(&self.msg, wait).await;
        tracing::info!(event_id = %ev.event_id, message_id = %ev.message_id, sqs_message_id = %rec.message_id, outcome = %attempt.outcome, attempts = rec.receive_count(), retry_in_s = after.as_secs(), "retrying");
        Fate::Retried { after }
    }

    async fn dead_letter(self, reason: String, attempt: Option<AttemptRecord>) -> Fate {
        let made = attempt.into_iter().collect();
        self.delivery.give_up(&self.msg, reason, made).await
    }
}

impl<Q: QueueOps, S: Sender, C: ConfigSource, D: DeliveryState> Delivery<Q, S, C, D> {
    /// The letter of a message: its history so far (from the delivery state) plus
    /// `this_invocation`.
    pub(super) async fn letter(
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

    /// Sends `letter` to the queue's DLQ, then deletes the message.
    pub(super) async fn dead_letter(
        &self,
        queue: &QueueInfo,
        rec: &SqsMessage,
        letter: DeadLetter,
    ) -> Fate {
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
    pub(super) async fn back_off(&self, m: &Msg<'_>, wait: Duration) -> Duration {
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
    pub(super) async fn give_up(
        &self,
        m: &Msg<'_>,
        reason: String,
        made: Vec<AttemptRecord>,
    ) -> Fate {
        let letter = self.letter(m.rec, Some(m.ev), reason, made).await;
        self.dead_letter(m.queue, m.rec, letter).await
    }
}
