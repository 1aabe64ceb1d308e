//! API-destination dead letters: what EventBridge puts on a target's DLQ when it gives up on
//! an API destination (AWS documentation, "Using dead-letter queues"): the body is the
//! Callbacks-bus event, the message attributes say why (`RULE_ARN`, `TARGET_ARN`,
//! `ERROR_CODE`, `ERROR_MESSAGE`, `EXHAUSTED_RETRY_CONDITION`, `RETRY_ATTEMPTS`).
//!
//! `callbacks dlq list --sqs-queue-url` lists them with the other SQS dead letters
//! ([`crate::aws::delivery::dlq`]); [`replay`] puts them back on the Callbacks bus with
//! `PutEvents`, re-signed ([`super::resign`]), in batches of 10. Every entry's result is
//! checked: a dead letter is deleted only after its entry was accepted; a refused one is made
//! visible again and stays. The per-target rule routes the event back to that target alone.
//! A failure between an accepted entry and the deletion of its dead letter (or a crash) leaves
//! the dead letter to be replayed again later: a duplicate callback (the client de-duplicates
//! with `meta.idempotencyKey`), never a lost one.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::resign::{resign, BusEntry};
use super::{aws_err, AwsCallError};
use crate::aws::delivery::dlq::{self, SqsDlqEntry, SqsDlqError};
use crate::aws::handler::ConfigSource;

/// `PutEvents` takes at most this many entries.
pub const PUT_EVENTS_BATCH: usize = 10;

/// EventBridge's account of a failed target invocation (the DLQ message's attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBridgeFailure {
    pub rule_arn: Option<String>,
    pub target_arn: Option<String>,
    pub error_code: String,
    pub error_message: Option<String>,
    /// `MaximumRetryAttempts` or `MaximumEventAgeInSeconds` (absent for errors not retried).
    pub exhausted_retry_condition: Option<String>,
    pub retry_attempts: Option<u32>,
}

impl EventBridgeFailure {
    /// Reads the attributes through `attr`; `None` when the message has none of EventBridge's.
    pub fn from_attributes(attr: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let error_code = attr("ERROR_CODE");
        let rule_arn = attr("RULE_ARN");
        if error_code.is_none() && rule_arn.is_none() {
            return None;
        }
        Some(EventBridgeFailure {
            rule_arn,
            target_arn: attr("TARGET_ARN"),
            error_code: error_code.unwrap_or_else(|| "-".into()),
            error_message: attr("ERROR_MESSAGE"),
            exhausted_retry_condition: attr("EXHAUSTED_RETRY_CONDITION"),
            retry_attempts: attr("RETRY_ATTEMPTS").and_then(|n| n.trim().parse().ok()),
        })
    }

    /// The target EventBridge gave up on was an API destination (not a client queue).
    pub fn is_api_destination(&self) -> bool {
        self.target_arn
            .as_deref()
            .is_some_and(|a| a.contains(":api-destination/"))
    }

    /// The `reason` column.
    pub fn reason(&self) -> String {
        let message = self.error_message.as_deref().unwrap_or_default();
        if !self.is_api_destination() {
            return format!(
                "EventBridge could not deliver to the queue: {} {message}",
                self.error_code
            );
        }
        let mut reason = format!(
            "EventBridge gave up on the API destination: {} {message}",
            self.error_code
        );
        if let Some(condition) = &self.exhausted_retry_condition {
            reason.push_str(&format!(" (retries exhausted: {condition})"));
        }
        reason
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterReplayError {
    #[error(transparent)]
    Sqs(#[from] SqsDlqError),
    #[error(transparent)]
    Aws(#[from] AwsCallError),
    #[error("API-destination dead letters go back on the Callbacks Event Bus: pass --bus-name (or set CALLBACKS_EVENT_BUS_NAME) and CLIENT_CONFIG_BUCKET")]
    NoBus,
}

/// Where replayed API-destination dead letters go and how they are re-signed.
pub struct Bus<'a, C> {
    pub events: &'a aws_sdk_eventbridge::Client,
    pub name: &'a str,
    pub configs: &'a C,
}

/// A dead letter that stays on the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub sqs_message_id: String,
    pub reason: String,
}

/// What [`replay`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// API-destination dead letters chosen by the selection.
    pub matched: usize,
    /// Put on the bus and deleted from the DLQ.
    pub replayed: usize,
    /// Of those, re-signed with a key other than the one they were signed with.
    pub resigned_with_new_key: usize,
    /// Left on the DLQ, with the reason.
    pub refused: Vec<Refused>,
}

/// Puts the API-destination dead letters of `dlq_url` (one client's, or one by SQS message id)
/// back on the Callbacks bus, re-signed. Other dead letters are left for
/// [`dlq::replay`]. Without `bus`, finding any chosen entry is an error (nothing is changed).
pub async fn replay<C: ConfigSource>(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    client_id: Option<&str>,
    id: Option<&str>,
    bus: Option<&Bus<'_, C>>,
) -> Result<Outcome, DeadLetterReplayError> {
    let all = dlq::receive_all(sqs, dlq_url).await?;
    let (chosen, others): (Vec<&SqsDlqEntry>, Vec<&SqsDlqEntry>) = all.iter().partition(|e| {
        e.api_destination
            && client_id.is_none_or(|c| e.routing.client_id == c)
            && id.is_none_or(|i| e.id == i)
    });
    dlq::release(sqs, dlq_url, &others).await;
    let mut outcome = Outcome {
        matched: chosen.len(),
        ..Outcome::default()
    };
    if chosen.is_empty() {
        return Ok(outcome);
    }
    let Some(bus) = bus else {
        dlq::release(sqs, dlq_url, &chosen).await;
        return Err(DeadLetterReplayError::NoBus);
    };
    let mut ready: Vec<(&SqsDlqEntry, BusEntry)> = Vec::new();
    for e in &chosen {
        match resign(&e.body, bus.configs).await {
            Ok(entry) => ready.push((e, entry)),
            Err(err) => {
                tracing::warn!(sqs_message_id = %e.id, event_id = %e.routing.event_id, message_id = %e.routing.message_id, error = %err, "dead letter not replayed");
                dlq::release(sqs, dlq_url, &[e]).await;
                outcome.refused.push(Refused {
                    sqs_message_id: e.id.clone(),
                    reason: err.to_string(),
                });
            }
        }
    }
    for (n, batch) in ready.chunks(PUT_EVENTS_BATCH).enumerate() {
        let results = match put_batch(bus, batch).await {
            Ok(r) => r,
            Err(err) => {
                let rest: Vec<&SqsDlqEntry> = ready[n * PUT_EVENTS_BATCH..]
                    .iter()
                    .map(|(e, _)| *e)
                    .collect();
                dlq::release(sqs, dlq_url, &rest).await;
                return Err(err.into());
            }
        };
        for ((e, entry), result) in batch.iter().zip(results) {
            if let Err(reason) = result {
                tracing::warn!(sqs_message_id = %e.id, event_id = %entry.event_id, message_id = %entry.message_id, reason = %reason, "PutEvents refused the entry; the dead letter stays");
                dlq::release(sqs, dlq_url, &[e]).await;
                outcome.refused.push(Refused {
                    sqs_message_id: e.id.clone(),
                    reason,
                });
                continue;
            }
            tracing::info!(sqs_message_id = %e.id, event_id = %entry.event_id, message_id = %entry.message_id, signature_changed = entry.signature_changed, "put back on the Callbacks bus");
            sqs.delete_message()
                .queue_url(dlq_url)
                .receipt_handle(&e.receipt_handle)
                .send()
                .await
                .map_err(|err| aws_err("SQS", "DeleteMessage", err))?;
            outcome.replayed += 1;
            outcome.resigned_with_new_key += usize::from(entry.signature_changed);
        }
    }
    Ok(outcome)
}

/// One `PutEvents` call; per entry, accepted or the reason it was refused.
async fn put_batch<C>(
    bus: &Bus<'_, C>,
    batch: &[(&SqsDlqEntry, BusEntry)],
) -> Result<Vec<Result<(), String>>, AwsCallError> {
    let entries = batch
        .iter()
        .map(|(_, e)| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus.name)
                .source(&e.source)
                .detail_type(&e.detail_type)
                .detail(&e.detail)
                .build()
        })
        .collect();
    let out = bus
        .events
        .put_events()
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| aws_err("EventBridge", "PutEvents", e))?;
    Ok(entry_results(out.entries(), batch.len()))
}

