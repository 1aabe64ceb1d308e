//! The Lambda's input and output: the SQS batch, the partial batch response, and the
//! Callbacks-bus event each message carries (with the exact request body made from it).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::types::{ChannelStatusCallback, MessageStatusCallback};
use crate::transform::{self, Payload};

/// The event an SQS event source mapping invokes the Lambda with.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsMessage>,
}

/// One SQS message of the batch. Missing fields are empty (a malformed record is dead-lettered
/// or, without a receipt handle, reported as failed: never dropped).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    #[serde(default)]
    pub message_id: String,
    #[serde(default)]
    pub receipt_handle: String,
    #[serde(default)]
    pub body: String,
    /// SQS system attributes (`ApproximateReceiveCount`, `SentTimestamp`, ...), as strings.
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    /// The queue's ARN.
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: String,
}

fn epoch_ms(v: &str) -> Option<SystemTime> {
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
}

impl SqsMessage {
    /// `ApproximateReceiveCount` (at least 1): the attempts made, this one included.
    pub fn receive_count(&self) -> u32 {
        self.attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(1)
            .max(1)
    }

    /// When the callback was queued: `SentTimestamp`, else `ApproximateFirstReceiveTimestamp`.
    /// The retry budget counts from here.
    pub fn queued_at(&self) -> Option<SystemTime> {
        self.attributes
            .get("SentTimestamp")
            .and_then(|v| epoch_ms(v))
            .or_else(|| {
                self.attributes
                    .get("ApproximateFirstReceiveTimestamp")
                    .and_then(|v| epoch_ms(v))
            })
    }
}

/// The partial batch response (`ReportBatchItemFailures`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// The Callbacks-bus event `detail` (docs/CONTRACTS.md): one transform-filter output element.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackEvent {
    pub client_id: String,
    pub target_id: String,
    #[serde(default)]
    pub subscription_ids: Vec<String>,
    pub signature: String,
    pub payload: Value,
    pub event_id: String,
    pub message_id: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// Reads a queue message body: an EventBridge envelope (the Callbacks-bus rule's target input)
/// whose `detail` is a [`CallbackEvent`], or the detail itself.
pub fn parse_body(body: &str) -> Result<CallbackEvent, String> {
    let mut v: Value =
        serde_json::from_str(body).map_err(|e| format!("the message body is not JSON: {e}"))?;
    let detail = if v.get("detail-type").is_some() {
        v.get_mut("detail").map(Value::take).unwrap_or(Value::Null)
    } else {
        v
    };
    serde_json::from_value(detail)
        .map_err(|e| format!("the message is not a Callbacks-bus event: {e}"))
}

/// The exact request body for a payload: parsed into the generated payload types and written
/// with [`transform::body`], the serializer whose output the transform-filter Lambda signed
/// (so, for an unchanged payload, these are the signed bytes).
pub fn request_body(payload: Value) -> Result<Vec<u8>, String> {
    typed_payload(payload).map(|p| transform::body(&p))
}

/// `detail.payload` read into the generated payload types (whatever key order or escaping
/// EventBridge gave it).
pub fn typed_payload(payload: Value) -> Result<Payload, String> {
    let channel = payload.pointer("/data/0/type").and_then(Value::as_str) == Some("ChannelStatus");
    let typed = if channel {
        serde_json::from_value::<ChannelStatusCallback>(payload).map(Payload::ChannelStatus)
    } else {
        serde_json::from_value::<MessageStatusCallback>(payload).map(Payload::MessageStatus)
    };
    typed.map_err(|e| format!("detail.payload is not a callback body: {e}"))
}
