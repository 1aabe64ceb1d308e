//! [`DeliveryState`] implementations.
//!
//! - [`LocalState`]: per execution environment. The circuit breaker is the engine's own
//!   [`CircuitBreaker`]; attempt histories are kept in memory (bounded), so a message retried in
//!   another execution environment reaches the DLQ with the attempts this one saw, and
//!   `attempts` from `ApproximateReceiveCount`.
//! - [`DynamoState`]: shared by every invocation through one DynamoDB table (`pk` string key,
//!   TTL attribute `expiresAt`). The circuit of a target is one item, changed only with a
//!   conditional write on its version (optimistic concurrency), with the same states as the
//!   engine's breaker; a half-open probe is a lease (`probeUntil`) that one invocation wins.
//!   An attempt history is one item per SQS message id, appended with `list_append`. Store
//!   errors fail open: requests are let through, histories lose detail, nothing is blocked.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::CircuitSettings;
use crate::deliver::{Admission, CircuitBreaker};

use super::{AttemptRecord, DeliveryState, Gate, TargetKey};

/// In-memory histories kept at most (oldest dropped first).
const MAX_LOCAL_HISTORIES: usize = 10_000;
/// How long a history item lives in DynamoDB (beyond the longest retry budget).
const HISTORY_TTL: Duration = Duration::from_secs(2 * 24 * 3600);
/// Extra time on a probe's lease beyond the request timeout.
const PROBE_LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Optimistic write attempts before giving up.
const CAS_ATTEMPTS: usize = 4;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Attempt histories by SQS message id, and their insertion order (for the bound).
type Histories = (
    HashMap<String, Vec<AttemptRecord>>,
    std::collections::VecDeque<String>,
);

/// Per-execution-environment state.
#[derive(Debug, Default)]
pub struct LocalState {
    circuits: Mutex<HashMap<TargetKey, CircuitBreaker>>,
    histories: Mutex<Histories>,
}

impl LocalState {
    pub fn new() -> Self {
        Self::default()
    }
}

impl DeliveryState for LocalState {
    async fn admit(
        &self,
        target: &TargetKey,
        circuit: &CircuitSettings,
        _request_timeout: Duration,
        _now: SystemTime,
    ) -> Gate {
        let now = Instant::now();
        let mut circuits = lock(&self.circuits);
        let breaker = circuits
            .entry(target.clone())
            .or_insert_with(|| CircuitBreaker::new(circuit.failure_threshold, circuit.cooldown));
        match breaker.admit(now) {
            Admission::Allowed => Gate::Allowed,
            Admission::Probe => Gate::Probe,
            Admission::Denied { retry_at } => Gate::Denied(
                retry_at
                    .map(|t| t.saturating_duration_since(now))
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_secs(1)),
            ),
        }
    }

    async fn report(
        &self,
        target: &TargetKey,
        _circuit: &CircuitSettings,
        _gate: Gate,
        endpoint_failed: bool,
        _now: SystemTime,
    ) {
        if let Some(b) = lock(&self.circuits).get_mut(target) {
            if endpoint_failed {
                b.on_failure(Instant::now());
            } else {
                b.on_success();
            }
        }
    }

    async fn abandon_probe(&self, target: &TargetKey) {
        if let Some(b) = lock(&self.circuits).get_mut(target) {
            b.probe_abandoned();
        }
    }

    async fn record_attempt(&self, sqs_message_id: &str, attempt: &AttemptRecord) {
        let mut guard = lock(&self.histories);
        let (map, order) = &mut *guard;
        if !map.contains_key(sqs_message_id) {
            order.push_back(sqs_message_id.to_string());
            while order.len() > MAX_LOCAL_HISTORIES {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        map.entry(sqs_message_id.to_string())
            .or_default()
            .push(attempt.clone());
    }

    async fn history(&self, sqs_message_id: &str) -> Vec<AttemptRecord> {
        lock(&self.histories)
            .0
            .get(sqs_message_id)
            .cloned()
            .unwrap_or_default()
    }

    async fn forget(&self, sqs_message_id: &str) {
        let mut guard = lock(&self.histories);
        guard.0.remove(sqs_message_id);
        guard.1.retain(|id| id != sqs_message_id);
    }
}

// ---------------------------------------------------------------------------------------------
// Shared circuit (pure transitions; DynamoDB is only where the state is kept)
// ---------------------------------------------------------------------------------------------

/// The shared circuit of one target. Closed: `open_until_ms == 0`. Open: `now <
/// open_until_ms`. Half-open: `open_until_ms <= now`; then one probe at a time holds the lease
/// `probe_until_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedCircuit {
    pub failures: u32,
    pub open_until_ms: u64,
    pub probe_until_ms: u64,
}

