//! Builds the legacy callback payload (the public NHS Notify API contract) from a status event,
//! using the types generated from `schemas/callback-*.schema.json`.

use serde::Serialize;

use crate::event::{EventData, InboundEvent};
use crate::schema::types::{
    CallbackChannel, CallbackLinks, CallbackMeta, ChannelStatusAttributes, ChannelStatusCallback,
    ChannelStatusCallbackItem, ChannelStatusCallbackItemType, ChannelStatusData,
    MessageStatusAttributes, MessageStatusCallback, MessageStatusCallbackItem,
    MessageStatusCallbackItemType, MessageStatusData, OptionalText,
};
use crate::schema::{to_lower, PatternsProven};
use crate::sign::idempotency_key;

/// The default base of `links.message` (production NHS Notify API).
pub const DEFAULT_LINK_BASE: &str = "https://api.service.nhs.uk/comms";

/// A callback request body.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Payload {
    MessageStatus(MessageStatusCallback),
    ChannelStatus(ChannelStatusCallback),
}

/// Why a payload could not be built. Only reachable if the schemas disagree with each other.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build the callback payload: {field}: {reason}")]
pub struct TransformError {
    pub field: &'static str,
    pub reason: String,
}

fn err(field: &'static str) -> impl Fn(String) -> TransformError {
    move |reason| TransformError { field, reason }
}

fn conv<T>(field: &'static str, value: String) -> Result<T, TransformError>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    T::try_from(value).map_err(|e| TransformError {
        field,
        reason: e.to_string(),
    })
}

/// An optional text field appears only when present and non-empty.
fn optional(
    field: &'static str,
    value: &Option<String>,
) -> Result<Option<OptionalText>, TransformError> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => conv(field, v.to_string()).map(Some),
    }
}

fn links(base: &str, message_id: &str) -> Result<CallbackLinks, TransformError> {
    let base = base.trim_end_matches('/');
    Ok(CallbackLinks {
        message: conv("links.message", format!("{base}/v1/messages/{message_id}"))?,
    })
}

fn meta(event: &InboundEvent) -> Result<CallbackMeta, TransformError> {
    let key = idempotency_key(event.source(), event.id());
    // The key is our own lowercase hex of a SHA-256 digest, which always matches the schema's
    // pattern (pinned by `idempotency_keys_always_match_the_schema_pattern`): the generated
    // type need not match it again.
    let _proven = PatternsProven::new();
    Ok(CallbackMeta {
        idempotency_key: conv("meta.idempotencyKey", key)?,
    })
}

/// Builds the payload for an event. `link_base` is the API base URL (see [`DEFAULT_LINK_BASE`]).
pub fn payload(event: &InboundEvent, link_base: &str) -> Result<Payload, TransformError> {
    Ok(match &event.data {
        EventData::MessageStatus(d) => Payload::MessageStatus(MessageStatusCallback {
            data: vec![MessageStatusCallbackItem {
                type_: MessageStatusCallbackItemType::MessageStatus,
                attributes: message_attributes(d)?,
                links: links(link_base, &d.message_id)?,
                meta: meta(event)?,
            }],
        }),
        EventData::ChannelStatus(d) => Payload::ChannelStatus(ChannelStatusCallback {
            data: vec![ChannelStatusCallbackItem {
                type_: ChannelStatusCallbackItemType::ChannelStatus,
                attributes: channel_attributes(d)?,
                links: links(link_base, &d.message_id)?,
                meta: meta(event)?,
            }],
        }),
    })
}

fn message_attributes(d: &MessageStatusData) -> Result<MessageStatusAttributes, TransformError> {
    Ok(MessageStatusAttributes {
        message_id: d.message_id.clone(),
        message_reference: d.message_reference.clone(),
        message_status: to_lower(&d.message_status).map_err(err("messageStatus"))?,
        message_status_description: optional(
            "messageStatusDescription",
            &d.message_status_description,
        )?,
        message_failure_reason_code: optional(
            "messageFailureReasonCode",
            &d.message_failure_reason_code,
        )?,
        channels: d
            .channels
            .iter()
            .map(|c| {
                Ok(CallbackChannel {
                    type_: to_lower(&c.type_).map_err(err("channels[].type"))?,
                    channel_status: to_lower(&c.channel_status)
                        .map_err(err("channels[].channelStatus"))?,
                })
            })
            .collect::<Result<_, TransformError>>()?,
        timestamp: d.timestamp.clone(),
        routing_plan: d.routing_plan.clone(),
    })
}

