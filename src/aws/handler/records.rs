//! Records in: the Pipe's SQS records, each parsed and validated into an accepted event or a
//! rejected record with its reason.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::event::{self, EventError, InboundEvent, Rejected, MAX_EVENT_BYTES};
use crate::schema::scan::scan;
use crate::schema::Tree;

use super::RejectedRecord;

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
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
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

pub(super) enum BodyText {
    Text(String),
    Json(Value),
}

impl BodyText {
    pub(super) fn into_string(self) -> String {
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
    // A CloudEvent body its type's reading plan admits: read in one pass (an EventBridge
    // envelope is never admitted: it has no `specversion`).
    if let Some(event) = event::read_one_pass(text.as_bytes()) {
        return Some(event);
    }
    // The one-pass scanner where it is sure of the document, serde_json otherwise.
    let tree = scan(text.as_bytes()).or_else(|| Tree::parse(text.as_bytes()).ok())?;
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

pub(super) fn reject_record(
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

pub(super) struct Accepted {
    pub(super) event: InboundEvent,
    pub(super) sqs_message_id: Option<String>,
    pub(super) body: BodyText,
}

/// One record after parsing and validation.
// Moved once into the batch's vectors; boxing would add an allocation per record.
#[allow(clippy::large_enum_variant)]
pub(super) enum Parsed {
    Accepted(Accepted),
    Rejected(RejectedRecord),
}

/// Parses and validates one record.
pub(super) fn parse_record(rec: SqsRecord) -> Parsed {
    if rec.malformed {
        let r = Rejected {
            event_id: None,
            error: EventError::Json("the SQS record is not a JSON object".into()),
        };
        tracing::warn!(event_id = None::<&str>, message_id = None::<&str>, sqs_message_id = None::<&str>, reason = %r, "event rejected");
        return Parsed::Rejected(reject_record(&r, None, None, String::new()));
    }
    // Fast path: a valid event in a text body (the SQS shape) is accepted without building
    // a `Value`; anything else takes the path below, which also explains a rejection.
    let rec_body = match rec.body {
        Value::String(text) => match accept_text(&text) {
            Some(event) => {
                return Parsed::Accepted(Accepted {
                    event,
                    sqs_message_id: rec.message_id,
                    body: BodyText::Text(text),
                })
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
            return Parsed::Rejected(reject_record(&r, rec.message_id, None, body.into_string()));
        }
    };
    let notify_message_id = message_id_of(&value);
    match event::from_value(value) {
        Ok(event) => Parsed::Accepted(Accepted {
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
            Parsed::Rejected(reject_record(
                &r,
                rec.message_id,
                notify_message_id,
                body.into_string(),
            ))
        }
    }
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
