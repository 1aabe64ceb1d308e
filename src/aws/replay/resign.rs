//! Re-signing a Callbacks-bus event before it is put on the bus again.
//!
//! The API destination sends `detail.payload` as the body and `detail.signature` as
//! `x-hmac-sha256-signature`, so a callback replayed with the signature made at the time fails
//! at the client when its API key was rotated since. The payload is read into the generated
//! payload types and written by the serializer the transform-filter Lambda signed with
//! ([`crate::transform::body`]); the signature is computed over exactly those bytes with the
//! key in force, and the new `detail` carries the payload written by the same serializer.

use serde::Deserialize;
use serde_json::Value;

use crate::aws::delivery::{typed_payload, CallbackEvent};
use crate::aws::handler::{CallbackDetail, ConfigFault, ConfigSource, SharedPayload};
use crate::sign;

/// Why a dead letter cannot be put back on the bus.
#[derive(Debug, thiserror::Error)]
pub enum ResignError {
    #[error("the dead letter is not a Callbacks-bus event: {0}")]
    NotAnEvent(String),
    #[error("client {client_id:?} has no configuration in force")]
    NoClient { client_id: String },
    #[error("target {target_id:?} is not in client {client_id:?}'s configuration")]
    NoTarget {
        client_id: String,
        target_id: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigFault),
}

/// One `PutEvents` entry, ready to send (the bus name is the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEntry {
    pub source: String,
    pub detail_type: String,
    /// The new `detail` (JSON text).
    pub detail: String,
    pub client_id: String,
    pub target_id: String,
    pub event_id: String,
    pub message_id: String,
    /// The signature differs from the one made at the time (the key was rotated).
    pub signature_changed: bool,
}

#[derive(Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Value,
}

/// `body` (an EventBridge event whose `detail` is a Callbacks-bus detail) with its signature
/// recomputed over the exact payload bytes with the API key `configs` has in force.
pub async fn resign(body: &str, configs: &impl ConfigSource) -> Result<BusEntry, ResignError> {
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| ResignError::NotAnEvent(e.to_string()))?;
    let ev: CallbackEvent = serde_json::from_value(envelope.detail)
        .map_err(|e| ResignError::NotAnEvent(format!("detail: {e}")))?;
    let client = configs
        .client(&ev.client_id)
        .await?
        .settings
        .ok_or_else(|| ResignError::NoClient {
            client_id: ev.client_id.clone(),
        })?;
    let target = client
        .targets
        .iter()
        .find(|t| t.target_id.as_str() == ev.target_id)
        .ok_or_else(|| ResignError::NoTarget {
            client_id: ev.client_id.clone(),
            target_id: ev.target_id.clone(),
        })?;
    let payload = typed_payload(ev.payload).map_err(ResignError::NotAnEvent)?;
    let payload = SharedPayload::of(&payload);
    let signature = sign::signature(
        payload.body().as_bytes(),
        &client.application_id,
        target.api_key.header_value.expose(),
    );
    let signature_changed = signature != ev.signature;
    let detail = CallbackDetail {
        client_id: ev.client_id,
        target_id: ev.target_id,
        subscription_ids: ev.subscription_ids,
        signature,
        payload,
        event_id: ev.event_id,
        message_id: ev.message_id,
        traceparent: ev.traceparent,
    };
    Ok(BusEntry {
        source: envelope.source,
        detail_type: envelope.detail_type,
        detail: serde_json::to_string(&detail)
            .map_err(|e| ResignError::NotAnEvent(e.to_string()))?,
        client_id: detail.client_id,
        target_id: detail.target_id,
        event_id: detail.event_id,
        message_id: detail.message_id,
        signature_changed,
    })
}