fn channel_attributes(d: &ChannelStatusData) -> Result<ChannelStatusAttributes, TransformError> {
    Ok(ChannelStatusAttributes {
        message_id: d.message_id.clone(),
        message_reference: d.message_reference.clone(),
        cascade_type: d.cascade_type,
        cascade_order: d.cascade_order,
        channel: to_lower(&d.channel).map_err(err("channel"))?,
        channel_status: to_lower(&d.channel_status).map_err(err("channelStatus"))?,
        channel_status_description: optional(
            "channelStatusDescription",
            &d.channel_status_description,
        )?,
        channel_failure_reason_code: optional(
            "channelFailureReasonCode",
            &d.channel_failure_reason_code,
        )?,
        supplier_status: to_lower(&d.supplier_status).map_err(err("supplierStatus"))?,
        timestamp: d.timestamp.clone(),
        retry_count: d.retry_count,
    })
}

/// The exact request body bytes: compact JSON, fields in schema order.
pub fn body(payload: &Payload) -> Vec<u8> {
    body_text(payload).into_bytes()
}

/// [`body`] as text.
pub fn body_text(payload: &Payload) -> String {
    serde_json::to_string(payload).expect("generated payload types always serialize")
}

/// [`body`] as a JSON value that serializes as exactly these bytes (for an adapter that embeds the
/// body in a larger document, the transform-filter Lambda): `serde_json` writes it with
/// `to_string`, as [`body_text`] does, and does not read it back.
pub fn body_raw(payload: &Payload) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(payload).expect("generated payload types always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::types::CallbackMetaIdempotencyKey;

    /// The embeddable body is the text body, byte for byte, for both kinds of payload.
    #[test]
    fn body_raw_is_the_body_text() {
        for ty in [
            "uk.nhs.notify.message.status.PUBLISHED.v1",
            "uk.nhs.notify.channel.status.PUBLISHED.v1",
        ] {
            let data = if ty.contains("message") {
                serde_json::json!({"clientId": "c", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
                    "messageReference": "r \"q\" é", "messageStatus": "DELIVERED",
                    "channels": [{"type": "SMS", "channelStatus": "DELIVERED"}],
                    "timestamp": "2025-01-01T00:00:00Z",
                    "routingPlan": {"id": "", "name": "", "version": "", "createdDate": ""}})
            } else {
                serde_json::json!({"clientId": "c", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
                    "messageReference": "r", "channel": "SMS", "channelStatus": "DELIVERED",
                    "supplierStatus": "delivered", "cascadeType": "primary", "cascadeOrder": 1,
                    "timestamp": "2025-01-01T00:00:00Z", "retryCount": 0})
            };
            let event = crate::event::from_value(serde_json::json!({"specversion": "1.0",
                "id": "e", "source": "/s", "type": ty, "time": "2025-01-01T00:00:00Z", "data": data}))
            .expect("valid event");
            let p = payload(&event, DEFAULT_LINK_BASE).expect("payload");
            assert_eq!(body_raw(&p).get(), body_text(&p));
        }
    }

    /// `meta` skips the generated type's pattern check: every key our encoder makes passes it.
    #[test]
    fn idempotency_keys_always_match_the_schema_pattern() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000 {
            let key = idempotency_key(&format!("/src/{}", i % 7), &format!("id-{i}\u{e9}"));
            let checked = CallbackMetaIdempotencyKey::try_from(key.clone());
            assert!(checked.is_ok(), "{key}");
            seen.extend(key.bytes());
        }
        // Every hex digit occurs, and nothing else.
        assert_eq!(seen.len(), 16);
        assert!("0123456789ABCDEF"
            .repeat(4)
            .parse::<CallbackMetaIdempotencyKey>()
            .is_err());
    }
}
