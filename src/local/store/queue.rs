//! The SQLite backend of the queue port ([`Received`]): a callback a worker loaded from the
//! store (`Store::load`). Ack deletes its row, retry-after reschedules it with its history,
//! dead-letter moves it to the `dlq` table; each write is committed by the store's writer.

use std::time::Duration;

use crate::deliver::fate::age_ms;
use crate::deliver::{record, AttemptRecord, Received};

use super::{now_ms, QueuedCallback, Store};

/// What became of a callback in the store.
pub enum Settled {
    /// Delivered after `age` in the queue.
    Delivered {
        age: Duration,
    },
    /// Rescheduled: due again at `job.due_at_ms` (the worker keeps it in its window).
    Retried(QueuedCallback),
    DeadLettered,
}

/// One queued callback of `store`.
pub struct Queued<'s> {
    pub store: &'s Store,
    pub job: QueuedCallback,
}

impl Queued<'_> {
    fn record(&mut self, attempt: AttemptRecord) {
        self.job.attempts += 1;
        record::push_history(&mut self.job.history, attempt);
    }
}

impl Received for Queued<'_> {
    type Settled = Settled;

    fn attempts(&self) -> u32 {
        self.job.attempts
    }

    fn age(&self) -> Duration {
        age_ms(self.job.created_at_ms, now_ms())
    }

    async fn ack(mut self, attempt: AttemptRecord) -> Settled {
        let status = attempt.status;
        self.record(attempt);
        let job = &self.job;
        tracing::info!(client_id = %job.client_id, target_id = %job.target_id, event_id = %job.event_id,
            message_id = %job.message_id, attempts = job.attempts, status = ?status, "callback delivered");
        self.store.delivered(job.id).await;
        Settled::Delivered { age: self.age() }
    }

    async fn retry_after(mut self, wait: Duration, attempt: AttemptRecord) -> Settled {
        let outcome = attempt.outcome.clone();
        self.record(attempt);
        let job = &mut self.job;
        tracing::info!(client_id = %job.client_id, target_id = %job.target_id, event_id = %job.event_id,
            message_id = %job.message_id, attempts = job.attempts, outcome = %outcome,
            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "callback attempt failed; will retry");
        let due = now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        job.due_at_ms = due;
        self.store
            .reschedule(job.id, due, job.attempts, &job.history)
            .await;
        Settled::Retried(self.job)
    }

    async fn dead_letter(mut self, reason: String, attempt: Option<AttemptRecord>) -> Settled {
        if let Some(attempt) = attempt {
            self.record(attempt);
        }
        let job = &self.job;
        tracing::warn!(client_id = %job.client_id, target_id = %job.target_id, event_id = %job.event_id,
            message_id = %job.message_id, attempts = job.attempts, reason = %reason, "callback dead-lettered");
        self.store
            .dead_letter(job.id, job.attempts, &job.history, reason)
            .await;
        Settled::DeadLettered
    }
}
