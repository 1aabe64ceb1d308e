//! The EventBridge Pipe enrichment handler: a batch of SQS records in, one Callbacks-bus event
//! `detail` per signed callback out.
//!
//! A plain async function over a [`ConfigSource`] (client configuration) and a [`RejectSink`]
//! (the rejected-events queue), so it runs without the Lambda runtime, S3 or SQS in tests.
//!
//! Failure policy: an event that fails parsing or validation goes to the reject sink with its
//! reason and the rest of the batch proceeds. Only infrastructure faults (configuration
//! unavailable with nothing cached, the reject sink failing) fail the invocation; the Pipe then
//! retries the whole batch and, in the end, the source queue's DLQ keeps it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::config::ClientSettings;
use crate::event::{self, EventError, InboundEvent, Rejected, MAX_EVENT_BYTES};
use crate::pipeline::{self, CoreOptions, ProcessError};
use crate::schema::{FieldError, Tree};
use crate::transform::{self, Payload};

use super::emf::InvocationMetrics;

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

/// One SQS record of the Pipe's enrichment batch. Only `messageId` and `body` are read; a
/// record of any other shape is kept as [`SqsRecord::malformed`] (rejected, never a batch
/// failure).
#[derive(Debug, Clone, Default)]
pub struct SqsRecord {
    /// The SQS message id.
    pub message_id: Option<String>,
    /// The body: normally a JSON string holding the event; a JSON object is accepted too.
    pub body: Value,
    /// Set when the record was not a JSON object.
    pub malformed: bool,
}

impl SqsRecord {
    /// A record with a text body (as SQS delivers it).
    pub fn new(message_id: impl Into<String>, body: impl Into<String>) -> Self {
        SqsRecord {
            message_id: Some(message_id.into()),
            body: Value::String(body.into()),
            malformed: false,
        }
    }
}

