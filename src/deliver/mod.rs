//! The delivery engine, independent of where callbacks are queued: retry classification and
//! backoff ([`policy`]), the per-target token bucket ([`rate`]), the circuit breaker
//! ([`circuit`]), the HTTP sender ([`http`]) and its egress guard ([`egress`]), the queue port
//! ([`queue`]) and the one function that decides a callback's fate after a send ([`fate`]).
//! The embedded server (`local`) and the AWS delivery Lambda both build on it.

pub mod circuit;
pub mod egress;
pub mod fate;
pub mod http;
pub mod listing;
pub mod policy;
pub mod queue;
pub mod rate;
pub mod record;
pub mod request;

use crate::config::DeliverySettings;

pub use circuit::{Admission, CircuitBreaker, CircuitState, EpochMs, Moment, Phase, Probe};
pub use egress::{Egress, EgressError};
pub use http::{Attempt, HttpSender, MtlsFiles, Request, SenderConfig, SenderError};
pub use policy::{
    AttemptOutcome, Backoff, Class, DeadLetterReason, Decision, RetryAfter, RetryPolicy,
};
pub use queue::Received;
pub use rate::TokenBucket;
pub use record::{
    rfc3339, rfc3339_ms, AttemptRecord, DeadLetterRecord, RoutingIds, TargetKey, MAX_HISTORY,
};
pub use request::Endpoint;

/// The retry policy of a target's delivery settings.
pub fn retry_policy(settings: &DeliverySettings) -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff {
            initial: settings.initial_backoff,
            max: settings.max_backoff.max(settings.initial_backoff),
        },
        budget: settings.max_retry_duration,
    }
}

/// The circuit breaker of a target, if it has one enabled.
pub fn circuit_breaker(settings: &DeliverySettings) -> Option<CircuitBreaker> {
    settings
        .circuit_breaker
        .as_ref()
        .map(|c| CircuitBreaker::new(c.failure_threshold, c.cooldown))
}

/// The request-start schedule of a target: `invocationRateLimit` per second.
pub fn rate_limiter(settings: &DeliverySettings, now: std::time::Instant) -> TokenBucket {
    TokenBucket::new(f64::from(settings.rate_limit_per_second.max(1)), now)
}

/// The HTTP client configuration of a target.
pub fn sender_config(settings: &DeliverySettings, egress: &Egress) -> SenderConfig {
    SenderConfig {
        timeout: settings.timeout,
        mtls: settings.mtls.clone(),
        egress: egress.clone(),
        max_idle_per_host: 64,
    }
}
