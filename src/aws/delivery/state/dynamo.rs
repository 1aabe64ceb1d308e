//! The delivery state shared through DynamoDB: the circuit item of each target (stepped by
//! [`SharedCircuit`], written back conditionally) and the attempt history of each SQS message.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::CircuitSettings;
use crate::deliver::EpochMs;

use super::super::{AttemptRecord, DeliveryState, Gate, TargetKey};
use super::SharedCircuit;

/// How long a history item lives in DynamoDB (beyond the longest retry budget).
const HISTORY_TTL: Duration = Duration::from_secs(2 * 24 * 3600);
/// Extra time on a probe's lease beyond the request timeout.
const PROBE_LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Optimistic write attempts before giving up.
const CAS_ATTEMPTS: usize = 4;

/// Why the circuit item could not be read or changed (the caller fails open).
#[derive(Debug, thiserror::Error)]
enum CircuitStoreError {
    #[error("DynamoDB {op} failed: {reason}")]
    Call { op: &'static str, reason: String },
    #[error("too much contention on the circuit item")]
    Contention,
}

fn call_failed<E: std::error::Error>(op: &'static str, e: E) -> CircuitStoreError {
    CircuitStoreError::Call {
        op,
        reason: DisplayErrorContext(e).to_string(),
    }
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
    async fn load(&self, pk: &str) -> Result<(SharedCircuit, u64), CircuitStoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_failed("GetItem", e))?;
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
    async fn store(
        &self,
        pk: &str,
        next: SharedCircuit,
        version: u64,
    ) -> Result<bool, CircuitStoreError> {
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
            Err(e) => Err(call_failed("PutItem", e)),
        }
    }

    /// Applies `change` with optimistic concurrency; returns what `change` decided last.
    async fn update<T: Default>(
        &self,
        target: &TargetKey,
        mut change: impl FnMut(&SharedCircuit) -> (T, Option<SharedCircuit>),
    ) -> Result<T, CircuitStoreError> {
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
        Err(CircuitStoreError::Contention)
    }
}

impl DeliveryState for DynamoState {
    async fn admit(
        &self,
        target: &TargetKey,
        circuit: &CircuitSettings,
        request_timeout: Duration,
        now: SystemTime,
    ) -> Gate {
        let lease = request_timeout + PROBE_LEASE_MARGIN;
        let now_ms = EpochMs::of(now);
        let mut lost_race = false;
        let result = self
            .update(target, |c| {
                let (gate, next) = c.admit(circuit, now_ms, lease);
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
        let now_ms = EpochMs::of(now);
        let result = self
            .update(target, |c| {
                ((), c.after(circuit, gate, endpoint_failed, now_ms))
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
        let expires = EpochMs::of(SystemTime::now() + HISTORY_TTL).0 / 1000;
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