impl<'de> Deserialize<'de> for SqsRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = SqsRecord;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an SQS record")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SqsRecord, A::Error> {
                let mut rec = SqsRecord::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "messageId" => {
                            rec.message_id = map.next_value::<Option<String>>().ok().flatten()
                        }
                        "body" => rec.body = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(rec)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SqsRecord, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SqsRecord {
                    malformed: true,
                    ..Default::default()
                })
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SqsRecord, E> {
                Ok(SqsRecord {
                    malformed: true,
                    ..Default::default()
                })
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<SqsRecord, E> {
                Ok(SqsRecord {
                    malformed: true,
                    ..Default::default()
                })
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SqsRecord, E> {
                Ok(SqsRecord {
                    malformed: true,
                    ..Default::default()
                })
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SqsRecord, E> {
                Ok(SqsRecord {
                    malformed: true,
                    ..Default::default()
                })
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SqsRecord, E> {
                Ok(SqsRecord {
                    malformed: true,
                    ..Default::default()
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<SqsRecord, E> {
                Ok(SqsRecord {
                    malformed: true,
                    ..Default::default()
                })
            }
        }
        d.deserialize_any(RecordVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// The callback payload inside an output element. Serialized with the same serde
/// implementation as [`transform::body`], so the compact serialization of this subtree is
/// byte for byte the body the signature was computed over.
#[derive(Debug, Clone)]
pub struct SharedPayload(pub Arc<Payload>);

impl Serialize for SharedPayload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// One element of the handler's output: the `detail` of one event on the Callbacks bus
/// (docs/CONTRACTS.md, "Callbacks Event Bus event"). Field order is the contract's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackDetail {
    pub client_id: String,
    pub target_id: String,
    pub subscription_ids: Vec<String>,
    /// The `x-hmac-sha256-signature` header value (an API Destination reads it with
    /// `$.detail.signature`).
    pub signature: String,
    /// The request body (an API Destination sends it with `InputPath = $.detail.payload`).
    pub payload: SharedPayload,
    pub event_id: String,
    pub message_id: String,
    pub traceparent: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/// How a configuration lookup was served (for the cache metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Served from the cache without calling the store.
    Hit,
    /// The store was asked (first load, expired entry, or revalidation).
    Miss,
}

/// The configuration in force for one client.
#[derive(Debug, Clone)]
pub struct ConfigLookup {
    /// `None`: the client has no configuration (no subscriptions).
    pub settings: Option<Arc<ClientSettings>>,
    pub cache: CacheUse,
}

/// Configuration could not be obtained and nothing usable is cached: an infrastructure fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("configuration of client {client_id:?} is unavailable: {reason}")]
pub struct ConfigFault {
    pub client_id: String,
    pub reason: String,
}

/// Where client configurations come from (S3 in the Lambda; a map in tests).
pub trait ConfigSource: Send + Sync + 'static {
    fn client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<ConfigLookup, ConfigFault>> + Send;
}

/// An event that was not accepted, with the reason, as sent to the rejected-events queue.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRecord {
    pub reason: String,
    /// The violated fields (JSON pointers into the CloudEvent).
    pub fields: Vec<FieldError>,
    pub event_id: Option<String>,
    pub message_id: Option<String>,
    /// The SQS message id of the record in the Pipe's source queue.
    pub sqs_message_id: Option<String>,
    /// The record body as received (a client event carries no secrets).
    pub body: String,
    /// Set when `body` was cut to fit one SQS message.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
}

/// The rejected-events queue could not take the rejects: an infrastructure fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rejected-events queue: {0}")]
pub struct RejectFault(pub String);

/// Where rejected events go (SQS in the Lambda; a vector in tests).
pub trait RejectSink: Send + Sync {
    fn send(
        &self,
        rejects: &[RejectedRecord],
    ) -> impl Future<Output = Result<(), RejectFault>> + Send;
}

/// Why an invocation failed (the Pipe retries the whole batch).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Config(#[from] ConfigFault),
    #[error(transparent)]
    Rejects(#[from] RejectFault),
}

// ---------------------------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------------------------

/// What one invocation produced.
#[derive(Debug)]
pub struct BatchResult {
    pub output: Vec<CallbackDetail>,
    pub metrics: InvocationMetrics,
}

/// Extracts the CloudEvent from a record body: an EventBridge envelope (its `detail`) or the
/// CloudEvent itself. Returns the event and the body text (for the reject path).
fn cloud_event(body: Value) -> (Result<Value, Rejected>, BodyText) {
    match body {
        Value::String(text) => {
            if text.len() > MAX_EVENT_BYTES {
                let err = EventError::TooLarge {
                    size: text.len(),
                    limit: MAX_EVENT_BYTES,
                };
                return (
                    Err(Rejected {
                        event_id: None,
                        error: err,
                    }),
                    BodyText::Text(text),
                );
            }
            let parsed = event::json_value(text.as_bytes()).map(unwrap_envelope);
            (parsed, BodyText::Text(text))
        }
        Value::Object(_) => {
            let copy = BodyText::Json(body.clone());
            (Ok(unwrap_envelope(body)), copy)
        }
        other => {
            let err = Rejected {
                event_id: None,
                error: EventError::Json(
                    "the SQS record body is neither a JSON string nor an object".into(),
                ),
            };
            (Err(err), BodyText::Json(other))
        }
    }
}

enum BodyText {
    Text(String),
    Json(Value),
}

impl BodyText {
    fn into_string(self) -> String {
        match self {
            BodyText::Text(t) => t,
            BodyText::Json(Value::Null) => String::new(),
            BodyText::Json(v) => v.to_string(),
        }
    }
}

/// The valid event in a record's text body (a CloudEvent, or an EventBridge envelope holding
/// one as its `detail`), by the core's fast path; `None` when the full path must decide.
fn accept_text(text: &str) -> Option<InboundEvent> {
    if text.len() > MAX_EVENT_BYTES {
        return None;
    }
    let tree = Tree::parse(text.as_bytes()).ok()?;
    let is_envelope = tree.get("specversion").is_none()
        && tree.get("detail").is_some()
        && tree.get("detail-type").is_some();
    if is_envelope {
        event::accept_tree(tree.get("detail")?)
    } else {
        event::accept_tree(&tree)
    }
}

/// An EventBridge envelope (`detail` present, no CloudEvents `specversion`) yields its `detail`.
fn unwrap_envelope(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        if !obj.contains_key("specversion")
            && obj.contains_key("detail")
            && obj.contains_key("detail-type")
        {
            return obj.remove("detail").unwrap_or(Value::Null);
        }
    }
    v
}

fn reject_record(
    r: &Rejected,
    sqs_message_id: Option<String>,
    message_id: Option<String>,
    body: String,
) -> RejectedRecord {
    RejectedRecord {
        reason: r.error.to_string(),
        fields: r.error.fields(),
        event_id: r.event_id.clone(),
        message_id,
        sqs_message_id,
        body,
        body_truncated: false,
    }
}

/// The Notify message id of a CloudEvent that failed validation, if it has one (for logs).
fn message_id_of(v: &Value) -> Option<String> {
    v.get("data")
        .and_then(|d| d.get("messageId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

struct Accepted {
    event: InboundEvent,
    sqs_message_id: Option<String>,
    body: BodyText,
}

/// Handles one enrichment batch.
pub async fn handle<C: ConfigSource, R: RejectSink>(
    records: Vec<SqsRecord>,
    configs: &Arc<C>,
    rejects: &R,
    opts: &CoreOptions,
) -> Result<BatchResult, HandlerError> {
    let started = Instant::now();
    let mut metrics = InvocationMetrics {
        events_in: records.len() as u64,
        ..Default::default()
    };
    let mut rejected: Vec<RejectedRecord> = Vec::new();
    let mut accepted: Vec<Accepted> = Vec::with_capacity(records.len());

    // 1. Parse and validate every record.
    for rec in records {
        if rec.malformed {
            let r = Rejected {
                event_id: None,
                error: EventError::Json("the SQS record is not a JSON object".into()),
            };
            tracing::warn!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = None::<&str>, reason = %r, "event rejected");
            rejected.push(reject_record(&r, None, None, String::new()));
            continue;
        }
        // Fast path: a valid event in a text body (the SQS shape) is accepted without building
        // a `Value`; anything else takes the path below, which also explains a rejection.
        let rec_body = match rec.body {
            Value::String(text) => match accept_text(&text) {
                Some(event) => {
                    accepted.push(Accepted {
                        event,
                        sqs_message_id: rec.message_id,
                        body: BodyText::Text(text),
                    });
                    continue;
                }
                None => Value::String(text),
            },
            other => other,
        };
        let (parsed, body) = cloud_event(rec_body);
        let value = match parsed {
            Ok(v) => v,
            Err(r) => {
                tracing::warn!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = rec.message_id.as_deref(), reason = %r, "event rejected");
                rejected.push(reject_record(&r, rec.message_id, None, body.into_string()));
                continue;
            }
        };
        let notify_message_id = message_id_of(&value);
        match event::from_value(value) {
            Ok(event) => accepted.push(Accepted {
                event,
                sqs_message_id: rec.message_id,
                body,
            }),
            Err(r) => {
                tracing::warn!(
                    event_id = r.event_id.as_deref(),
                    message_id = notify_message_id.as_deref(),
                    sqs_message_id = rec.message_id.as_deref(),
                    reason = %r,
                    "event rejected"
                );
                rejected.push(reject_record(
                    &r,
                    rec.message_id,
                    notify_message_id,
                    body.into_string(),
                ));
            }
        }
    }

    // 2. The configuration of every client in the batch, fetched concurrently.
    let clients = lookup_clients(&accepted, configs, &mut metrics).await?;

    // 3. Filter, transform, sign.
    let mut output = Vec::with_capacity(accepted.len());
    for a in accepted {
        let ev = &a.event;
        let Some(client) = clients.get(ev.client_id()).and_then(Option::as_ref) else {
            metrics.filtered_out += 1;
            tracing::debug!(
                event_id = ev.id(),
                message_id = ev.message_id(),
                client_id = ev.client_id(),
                "no configuration for client"
            );
            continue;
        };
        match details_for(ev, client, opts) {
            Ok(details) if details.is_empty() => {
                metrics.filtered_out += 1;
                tracing::debug!(
                    event_id = ev.id(),
                    message_id = ev.message_id(),
                    "no subscription matched"
                );
            }
            Ok(details) => {
                metrics.callbacks_out += details.len() as u64;
                tracing::debug!(
                    event_id = ev.id(),
                    message_id = ev.message_id(),
                    callbacks = details.len(),
                    "callbacks built"
                );
                output.extend(details);
            }
            Err(reason) => {
                tracing::error!(event_id = ev.id(), message_id = ev.message_id(), reason = %reason, "event rejected");
                let r = Rejected {
                    event_id: Some(ev.id().to_string()),
                    error: EventError::Invalid(vec![FieldError {
                        pointer: String::new(),
                        reason,
                    }]),
                };
                rejected.push(reject_record(
                    &r,
                    a.sqs_message_id,
                    Some(ev.message_id().to_string()),
                    a.body.into_string(),
                ));
            }
        }
    }

    // 4. Rejects must be safely on their queue before the batch is acknowledged.
    metrics.rejected = rejected.len() as u64;
    if !rejected.is_empty() {
        rejects.send(&rejected).await?;
    }
    metrics.duration = started.elapsed();
    Ok(BatchResult { output, metrics })
}

async fn lookup_clients<C: ConfigSource>(
    accepted: &[Accepted],
    configs: &Arc<C>,
    metrics: &mut InvocationMetrics,
) -> Result<HashMap<String, Option<Arc<ClientSettings>>>, ConfigFault> {
    let mut clients: HashMap<String, Option<Arc<ClientSettings>>> = HashMap::new();
    let mut wanted: Vec<String> = Vec::new();
    for a in accepted {
        let id = a.event.client_id();
        if !clients.contains_key(id) {
            clients.insert(id.to_string(), None);
            wanted.push(id.to_string());
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for id in wanted {
        let source = Arc::clone(configs);
        let task = async move {
            let found = source.client(&id).await;
            (id, found)
        };
        // Keep the invocation span (requestId) on the lookup's log lines.
        tasks.spawn(tracing::Instrument::instrument(
            task,
            tracing::Span::current(),
        ));
    }
    let mut fault = None;
    while let Some(joined) = tasks.join_next().await {
        let (id, found) = joined.map_err(|e| ConfigFault {
            client_id: String::new(),
            reason: format!("lookup task failed: {e}"),
        })?;
        match found {
            Ok(lookup) => {
                match lookup.cache {
                    CacheUse::Hit => metrics.config_cache_hits += 1,
                    CacheUse::Miss => metrics.config_cache_misses += 1,
                }
                clients.insert(id, lookup.settings);
            }
            Err(e) => {
                fault.get_or_insert(e);
            }
        }
    }
    match fault {
        Some(e) => Err(e),
        None => Ok(clients),
    }
}

/// The output elements for one event and one client.
fn details_for(
    ev: &InboundEvent,
    client: &ClientSettings,
    opts: &CoreOptions,
) -> Result<Vec<CallbackDetail>, String> {
    let callbacks = pipeline::callbacks_for(ev, client, opts).map_err(|e| match e {
        ProcessError::Rejected(r) => r.to_string(),
        ProcessError::Transform { source, .. } => source.to_string(),
    })?;
    if callbacks.is_empty() {
        return Ok(Vec::new());
    }
    let payload = Arc::new(pipeline::payload_of(ev, opts).map_err(|e| e.to_string())?);
    // The signed body and the embedded payload come from the same serializer; check anyway, so
    // that a drift can never put a callback with a wrong signature on the bus.
    let embedded = transform::body(&payload);
    let mut out = Vec::with_capacity(callbacks.len());
    for cb in callbacks {
        if *cb.body != *embedded {
            return Err(
                "internal: the embedded payload does not serialize to the signed body".into(),
            );
        }
        out.push(CallbackDetail {
            client_id: cb.client_id,
            target_id: cb.target_id,
            subscription_ids: cb.subscription_ids,
            signature: cb.signature,
            payload: SharedPayload(Arc::clone(&payload)),
            event_id: cb.event_id,
            message_id: cb.message_id,
            traceparent: cb.traceparent,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(status: &str) -> Value {
        json!({"specversion": "1.0", "id": "e-1", "source": "/s", "type": "uk.nhs.notify.message.status.PUBLISHED.v1",
            "time": "2025-11-03T09:12:44.018Z",
            "data": {"clientId": "c", "messageId": "2WL3qFTEFM0qMY8xjRbt1LIKCzM", "messageReference": "r",
                "messageStatus": status, "channels": [], "timestamp": "2025-11-03T09:12:44.018Z",
                "routingPlan": {"id": "", "name": "", "version": "", "createdDate": ""}}})
    }

    fn envelope(detail: Value) -> Value {
        json!({"version": "0", "id": "eb-1", "detail-type": "status", "source": "seb", "detail": detail})
    }

    #[test]
    fn text_bodies_take_the_fast_path_bare_or_in_an_envelope() {
        let bare = accept_text(&event("DELIVERED").to_string()).expect("bare event accepted");
        let wrapped =
            accept_text(&envelope(event("DELIVERED")).to_string()).expect("envelope accepted");
        assert_eq!(bare.meta, wrapped.meta);
        assert_eq!(wrapped.id(), "e-1");
        assert_eq!(wrapped.message_id(), "2WL3qFTEFM0qMY8xjRbt1LIKCzM");
    }

    #[test]
    fn the_fast_path_leaves_invalid_and_odd_bodies_to_the_full_path() {
        assert!(accept_text(&event("ARCHIVED").to_string()).is_none());
        assert!(accept_text(&envelope(event("ARCHIVED")).to_string()).is_none());
        assert!(accept_text("{not json").is_none());
        // An envelope without detail-type is not unwrapped (as `unwrap_envelope` does).
        let mut not_envelope = envelope(event("DELIVERED"));
        not_envelope
            .as_object_mut()
            .expect("object")
            .remove("detail-type");
        assert!(accept_text(&not_envelope.to_string()).is_none());
        // Over the size limit: refused here, named by the full path.
        let mut big = event("DELIVERED");
        big["padding"] = Value::String("x".repeat(MAX_EVENT_BYTES));
        assert!(accept_text(&big.to_string()).is_none());
    }
}