impl SharedCircuit {
    /// The gate, and the state to write to take it (a probe's lease).
    pub fn admit(&self, now_ms: u64, lease: Duration) -> (Gate, Option<SharedCircuit>) {
        if self.open_until_ms == 0 {
            return (Gate::Allowed, None);
        }
        if now_ms < self.open_until_ms {
            return (
                Gate::Denied(Duration::from_millis(self.open_until_ms - now_ms)),
                None,
            );
        }
        if now_ms < self.probe_until_ms {
            return (
                Gate::Denied(Duration::from_millis(self.probe_until_ms - now_ms)),
                None,
            );
        }
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        (
            Gate::Probe,
            Some(SharedCircuit {
                probe_until_ms: now_ms.saturating_add(lease_ms),
                ..*self
            }),
        )
    }

    /// The state after an outcome, if it changes.
    pub fn after(
        &self,
        gate: Gate,
        failed: bool,
        circuit: &CircuitSettings,
        now_ms: u64,
    ) -> Option<SharedCircuit> {
        let cooldown_ms = u64::try_from(circuit.cooldown.as_millis()).unwrap_or(u64::MAX);
        let open = SharedCircuit {
            failures: 0,
            open_until_ms: now_ms.saturating_add(cooldown_ms).max(1),
            probe_until_ms: 0,
        };
        if !failed {
            return (*self != SharedCircuit::default()).then(SharedCircuit::default);
        }
        if self.open_until_ms != 0 {
            // A failed probe opens it again; late failures of requests sent before it opened
            // keep the current cool-down.
            return (gate == Gate::Probe).then_some(open);
        }
        let failures = self.failures.saturating_add(1);
        Some(if failures >= circuit.failure_threshold.max(1) {
            open
        } else {
            SharedCircuit { failures, ..*self }
        })
    }

    /// A probe that was not sent gives its lease back.
    pub fn without_probe(&self) -> Option<SharedCircuit> {
        (self.probe_until_ms != 0).then_some(SharedCircuit {
            probe_until_ms: 0,
            ..*self
        })
    }
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn num(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The DynamoDB-backed shared state.
#[derive(Debug, Clone)]
pub struct DynamoState {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoState {
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoState {
            db,
            table: table.into(),
        }
    }

    fn circuit_key(target: &TargetKey) -> String {
        format!("circuit#{}#{}", target.client_id, target.target_id)
    }

    fn history_key(sqs_message_id: &str) -> String {
        format!("attempts#{sqs_message_id}")
    }

    /// The circuit and its version (0: no item).
    async fn load(&self, pk: &str) -> Result<(SharedCircuit, u64), String> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("GetItem failed: {}", DisplayErrorContext(e)))?;
        Ok(match out.item() {
            None => (SharedCircuit::default(), 0),
            Some(item) => (
                SharedCircuit {
                    failures: u32::try_from(num(item, "failures")).unwrap_or(u32::MAX),
                    open_until_ms: num(item, "openUntil"),
                    probe_until_ms: num(item, "probeUntil"),
                },
                num(item, "ver"),
            ),
        })
    }

