//! The per-execution-environment delivery state: a breaker per target and bounded in-memory
//! attempt histories.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::config::CircuitSettings;
use crate::deliver::{Admission, CircuitBreaker};

use super::super::{AttemptRecord, DeliveryState, Gate, TargetKey};

/// In-memory histories kept at most (oldest dropped first).
const MAX_LOCAL_HISTORIES: usize = 10_000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Attempt histories by SQS message id, and their insertion order (for the bound).
type Histories = (HashMap<String, Vec<AttemptRecord>>, VecDeque<String>);

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
        gate: Gate,
        endpoint_failed: bool,
        _now: SystemTime,
    ) {
        if let Some(b) = lock(&self.circuits).get_mut(target) {
            if endpoint_failed {
                b.on_failure(Instant::now(), gate == Gate::Probe);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_state_keeps_histories_and_a_breaker_per_target() {
        let st = LocalState::new();
        let key = TargetKey {
            client_id: "c".into(),
            target_id: "t".into(),
        };
        let s = CircuitSettings {
            failure_threshold: 2,
            cooldown: Duration::from_secs(30),
        };
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
