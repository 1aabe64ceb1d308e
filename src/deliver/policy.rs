//! Retry policy: which attempt outcomes are retried, exponential backoff with jitter,
//! `Retry-After` parsing (including the contract's negative "stop retrying"), and the
//! per-target retry-duration budget. Pure logic: time and randomness are passed in.

use std::time::{Duration, SystemTime};

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The endpoint answered with this HTTP status.
    Status {
        status: u16,
        retry_after: Option<RetryAfter>,
    },
    /// No answer within the request timeout.
    Timeout,
    /// The connection could not be made or broke (DNS, refused, reset, TLS).
    Connection(String),
    /// The request could not be built or sent for a reason on our side (bad URL, bad header,
    /// unreadable mTLS identity). Retrying does not help.
    Invalid(String),
}

impl AttemptOutcome {
    /// A short description for attempt histories and logs (never carries secrets: transport
    /// errors are rendered without the URL by the sender).
    pub fn describe(&self) -> String {
        match self {
            AttemptOutcome::Status { status, .. } => format!("HTTP {status}"),
            AttemptOutcome::Timeout => "timeout".to_string(),
            AttemptOutcome::Connection(e) => format!("connection error: {e}"),
            AttemptOutcome::Invalid(e) => format!("request error: {e}"),
        }
    }
}

/// A parsed `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// Wait at least this long.
    Delay(Duration),
    /// A negative value: the client asks us to stop retrying this callback.
    Stop,
}

/// Parses a `Retry-After` value: delta-seconds (the contract allows a negative number, meaning
/// "stop retrying") or an HTTP date. Unparseable values are ignored (`None`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<RetryAfter> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return Some(if secs < 0 {
            RetryAfter::Stop
        } else {
            RetryAfter::Delay(Duration::from_secs(secs.unsigned_abs()))
        });
    }
    // Fractional seconds are not in RFC 9110, but are cheap to honour.
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() {
            return Some(if secs < 0.0 {
                RetryAfter::Stop
            } else {
                RetryAfter::Delay(Duration::from_secs_f64(secs.min(86_400.0)))
            });
        }
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(RetryAfter::Delay(
        when.duration_since(now).unwrap_or(Duration::ZERO),
    ))
}

/// How an outcome is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx: the callback is delivered.
    Delivered,
    /// Worth another attempt: connection errors, timeouts, 408, 429, 5xx.
    Retryable,
    /// Will not get better: other statuses, a request we cannot build, a negative Retry-After.
    Permanent,
}

/// Classifies one attempt outcome.
pub fn classify(outcome: &AttemptOutcome) -> Class {
    match outcome {
        AttemptOutcome::Status {
            status,
            retry_after,
        } => match status {
            200..=299 => Class::Delivered,
            _ if *retry_after == Some(RetryAfter::Stop) => Class::Permanent,
            408 | 429 | 500..=599 => Class::Retryable,
            _ => Class::Permanent,
        },
        AttemptOutcome::Timeout | AttemptOutcome::Connection(_) => Class::Retryable,
        AttemptOutcome::Invalid(_) => Class::Permanent,
    }
}

/// Whether an outcome counts as a failure of the endpoint for the circuit breaker: transport
/// errors, timeouts, 408, 429 and 5xx. A 4xx answer shows the endpoint is up.
pub fn is_endpoint_failure(outcome: &AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
        AttemptOutcome::Timeout | AttemptOutcome::Connection(_) => true,
        AttemptOutcome::Invalid(_) => false,
    }
}

/// Exponential backoff: attempt `n` (1-based: the wait after the first failure is attempt 1)
/// waits a random time in `[cap/2, cap]` with `cap = min(max, initial * 2^(n-1))` ("equal
/// jitter": spread out, never shorter than half the schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The upper bound of the wait after `failures` failed attempts (`failures >= 1`).
    pub fn cap(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(40);
        let factor = 1u64 << shift;
        let initial = u64::try_from(self.initial.as_millis()).unwrap_or(u64::MAX);
        let max = u64::try_from(self.max.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(initial.saturating_mul(factor).min(max).max(1))
    }

    /// The jittered wait after `failures` failed attempts; `unit` is a uniform random number
    /// in `[0, 1)` (injected so tests are deterministic).
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let cap = self.cap(failures);
        let half = cap / 2;
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        half + (cap - half).mul_f64(unit)
    }
}

/// What to do with a callback after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Try again after this long.
    RetryAfter(Duration),
    /// Give up: move to the dead-letter queue.
    DeadLetter(DeadLetterReason),
}

/// Why a callback was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// A status or error that retrying does not fix.
    Permanent(String),
    /// The client answered with a negative Retry-After.
    StopRequested,
    /// The retry-duration budget is spent.
    BudgetExhausted { attempts: u32 },
    /// The callback's target is no longer in its client's configuration.
    TargetGone,
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetterReason::Permanent(what) => write!(f, "permanent failure: {what}"),
            DeadLetterReason::StopRequested => {
                f.write_str("client asked to stop retrying (negative Retry-After)")
            }
            DeadLetterReason::BudgetExhausted { attempts } => {
                write!(f, "retry budget exhausted after {attempts} attempt(s)")
            }
            DeadLetterReason::TargetGone => f.write_str("target is no longer configured"),
        }
    }
}

/// The retry policy of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub backoff: Backoff,
    /// How long after the callback was first queued it may still be retried.
    pub budget: Duration,
}

