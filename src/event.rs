//! Inbound status events: parse, validate against the schema for their type, and deserialize
//! into the generated types.

use serde::Deserialize;
use serde_json::Value;

use crate::schema::scan::scan;
use crate::schema::types::{ChannelStatusData, MessageStatusData};
use crate::schema::{EventKind, FieldError, Schemas, Tree};

mod read;
pub use read::{planned_types, read_one_pass};

/// The largest event accepted, in bytes (the EventBridge event size limit).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// A validated status event.
#[derive(Debug, Clone)]
pub struct InboundEvent {
    /// The CloudEvents attributes the pipeline uses.
    pub meta: EventMeta,
    pub data: EventData,
}

/// The CloudEvents attributes the pipeline uses (the whole envelope is validated against
/// `cloudevent.schema.json`; its generated type is `schema::types::CloudEvent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    pub id: String,
    pub source: String,
    pub event_type: String,
    pub time: String,
    pub traceparent: Option<String>,
}

/// The typed data of a status event.
#[derive(Debug, Clone)]
pub enum EventData {
    MessageStatus(MessageStatusData),
    ChannelStatus(ChannelStatusData),
}

impl InboundEvent {
    pub fn id(&self) -> &str {
        &self.meta.id
    }
    pub fn source(&self) -> &str {
        &self.meta.source
    }
    pub fn client_id(&self) -> &str {
        match &self.data {
            EventData::MessageStatus(d) => &d.client_id,
            EventData::ChannelStatus(d) => &d.client_id,
        }
    }
    pub fn message_id(&self) -> &str {
        match &self.data {
            EventData::MessageStatus(d) => &d.message_id,
            EventData::ChannelStatus(d) => &d.message_id,
        }
    }
    pub fn traceparent(&self) -> Option<&str> {
        self.meta.traceparent.as_deref()
    }
    pub fn kind(&self) -> EventKind {
        match &self.data {
            EventData::MessageStatus(_) => EventKind::MessageStatus,
            EventData::ChannelStatus(_) => EventKind::ChannelStatus,
        }
    }
}

/// Why an event was rejected. Every variant names the field (a JSON pointer) or the position.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EventError {
    #[error("event is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("/: an event must be a JSON object")]
    NotAnObject,
    #[error("{}", join(.0))]
    Invalid(Vec<FieldError>),
}

fn join(errs: &[FieldError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl EventError {
    /// The violated fields, for machine-readable reports.
    pub fn fields(&self) -> Vec<FieldError> {
        match self {
            EventError::Invalid(errs) => errs.clone(),
            EventError::TooLarge { .. } | EventError::Json(_) | EventError::NotAnObject => {
                vec![FieldError {
                    pointer: String::new(),
                    reason: self.to_string(),
                }]
            }
        }
    }
}

/// An event that could not be accepted, with whatever id could be read from it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct Rejected {
    pub event_id: Option<String>,
    pub error: EventError,
}

/// Parses and validates one event from its JSON bytes.
///
/// A valid event takes the fast path: a borrowed parse ([`Tree`]), the compiled schema for its
/// type, then the typed data read straight from the bytes. Anything that path refuses is decided
/// by [`from_value`] on a `serde_json::Value`, which is also what names the field and the reason;
/// the fast path only ever accepts what that path accepts (tests/schema.rs checks both agree).
pub fn parse_event(bytes: &[u8]) -> Result<InboundEvent, Rejected> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(Rejected {
            event_id: None,
            error: EventError::TooLarge {
                size: bytes.len(),
                limit: MAX_EVENT_BYTES,
            },
        });
    }
    if let Some(event) = parse_fast(bytes) {
        return Ok(event);
    }
    parse_value(bytes)
}

/// The envelope attributes the pipeline keeps, with the typed data (unknown members skipped).
#[derive(serde::Deserialize)]
struct Envelope<D> {
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    time: String,
    #[serde(default)]
    traceparent: Option<String>,
    data: D,
}

impl<D> Envelope<D> {
    fn into_event(self, data: impl FnOnce(D) -> EventData) -> InboundEvent {
        InboundEvent {
            meta: EventMeta {
                id: self.id,
                source: self.source,
                event_type: self.event_type,
                time: self.time,
                traceparent: self.traceparent,
            },
            data: data(self.data),
        }
    }
}

/// The accept fast path of [`parse_event`]: the event if it is valid, `None` for anything it does
/// not accept (invalid, or a shape only the `Value` path handles, such as a repeated member name).
pub fn parse_fast(bytes: &[u8]) -> Option<InboundEvent> {
    if let Some(event) = read_one_pass(bytes) {
        return Some(event);
    }
    // The scanner answers for plain documents and refuses a repeated member name itself.
    if let Some(tree) = scan(bytes) {
        return accept(&tree, Names::Distinct);
    }
    accept_tree(&Tree::parse(bytes).ok()?)
}

/// Whether a tree is known to repeat no member name.
#[derive(Clone, Copy)]
enum Names {
    Distinct,
    Unchecked,
}

/// The fast path on an already parsed document (for adapters that unwrap an envelope first):
/// the event if it is valid against the schema for its type, `None` otherwise. A `None` says
/// nothing about why: run the `Value` path ([`from_value`]) for the reasons.
pub fn accept_tree(tree: &Tree<'_>) -> Option<InboundEvent> {
    accept(tree, Names::Unchecked)
}

