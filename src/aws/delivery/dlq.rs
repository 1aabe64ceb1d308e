//! `callbacks dlq list|replay --sqs-queue-url`: a client's https-mode DLQ on SQS.
//!
//! SQS cannot be read without receiving: listing receives every message with a short visibility
//! timeout and then makes each one visible again at once. Replay sends the original body back
//! to the client's queue (a new message: attempts and retry budget start again, as with
//! `callbacks serve`) and only then deletes the dead letter, so a crash in between duplicates
//! and never loses. Entries put there by SQS itself (`maxReceiveCount`) or by the Callbacks-bus
//! rule (EventBridge could not reach the queue) have no history attributes; they are listed and
//! replayed all the same. The output never includes an API key: none is ever on the queues.

use std::collections::{HashMap, HashSet};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde_json::Value;

use super::sqs::attr;
use super::{parse_body, AttemptRecord};
use crate::aws::replay::dead_letters::EventBridgeFailure;
use crate::deliver::record::{last_outcome, rfc3339_ms, DeadLetterRecord, RoutingIds};

/// How long listed messages stay invisible while the listing runs.
const PEEK_VISIBILITY_SECONDS: i32 = 60;
/// Receive calls at most (10 messages each).
const MAX_RECEIVES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SqsDlqError {
    #[error("SQS {call} failed: {reason}")]
    Sqs { call: &'static str, reason: String },
    #[error("no dead letter matched")]
    NothingMatched,
    #[error("cannot tell which queue to replay to: pass --to-queue-url")]
    NoReplayTarget,
}

fn sqs_err(call: &'static str, e: impl std::error::Error + 'static) -> SqsDlqError {
    SqsDlqError::Sqs {
        call,
        reason: DisplayErrorContext(e).to_string(),
    }
}

/// One dead letter: its [`DeadLetterRecord`] (what `dlq list` shows) and what a replay needs.
#[derive(Debug, Clone)]
pub struct SqsDlqEntry {
    /// `id` is the SQS message id (what `--sqs-message-id` selects).
    pub record: DeadLetterRecord,
    pub(crate) body: String,
    pub(crate) receipt_handle: String,
    /// EventBridge gave up on an API destination: the entry goes back on the Callbacks bus
    /// (`aws::replay::dead_letters`), not to a client queue.
    pub api_destination: bool,
}

impl std::ops::Deref for SqsDlqEntry {
    type Target = DeadLetterRecord;
    fn deref(&self) -> &DeadLetterRecord {
        &self.record
    }
}

fn attr_str(m: &Message, name: &str) -> Option<String> {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .map(str::to_owned)
}

/// Reads one DLQ message (its body, message attributes and system attributes).
pub fn entry(m: &Message) -> SqsDlqEntry {
    let body = m.body().unwrap_or_default().to_string();
    let parsed = parse_body(&body).ok();
    let field = |attr_name: &str, f: fn(&super::CallbackEvent) -> &str| {
        attr_str(m, attr_name)
            .or_else(|| parsed.as_ref().map(|e| f(e).to_string()))
            .unwrap_or_default()
    };
    let history: Vec<AttemptRecord> = attr_str(m, attr::ATTEMPT_HISTORY)
        .and_then(|h| serde_json::from_str(&h).ok())
        .unwrap_or_default();
    let system = m.attributes();
    let sys = |name: MessageSystemAttributeName| system.and_then(|a| a.get(&name)).cloned();
    // A Callbacks-bus rule's DLQ: EventBridge's own attributes.
    let failure = EventBridgeFailure::from_attributes(|name| attr_str(m, name));
    let reason = attr_str(m, attr::REASON)
        .or_else(|| failure.as_ref().map(EventBridgeFailure::reason))
        .unwrap_or_else(|| "moved by SQS (maxReceiveCount reached)".to_string());
    let record = DeadLetterRecord {
        id: m.message_id().unwrap_or_default().to_string(),
        routing: RoutingIds {
            client_id: field(attr::CLIENT_ID, |e| &e.client_id),
            target_id: field(attr::TARGET_ID, |e| &e.target_id),
            message_id: field(attr::MESSAGE_ID, |e| &e.message_id),
            event_id: field(attr::EVENT_ID, |e| &e.event_id),
            traceparent: parsed.as_ref().and_then(|e| e.traceparent.clone()),
            subscription_ids: parsed
                .as_ref()
                .map(|e| e.subscription_ids.clone())
                .unwrap_or_default(),
        },
        attempts: attr_str(m, attr::ATTEMPTS)
            .and_then(|a| a.parse().ok())
            .or_else(|| failure.as_ref().and_then(|f| f.retry_attempts))
            .or_else(|| {
                sys(MessageSystemAttributeName::ApproximateReceiveCount)
                    .and_then(|c| c.parse::<u32>().ok())
                    .map(|c| c.saturating_sub(1))
            })
            .unwrap_or(0),
        last_outcome: attr_str(m, attr::LAST_OUTCOME)
            .or_else(|| failure.as_ref().map(|f| f.error_code.clone()))
            .unwrap_or_else(|| last_outcome(&history)),
        dead_at: sys(MessageSystemAttributeName::SentTimestamp)
            .and_then(|t| t.parse::<i64>().ok())
            .map(rfc3339_ms)
            .unwrap_or_default(),
        reason,
        first_attempt_at: attr_str(m, attr::FIRST_ATTEMPT_AT)
            .or_else(|| history.first().map(|a| a.at.clone())),
        history,
        source_queue_url: attr_str(m, attr::SOURCE_QUEUE_URL),
        payload: parsed.map(|e| e.payload).unwrap_or(Value::Null),
    };
    SqsDlqEntry {
        record,
        body,
        receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
        api_destination: failure.is_some_and(|f| f.is_api_destination()),
    }
}

/// Receives every message on the DLQ (each stays invisible for a minute).
pub(crate) async fn receive_all(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
) -> Result<Vec<SqsDlqEntry>, SqsDlqError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for _ in 0..MAX_RECEIVES {
        let got = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(PEEK_VISIBILITY_SECONDS)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| sqs_err("ReceiveMessage", e))?;
        let msgs = got.messages();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            let e = entry(m);
            if seen.insert(e.id.clone()) {
                out.push(e);
            }
        }
    }
    out.sort_by(|a, b| a.dead_at.cmp(&b.dead_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// Makes received messages visible again.
pub(crate) async fn release(sqs: &aws_sdk_sqs::Client, dlq_url: &str, entries: &[&SqsDlqEntry]) {
    for e in entries {
        let r = sqs
            .change_message_visibility()
            .queue_url(dlq_url)
            .receipt_handle(&e.receipt_handle)
            .visibility_timeout(0)
            .send()
            .await;
        if let Err(err) = r {
            tracing::warn!(sqs_message_id = %e.id, error = %DisplayErrorContext(err), "dead letter stays invisible until its visibility timeout ends");
        }
    }
}

/// The dead letters on the DLQ (one client's, when given), oldest first.
pub async fn list(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    client_id: Option<&str>,
) -> Result<Vec<SqsDlqEntry>, SqsDlqError> {
    let all = receive_all(sqs, dlq_url).await?;
    release(sqs, dlq_url, &all.iter().collect::<Vec<_>>()).await;
    Ok(all
        .into_iter()
        .filter(|e| client_id.is_none_or(|c| e.routing.client_id == c))
        .collect())
}

/// The queue a DLQ's entries go back to: `to`, else the entry's `sourceQueueUrl`, else the DLQ
/// URL without its `-dlq` suffix (the Terraform naming: `<name>-https` / `<name>-https-dlq`).
fn replay_target(entry: &SqsDlqEntry, dlq_url: &str, to: Option<&str>) -> Option<String> {
    to.map(str::to_owned)
        .or_else(|| entry.source_queue_url.clone())
        .or_else(|| dlq_url.strip_suffix("-dlq").map(str::to_owned))
}

/// Puts dead letters back on their queue (all, one client's, or one by SQS message id).
/// Returns how many. API-destination dead letters are left alone: they go back on the
/// Callbacks bus ([`crate::aws::replay::dead_letters::replay`]).
pub async fn replay(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    client_id: Option<&str>,
    id: Option<&str>,
    to: Option<&str>,
) -> Result<usize, SqsDlqError> {
    let all = receive_all(sqs, dlq_url).await?;
    let (chosen, others): (Vec<&SqsDlqEntry>, Vec<&SqsDlqEntry>) = all.iter().partition(|e| {
        !e.api_destination
            && client_id.is_none_or(|c| e.routing.client_id == c)
            && id.is_none_or(|i| e.id == i)
    });
    release(sqs, dlq_url, &others).await;
    let mut targets: HashMap<&str, String> = HashMap::new();
    for e in &chosen {
        match replay_target(e, dlq_url, to) {
            Some(t) => {
                targets.insert(e.id.as_str(), t);
            }
            None => {
                release(sqs, dlq_url, &chosen).await;
                return Err(SqsDlqError::NoReplayTarget);
            }
        }
    }
    let mut n = 0;
    for (i, e) in chosen.iter().enumerate() {
        let target = targets.get(e.id.as_str()).cloned().unwrap_or_default();
        let sent = sqs
            .send_message()
            .queue_url(&target)
            .message_body(&e.body)
            .send()
            .await;
        if let Err(err) = sent {
            release(sqs, dlq_url, &chosen[i..]).await;
            return Err(sqs_err("SendMessage", err));
        }
        tracing::info!(event_id = %e.routing.event_id, message_id = %e.routing.message_id, sqs_message_id = %e.id, "replayed");
        sqs.delete_message()
            .queue_url(dlq_url)
            .receipt_handle(&e.receipt_handle)
            .send()
            .await
            .map_err(|err| sqs_err("DeleteMessage", err))?;
        n += 1;
    }
    if n == 0 && id.is_some() {
        return Err(SqsDlqError::NothingMatched);
    }
    Ok(n)
}