impl RetryPolicy {
    /// Decides what follows an attempt. `failures` counts failed attempts including this one;
    /// `age` is the time since the callback was queued; `unit` is uniform random in `[0, 1)`.
    pub fn decide(
        &self,
        outcome: &AttemptOutcome,
        failures: u32,
        age: Duration,
        unit: f64,
    ) -> Decision {
        match classify(outcome) {
            Class::Delivered => Decision::Delivered,
            Class::Permanent => {
                if let AttemptOutcome::Status {
                    retry_after: Some(RetryAfter::Stop),
                    ..
                } = outcome
                {
                    Decision::DeadLetter(DeadLetterReason::StopRequested)
                } else {
                    Decision::DeadLetter(DeadLetterReason::Permanent(outcome.describe()))
                }
            }
            Class::Retryable => {
                let mut wait = self.backoff.delay(failures, unit);
                if let AttemptOutcome::Status {
                    retry_after: Some(RetryAfter::Delay(d)),
                    ..
                } = outcome
                {
                    wait = wait.max(*d);
                }
                if age.saturating_add(wait) > self.budget {
                    Decision::DeadLetter(DeadLetterReason::BudgetExhausted { attempts: failures })
                } else {
                    Decision::RetryAfter(wait)
                }
            }
        }
    }

    /// Whether a callback that has already been tried and is `age` old may be tried again.
    pub fn within_budget(&self, age: Duration) -> bool {
        age <= self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16) -> AttemptOutcome {
        AttemptOutcome::Status {
            status: s,
            retry_after: None,
        }
    }

    #[test]
    fn classification_follows_the_contract() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(classify(&status(s)), Class::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify(&status(s)), Class::Retryable, "{s}");
        }
        for s in [300, 301, 400, 401, 403, 404, 409, 410, 413, 422] {
            assert_eq!(classify(&status(s)), Class::Permanent, "{s}");
        }
        assert_eq!(classify(&AttemptOutcome::Timeout), Class::Retryable);
        assert_eq!(
            classify(&AttemptOutcome::Connection("refused".into())),
            Class::Retryable
        );
        assert_eq!(
            classify(&AttemptOutcome::Invalid("bad url".into())),
            Class::Permanent
        );
        let stop = AttemptOutcome::Status {
            status: 429,
            retry_after: Some(RetryAfter::Stop),
        };
        assert_eq!(classify(&stop), Class::Permanent);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("5", now),
            Some(RetryAfter::Delay(Duration::from_secs(5)))
        );
        assert_eq!(
            parse_retry_after(" 0 ", now),
            Some(RetryAfter::Delay(Duration::ZERO))
        );
        assert_eq!(parse_retry_after("-1", now), Some(RetryAfter::Stop));
        assert_eq!(parse_retry_after("-0.5", now), Some(RetryAfter::Stop));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(RetryAfter::Delay(Duration::from_millis(1500)))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(RetryAfter::Delay(Duration::from_secs(30)))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&earlier, now),
            Some(RetryAfter::Delay(Duration::ZERO))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        assert_eq!(b.cap(1), Duration::from_millis(100));
        assert_eq!(b.cap(2), Duration::from_millis(200));
        assert_eq!(b.cap(4), Duration::from_millis(800));
        assert_eq!(b.cap(5), Duration::from_millis(1000));
        assert_eq!(b.cap(500), Duration::from_millis(1000));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(200));
        for i in 0..100 {
            let d = b.delay(3, f64::from(i) / 100.0);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
        }
        assert_eq!(b.delay(1, f64::NAN), Duration::from_millis(50));
    }

    #[test]
    fn decisions() {
        let p = RetryPolicy {
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(10),
            },
            budget: Duration::from_secs(60),
        };
        assert_eq!(
            p.decide(&status(202), 1, Duration::ZERO, 0.5),
            Decision::Delivered
        );
        assert_eq!(
            p.decide(&status(500), 1, Duration::ZERO, 0.0),
            Decision::RetryAfter(Duration::from_millis(50))
        );
        assert!(matches!(
            p.decide(&status(400), 1, Duration::ZERO, 0.0),
            Decision::DeadLetter(DeadLetterReason::Permanent(ref s)) if s == "HTTP 400"
        ));
        // Retry-After longer than the backoff wins; shorter loses.
        let ra = |s| AttemptOutcome::Status {
            status: 429,
            retry_after: Some(RetryAfter::Delay(Duration::from_secs(s))),
        };
        assert_eq!(
            p.decide(&ra(7), 1, Duration::ZERO, 0.0),
            Decision::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            p.decide(&ra(0), 1, Duration::ZERO, 0.0),
            Decision::RetryAfter(Duration::from_millis(50))
        );
        let stop = AttemptOutcome::Status {
            status: 503,
            retry_after: Some(RetryAfter::Stop),
        };
        assert_eq!(
            p.decide(&stop, 1, Duration::ZERO, 0.0),
            Decision::DeadLetter(DeadLetterReason::StopRequested)
        );
        // Budget: a wait that would end past the budget dead-letters.
        assert_eq!(
            p.decide(
                &AttemptOutcome::Timeout,
                3,
                Duration::from_millis(59_900),
                0.0
            ),
            Decision::DeadLetter(DeadLetterReason::BudgetExhausted { attempts: 3 })
        );
        assert_eq!(
            p.decide(&ra(61), 1, Duration::ZERO, 0.0),
            Decision::DeadLetter(DeadLetterReason::BudgetExhausted { attempts: 1 })
        );
        let zero = RetryPolicy {
            budget: Duration::ZERO,
            ..p
        };
        assert!(matches!(
            zero.decide(&status(503), 1, Duration::ZERO, 0.0),
            Decision::DeadLetter(_)
        ));
    }

    #[test]
    fn circuit_failures() {
        assert!(is_endpoint_failure(&status(503)));
        assert!(is_endpoint_failure(&status(429)));
        assert!(is_endpoint_failure(&AttemptOutcome::Timeout));
        assert!(!is_endpoint_failure(&status(400)));
        assert!(!is_endpoint_failure(&status(200)));
    }
}