    /// Writes `next` if the item is still at `version`. `Ok(false)`: someone else wrote first.
    async fn store(&self, pk: &str, next: SharedCircuit, version: u64) -> Result<bool, String> {
        let mut put = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.to_string()))
            .item("failures", n(u64::from(next.failures)))
            .item("openUntil", n(next.open_until_ms))
            .item("probeUntil", n(next.probe_until_ms))
            .item("ver", n(version + 1));
        put = if version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("ver = :v")
                .expression_attribute_values(":v", n(version))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("PutItem failed: {}", DisplayErrorContext(e))),
        }
    }

    /// Applies `change` with optimistic concurrency; returns what `change` decided last.
    async fn update<T: Default>(
        &self,
        target: &TargetKey,
        mut change: impl FnMut(&SharedCircuit) -> (T, Option<SharedCircuit>),
    ) -> Result<T, String> {
        let pk = Self::circuit_key(target);
        for _ in 0..CAS_ATTEMPTS {
            let (current, version) = self.load(&pk).await?;
            let (answer, next) = change(&current);
            match next {
                None => return Ok(answer),
                Some(next) => {
                    if self.store(&pk, next, version).await? {
                        return Ok(answer);
                    }
                }
            }
        }
        Err("too much contention on the circuit item".into())
    }
}

impl DeliveryState for DynamoState {
    async fn admit(
        &self,
        target: &TargetKey,
        _circuit: &CircuitSettings,
        request_timeout: Duration,
        now: SystemTime,
    ) -> Gate {
        let lease = request_timeout + PROBE_LEASE_MARGIN;
        let now_ms = ms(now);
        let mut lost_race = false;
        let result = self
            .update(target, |c| {
                let (gate, next) = c.admit(now_ms, lease);
                lost_race |= next.is_some();
                (Some(gate), next)
            })
            .await;
        match result {
            Ok(Some(gate)) => gate,
            Ok(None) => Gate::Allowed,
            Err(e) if lost_race => {
                tracing::info!(client_id = %target.client_id, target_id = %target.target_id, error = %e, "probe taken by another invocation");
                Gate::Denied(Duration::from_secs(1))
            }
            Err(e) => {
                tracing::warn!(client_id = %target.client_id, target_id = %target.target_id, error = %e, "circuit state unavailable; letting the request through");
                Gate::Allowed
            }
        }
    }