/// Per request entry, accepted (an `EventId`, no error) or refused with the reason. The
/// result entries are in request order; a missing one counts as refused.
pub fn entry_results(
    results: &[aws_sdk_eventbridge::types::PutEventsResultEntry],
    sent: usize,
) -> Vec<Result<(), String>> {
    (0..sent)
        .map(|i| match results.get(i) {
            None => Err("PutEvents returned no result for the entry".into()),
            Some(r) => match (r.error_code(), r.event_id()) {
                (None, Some(_)) => Ok(()),
                (code, _) => Err(format!(
                    "PutEvents refused the entry: {} {}",
                    code.unwrap_or("(no event id)"),
                    r.error_message().unwrap_or_default()
                )),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use std::collections::HashMap;

    fn failure(pairs: &[(&str, &str)]) -> Option<EventBridgeFailure> {
        let m: HashMap<&str, &str> = pairs.iter().copied().collect();
        EventBridgeFailure::from_attributes(|k| m.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn eventbridge_attributes_name_the_error_and_the_retries() {
        assert_eq!(failure(&[("reason", "x")]), None);
        let f = failure(&[
            ("RULE_ARN", "arn:aws:events:eu-west-2:1:rule/bus/r"),
            (
                "TARGET_ARN",
                "arn:aws:events:eu-west-2:1:api-destination/d/abc",
            ),
            ("ERROR_CODE", "SDK_CLIENT_ERROR"),
            ("ERROR_MESSAGE", "endpoint returned 503"),
            ("EXHAUSTED_RETRY_CONDITION", "MaximumEventAgeInSeconds"),
            ("RETRY_ATTEMPTS", "185"),
        ])
        .expect("EventBridge's");
        assert!(f.is_api_destination());
        assert_eq!(f.retry_attempts, Some(185));
        assert_eq!(
            f.reason(),
            "EventBridge gave up on the API destination: SDK_CLIENT_ERROR endpoint returned 503 (retries exhausted: MaximumEventAgeInSeconds)"
        );
        let q = failure(&[
            ("ERROR_CODE", "NO_PERMISSIONS"),
            ("TARGET_ARN", "arn:aws:sqs:eu-west-2:1:q"),
        ])
        .expect("EventBridge's");
        assert!(!q.is_api_destination());
        assert!(q
            .reason()
            .starts_with("EventBridge could not deliver to the queue"));
    }

    #[test]
    fn only_entries_with_an_event_id_and_no_error_are_accepted() {
        let ok = PutEventsResultEntry::builder().event_id("e1").build();
        let refused = PutEventsResultEntry::builder()
            .error_code("InternalFailure")
            .error_message("try again")
            .build();
        let r = entry_results(&[ok, refused], 3);
        assert_eq!(r[0], Ok(()));
        assert_eq!(
            r[1],
            Err("PutEvents refused the entry: InternalFailure try again".into())
        );
        assert!(r[2].is_err(), "a missing result is not an acceptance");
    }
}
