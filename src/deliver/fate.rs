//! The fate of one callback, the same for both delivery drivers (`callbacks serve`'s
//! per-target worker and the delivery Lambda's batch handler): [`send`] builds the request
//! from the configuration in force ([`Endpoint`]) and makes one attempt; [`settle`] records
//! the attempt, classifies it with the retry policy and acts on the decision through the
//! queue port ([`Received`]): ack, retry after the back-off, or dead-letter. [`expired`] is the
//! check before a send. Rate limits and circuit breakers stay with each driver (serve holds
//! them in its worker, the Lambda shares them between environments).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::{Attempt, AttemptRecord, DeadLetterReason, Decision, Endpoint, HttpSender, Request};
use super::{Received, RetryPolicy};

/// Makes one HTTP attempt. Never fails: every problem is an [`super::AttemptOutcome`].
pub trait Transport: Sync {
    fn send(&self, request: Request<'_>) -> impl Future<Output = Attempt> + Send;
}

impl Transport for HttpSender {
    fn send(&self, request: Request<'_>) -> impl Future<Output = Attempt> + Send {
        HttpSender::send(self, request)
    }
}

/// Sends `body` to `endpoint` with its API key and `signature` (the endpoint's signature of
/// exactly these bytes, [`Endpoint::signature`]).
pub async fn send<T: Transport>(
    transport: &T,
    endpoint: &Endpoint,
    body: &Bytes,
    signature: String,
) -> Attempt {
    let headers = endpoint.headers(signature);
    transport
        .send(Request {
            url: &endpoint.url,
            headers: &headers,
            body,
        })
        .await
}

/// Why a callback already tried must not be sent again: its retry budget ran out while it
/// waited (behind an open circuit or a rate limit, or on the queue).
pub fn expired<R: Received>(callback: &R, policy: &RetryPolicy) -> Option<DeadLetterReason> {
    let attempts = callback.attempts();
    (attempts > 0 && !policy.within_budget(callback.age()))
        .then_some(DeadLetterReason::BudgetExhausted { attempts })
}

/// Decides and acts on the fate of `callback` after `attempt`: delivered (ack), retried after
/// the policy's back-off (or the endpoint's `Retry-After`), or dead-lettered (a permanent
/// failure, the retry budget spent, or the queue's last receive).
pub async fn settle<R: Received>(
    callback: R,
    policy: &RetryPolicy,
    attempt: &Attempt,
) -> R::Settled {
    let record = AttemptRecord::of(attempt);
    let made = callback.attempts().saturating_add(1);
    let jitter = rand::random::<f64>();
    match policy.decide(&attempt.outcome, made, callback.age(), jitter) {
        Decision::Delivered => callback.ack(record).await,
        Decision::RetryAfter(_) if callback.last_receive() => {
            let reason = format!(
                "the queue's maxReceiveCount ({made}) is reached; last outcome {}",
                record.outcome
            );
            callback.dead_letter(reason, Some(record)).await
        }
        Decision::RetryAfter(wait) => callback.retry_after(wait, record).await,
        Decision::DeadLetter(reason) => {
            callback.dead_letter(reason.to_string(), Some(record)).await
        }
    }
}

/// The age of something queued at `queued_ms` (milliseconds since the Unix epoch) at `now_ms`.
pub fn age_ms(queued_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_ms.saturating_sub(queued_ms)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::deliver::{AttemptOutcome, Backoff};

    /// A queue that says what it was asked to do.
    struct Probe {
        attempts: u32,
        age: Duration,
        last_receive: bool,
    }

    #[derive(Debug, PartialEq)]
    enum Asked {
        Ack(Option<u16>),
        Retry(Duration, String),
        DeadLetter(String, Option<String>),
    }

    impl Received for Probe {
        type Settled = Asked;
        fn attempts(&self) -> u32 {
            self.attempts
        }
        fn age(&self) -> Duration {
            self.age
        }
        fn last_receive(&self) -> bool {
            self.last_receive
        }
        async fn ack(self, attempt: AttemptRecord) -> Asked {
            Asked::Ack(attempt.status)
        }
        async fn retry_after(self, wait: Duration, attempt: AttemptRecord) -> Asked {
            Asked::Retry(wait, attempt.outcome)
        }
        async fn dead_letter(self, reason: String, attempt: Option<AttemptRecord>) -> Asked {
            Asked::DeadLetter(reason, attempt.map(|a| a.outcome))
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(1),
            },
            budget: Duration::from_secs(60),
        }
    }

    fn attempt(status: u16) -> Attempt {
        Attempt {
            outcome: AttemptOutcome::Status {
                status,
                retry_after: None,
            },
            started: SystemTime::now(),
            duration: Duration::from_millis(3),
        }
    }

    fn probe(attempts: u32, age_s: u64, last_receive: bool) -> Probe {
        Probe {
            attempts,
            age: Duration::from_secs(age_s),
            last_receive,
        }
    }

    #[tokio::test]
    async fn each_decision_goes_through_its_port_method() {
        let p = policy();
        assert_eq!(
            settle(probe(0, 0, false), &p, &attempt(204)).await,
            Asked::Ack(Some(204))
        );
        let retried = settle(probe(0, 0, false), &p, &attempt(503)).await;
        assert!(
            matches!(&retried, Asked::Retry(wait, outcome)
                if (Duration::from_millis(500)..=Duration::from_secs(1)).contains(wait) && outcome == "HTTP 503"),
            "{retried:?}"
        );
        assert_eq!(
            settle(probe(0, 0, false), &p, &attempt(400)).await,
            Asked::DeadLetter(
                DeadLetterReason::Permanent("HTTP 400".into()).to_string(),
                Some("HTTP 400".into())
            )
        );
    }

    #[tokio::test]
    async fn a_retry_on_the_last_receive_is_a_dead_letter_with_the_attempt() {
        let asked = settle(probe(2, 0, true), &policy(), &attempt(503)).await;
        assert_eq!(
            asked,
            Asked::DeadLetter(
                "the queue's maxReceiveCount (3) is reached; last outcome HTTP 503".into(),
                Some("HTTP 503".into())
            )
        );
        // Delivered on the last receive is still delivered.
        let asked = settle(probe(2, 0, true), &policy(), &attempt(200)).await;
        assert_eq!(asked, Asked::Ack(Some(200)));
    }

    #[test]
    fn only_a_callback_already_tried_expires() {
        let p = policy();
        assert_eq!(expired(&probe(0, 120, false), &p), None);
        assert_eq!(expired(&probe(3, 30, false), &p), None);
        assert_eq!(
            expired(&probe(3, 120, false), &p),
            Some(DeadLetterReason::BudgetExhausted { attempts: 3 })
        );
    }
}