    async fn report(
        &self,
        target: &TargetKey,
        circuit: &CircuitSettings,
        gate: Gate,
        endpoint_failed: bool,
        now: SystemTime,
    ) {
        let now_ms = ms(now);
        let result = self
            .update(target, |c| {
                ((), c.after(gate, endpoint_failed, circuit, now_ms))
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(client_id = %target.client_id, target_id = %target.target_id, error = %e, "circuit state not updated");
        }
    }

    async fn abandon_probe(&self, target: &TargetKey) {
        if let Err(e) = self.update(target, |c| ((), c.without_probe())).await {
            tracing::warn!(client_id = %target.client_id, target_id = %target.target_id, error = %e, "probe lease not released (it expires)");
        }
    }

    async fn record_attempt(&self, sqs_message_id: &str, attempt: &AttemptRecord) {
        let Ok(json) = serde_json::to_string(attempt) else {
            return;
        };
        let expires = ms(SystemTime::now() + HISTORY_TTL) / 1000;
        let result = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::history_key(sqs_message_id)))
            .update_expression(
                "SET attempts = list_append(if_not_exists(attempts, :empty), :a), expiresAt = :t",
            )
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":a", AttributeValue::L(vec![AttributeValue::S(json)]))
            .expression_attribute_values(":t", n(expires))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(sqs_message_id = %sqs_message_id, error = %DisplayErrorContext(e), "attempt history not recorded");
        }
    }

    async fn history(&self, sqs_message_id: &str) -> Vec<AttemptRecord> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::history_key(sqs_message_id)))
            .consistent_read(true)
            .send()
            .await;
        match out {
            Ok(o) => o
                .item()
                .and_then(|i| i.get("attempts"))
                .and_then(|v| v.as_l().ok())
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_s().ok())
                        .filter_map(|s| serde_json::from_str(s).ok())
                        .collect()
                })
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!(sqs_message_id = %sqs_message_id, error = %DisplayErrorContext(e), "attempt history unavailable");
                Vec::new()
            }
        }
    }

    async fn forget(&self, sqs_message_id: &str) {
        let result = self
            .db
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::history_key(sqs_message_id)))
            .send()
            .await;
        if let Err(e) = result {
            tracing::debug!(sqs_message_id = %sqs_message_id, error = %DisplayErrorContext(e), "attempt history not deleted (it expires)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CircuitSettings {
        CircuitSettings {
            failure_threshold: 2,
            cooldown: Duration::from_secs(30),
        }
    }

    #[test]
    fn shared_circuit_follows_the_engine_breaker() {
        let s = settings();
        let lease = Duration::from_secs(10);
        let c = SharedCircuit::default();
        assert_eq!(c.admit(0, lease), (Gate::Allowed, None));
        assert_eq!(
            c.after(Gate::Allowed, false, &s, 0),
            None,
            "no write on success"
        );
        let c = c.after(Gate::Allowed, true, &s, 1_000).expect("counted");
        assert_eq!(c.failures, 1);
        let c = c.after(Gate::Allowed, true, &s, 2_000).expect("opens");
        assert_eq!(c.open_until_ms, 32_000);
        assert_eq!(
            c.admit(12_000, lease),
            (Gate::Denied(Duration::from_secs(20)), None)
        );
        // A late failure keeps the cool-down.
        assert_eq!(c.after(Gate::Allowed, true, &s, 5_000), None);
        // Half-open: one probe holds the lease; others wait for it.
        let (gate, leased) = c.admit(32_000, lease);
        assert_eq!(gate, Gate::Probe);
        let leased = leased.expect("lease");
        assert_eq!(leased.probe_until_ms, 42_000);
        assert_eq!(
            leased.admit(33_000, lease).0,
            Gate::Denied(Duration::from_secs(9))
        );
        // An expired lease (a crashed probe) lets another probe go.
        assert_eq!(leased.admit(42_000, lease).0, Gate::Probe);
        // The probe fails: open again; it succeeds: closed.
        let reopened = leased
            .after(Gate::Probe, true, &s, 33_000)
            .expect("reopens");
        assert_eq!(reopened.open_until_ms, 63_000);
        assert_eq!(reopened.probe_until_ms, 0);
        assert_eq!(
            leased.after(Gate::Probe, false, &s, 33_000),
            Some(SharedCircuit::default())
        );
        assert_eq!(leased.without_probe().map(|c| c.probe_until_ms), Some(0));
    }

    #[tokio::test]
    async fn local_state_keeps_histories_and_a_breaker_per_target() {
        let st = LocalState::new();
        let key = TargetKey {
            client_id: "c".into(),
            target_id: "t".into(),
        };
        let s = settings();
        let now = SystemTime::now();
        assert_eq!(st.admit(&key, &s, Duration::ZERO, now).await, Gate::Allowed);
        st.report(&key, &s, Gate::Allowed, true, now).await;
        st.report(&key, &s, Gate::Allowed, true, now).await;
        assert!(matches!(
            st.admit(&key, &s, Duration::ZERO, now).await,
            Gate::Denied(d) if d > Duration::from_secs(28)
        ));
        let a = AttemptRecord {
            at: "t".into(),
            outcome: "HTTP 500".into(),
            status: Some(500),
            duration_ms: 1,
        };
        st.record_attempt("m1", &a).await;
        st.record_attempt("m1", &a).await;
        assert_eq!(st.history("m1").await.len(), 2);
        st.forget("m1").await;
        assert!(st.history("m1").await.is_empty());
    }
}