fn accept(tree: &Tree<'_>, names: Names) -> Option<InboundEvent> {
    let schemas = Schemas::get();
    let Some(kind) = schemas.valid_event_kind(tree) else {
        // Valid once normalised (a null attribute, a status in another case)? Only such events
        // pay for the copy; anything else is left to the reference path.
        let mut copy = tree.clone();
        if !schemas.normalise_event(&mut copy) {
            return None;
        }
        return read_valid(&copy, schemas.valid_event_kind(&copy)?, names);
    };
    read_valid(tree, kind, names)
}

/// The typed event of a tree the schema accepted, refusing a repeated member name.
fn read_valid(tree: &Tree<'_>, kind: EventKind, names: Names) -> Option<InboundEvent> {
    if matches!(names, Names::Unchecked) && tree.duplicate_member().is_some() {
        return None;
    }
    // The schema for `kind` accepted `tree`: its patterned values matched already.
    let _proven = crate::schema::PatternsProven::new();
    match kind {
        EventKind::MessageStatus => Envelope::<MessageStatusData>::deserialize(tree)
            .ok()
            .map(|e| e.into_event(EventData::MessageStatus)),
        EventKind::ChannelStatus => Envelope::<ChannelStatusData>::deserialize(tree)
            .ok()
            .map(|e| e.into_event(EventData::ChannelStatus)),
    }
}

/// [`parse_event`] through a `serde_json::Value`: the reference path, and the one that explains
/// a rejection.
pub fn parse_value(bytes: &[u8]) -> Result<InboundEvent, Rejected> {
    from_value(json_value(bytes)?)
}

/// Parses JSON text into a `Value`, refusing a document in which an object repeats a member
/// name (a `Value` map would silently keep the last one): the reject names the repeat's JSON
/// pointer. Adapters that read an event from text use this before [`from_value`].
pub fn json_value(bytes: &[u8]) -> Result<Value, Rejected> {
    let tree = Tree::parse(bytes).map_err(|e| Rejected {
        event_id: None,
        error: EventError::Json(e.to_string()),
    })?;
    if let Some(pointer) = tree.duplicate_member() {
        // The id is reported only when it is not itself the repeated member.
        let event_id = match pointer.as_str() {
            "/id" => None,
            _ => tree.get("id").and_then(Tree::as_str).map(str::to_owned),
        };
        return Err(Rejected {
            event_id,
            error: EventError::Invalid(vec![FieldError {
                pointer,
                reason: DUPLICATE_MEMBER.into(),
            }]),
        });
    }
    Ok(tree.to_value())
}

/// The reason given for a repeated member name.
pub const DUPLICATE_MEMBER: &str =
    "repeats an earlier member name of the same object (ambiguous: RFC 8259 leaves its meaning undefined)";

/// Validates and deserializes an already-parsed event.
pub fn from_value(mut value: Value) -> Result<InboundEvent, Rejected> {
    // The id is read only when the event is rejected (no allocation on the accepted path).
    let id_of = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_owned);
    if !value.is_object() {
        return Err(Rejected {
            event_id: None,
            error: EventError::NotAnObject,
        });
    }
    Schemas::get().normalise_event(&mut value);
    let kind = Schemas::get()
        .validate_event(&value)
        .map_err(|e| Rejected {
            event_id: id_of(&value),
            error: EventError::Invalid(e),
        })?;
    // After validation these cannot fail unless the generated types and the validator disagree;
    // report that as a validation error rather than panicking.
    let shape = |event_id: Option<&String>, pointer: &str, reason: String| Rejected {
        event_id: event_id.cloned(),
        error: EventError::Invalid(vec![FieldError {
            pointer: pointer.into(),
            reason,
        }]),
    };
    let Some(obj) = value.as_object_mut() else {
        return Err(shape(None, "", "must be a JSON object".into()));
    };
    let mut take = |name: &str| match obj.remove(name) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let (id, source, event_type, time, traceparent) = (
        take("id"),
        take("source"),
        take("type"),
        take("time"),
        take("traceparent"),
    );
    let data = obj.remove("data").unwrap_or(Value::Null);
    if id.is_none() || source.is_none() || event_type.is_none() || time.is_none() {
        return Err(shape(
            id.as_ref(),
            "",
            "id, source, type and time are required".into(),
        ));
    }
    let (Some(id), Some(source), Some(event_type), Some(time)) = (id, source, event_type, time)
    else {
        return Err(shape(
            None,
            "",
            "id, source, type and time are required".into(),
        ));
    };
    let data = match kind {
        EventKind::MessageStatus => serde_json::from_value(data).map(EventData::MessageStatus),
        EventKind::ChannelStatus => serde_json::from_value(data).map(EventData::ChannelStatus),
    }
    // serde's message would quote the value: name the type only (input rule 6).
    .map_err(|_| {
        shape(
            Some(&id),
            "/data",
            "does not match the generated type (schema and types disagree)".into(),
        )
    })?;
    Ok(InboundEvent {
        meta: EventMeta {
            id,
            source,
            event_type,
            time,
            traceparent,
        },
        data,
    })
}
