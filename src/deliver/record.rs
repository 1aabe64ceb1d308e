//! The records every backend keeps the same way: a target's key, one attempt in a callback's
//! history, a dead letter as `callbacks dlq list --json` shows it (the SQLite store of
//! `callbacks serve`, an https-mode client DLQ and an API-destination DLQ on SQS), and the
//! one RFC 3339 format they use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Attempt, AttemptOutcome};

/// Attempt records kept per callback, the most recent ones (the count of attempts is exact).
pub const MAX_HISTORY: usize = 100;

/// A client target: the key of its queue, token bucket, circuit breaker and HTTP client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    pub client_id: String,
    pub target_id: String,
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// [`rfc3339`] of milliseconds since the Unix epoch (as the SQLite store keeps times).
pub fn rfc3339_ms(ms: i64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// One attempt in a callback's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "StoredAttempt")]
pub struct AttemptRecord {
    /// When the attempt started (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// `HTTP 503`, `timeout`, `connection error: ...` (never a header value or the URL).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_ms: u64,
}

/// What older releases stored: `callbacks serve` kept `error` (no answer) or `status`
/// instead of `outcome`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredAttempt {
    at: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    duration_ms: u64,
}

impl From<StoredAttempt> for AttemptRecord {
    fn from(s: StoredAttempt) -> Self {
        let outcome = s
            .outcome
            .or(s.error)
            .or_else(|| s.status.map(|st| format!("HTTP {st}")))
            .unwrap_or_else(|| "-".into());
        AttemptRecord {
            at: s.at,
            outcome,
            status: s.status,
            duration_ms: s.duration_ms,
        }
    }
}

impl AttemptRecord {
    pub fn of(attempt: &Attempt) -> Self {
        AttemptRecord {
            at: rfc3339(attempt.started),
            outcome: attempt.outcome.describe(),
            status: match attempt.outcome {
                AttemptOutcome::Status { status, .. } => Some(status),
                _ => None,
            },
            duration_ms: u64::try_from(attempt.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Appends `record`, keeping the last [`MAX_HISTORY`].
pub fn push_history(history: &mut Vec<AttemptRecord>, record: AttemptRecord) {
    history.push(record);
    trim_history(history);
}

/// Drops the oldest records beyond [`MAX_HISTORY`].
pub fn trim_history(history: &mut Vec<AttemptRecord>) {
    if history.len() > MAX_HISTORY {
        history.drain(..history.len() - MAX_HISTORY);
    }
}

/// The last attempt's outcome (`-` when none is known), for one-line listings.
pub fn last_outcome(history: &[AttemptRecord]) -> String {
    history
        .last()
        .map_or_else(|| "-".to_string(), |a| a.outcome.clone())
}

/// Where a callback goes and what it answers: the ids a queued callback and its dead letter
/// carry (with its body), never a URL, header or API key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingIds {
    pub client_id: String,
    pub target_id: String,
    pub event_id: String,
    pub message_id: String,
    pub traceparent: Option<String>,
    pub subscription_ids: Vec<String>,
}

/// One dead letter as `callbacks dlq list --json` shows it, the same for every backend. Never
/// holds a request header (the API key).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterRecord {
    /// What `dlq replay --id` (SQLite) or `--sqs-message-id` (SQS) selects.
    pub id: String,
    #[serde(flatten)]
    pub routing: RoutingIds,
    /// Attempts made (HTTP requests sent, or receives when that is all that is known).
    pub attempts: u32,
    pub first_attempt_at: Option<String>,
    pub last_outcome: String,
    /// When it was dead-lettered.
    pub dead_at: String,
    pub reason: String,
    /// The attempts, oldest first (the last [`MAX_HISTORY`]).
    pub history: Vec<AttemptRecord>,
    /// The queue it came from (SQS; `null` for the SQLite store, which has one queue).
    pub source_queue_url: Option<String>,
    /// The callback body as JSON (`null` if it is not JSON).
    pub payload: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_serve_records_read_as_one_outcome() {
        let h: Vec<AttemptRecord> = serde_json::from_str(
            r#"[{"at":"a","status":400,"durationMs":3},{"at":"b","error":"timeout","durationMs":5},
                {"at":"c","outcome":"HTTP 503","status":503,"durationMs":1}]"#,
        )
        .expect("history");
        let outcomes: Vec<&str> = h.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, ["HTTP 400", "timeout", "HTTP 503"]);
        assert_eq!(h[0].status, Some(400));
        assert_eq!(
            serde_json::to_value(&h[1]).expect("json"),
            serde_json::json!({"at": "b", "outcome": "timeout", "durationMs": 5})
        );
        assert_eq!(last_outcome(&h), "HTTP 503");
        assert_eq!(last_outcome(&[]), "-");
    }

    #[test]
    fn history_keeps_the_most_recent() {
        let mut h = Vec::new();
        for i in 0..MAX_HISTORY + 5 {
            push_history(
                &mut h,
                AttemptRecord {
                    at: i.to_string(),
                    outcome: "timeout".into(),
                    status: None,
                    duration_ms: 0,
                },
            );
        }
        assert_eq!(h.len(), MAX_HISTORY);
        assert_eq!(h[0].at, "5");
    }

    #[test]
    fn epoch_milliseconds_in_rfc3339() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
