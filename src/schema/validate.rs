//! Run-time JSON Schema validation (`jsonschema`), compiled once from the embedded schemas.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::{Registry, Validator};
use serde_json::{json, Value};

use super::doc::{drop_nulls, Doc};
use super::normalise::CaseFields;
use super::tree::Tree;
use super::tree_json::TreeJson;
use super::{files, registry, EventKind};

/// One violated constraint: where (a JSON pointer into the instance) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.reason)
    }
}

/// The validators, compiled from the embedded schemas: one per accepted event type, plus
/// configuration and payloads. Each group is compiled when first used, so a run that only
/// loads configurations and reads valid events (the fast paths need no validator) never pays
/// for the event validators, and a run that sends no callbacks never compiles theirs.
pub struct Schemas {
    registry: Registry<'static>,
    events: OnceLock<EventSchemas>,
    config: OnceLock<ConfigSchema>,
    callbacks: OnceLock<CallbackSchemas>,
}

struct EventSchemas {
    envelope: Validator,
    events: HashMap<String, (EventKind, Validator)>,
    /// The same event schemas, compiled for the borrowed [`Tree`] (the accept fast path).
    fast_events: HashMap<String, (EventKind, Validator<TreeJson>)>,
    /// Per event type, the fields whose values are accepted in any case.
    event_case: HashMap<String, CaseFields>,
}

struct ConfigSchema {
    validator: Validator,
    case: CaseFields,
}

struct CallbackSchemas {
    message: Validator,
    channel: Validator,
}

/// At most this many violations are reported for one document.
const MAX_ERRORS: usize = 10;

/// The message of a group that does not compile (tests compile every group: [`Schemas::compile`]).
const EMBEDDED: &str = "embedded schemas compile (checked by tests)";

impl Schemas {
    /// The process-wide validators, each group compiled on first use.
    pub fn get() -> &'static Schemas {
        static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| Schemas::lazy().expect(EMBEDDED))
    }

    /// Compiles every validator from the embedded schema files now (so that any error shows).
    pub fn compile() -> Result<Schemas, String> {
        let schemas = Schemas::lazy()?;
        let _ = schemas.events.set(schemas.compile_events()?);
        let _ = schemas.config.set(schemas.compile_config()?);
        let _ = schemas.callbacks.set(schemas.compile_callbacks()?);
        Ok(schemas)
    }

    /// Compiles every group not compiled yet (for a process that wants no compile later, such
    /// as a Lambda function in its init phase).
    pub fn ready(&self) {
        self.event_schemas();
        self.config_schema();
        self.callback_schemas();
    }

    /// The registry of the schema files, no validator compiled yet.
    fn lazy() -> Result<Schemas, String> {
        let mut builder = Registry::new();
        for (name, _) in files::SCHEMA_FILES {
            let doc = files::parsed(name)
                .ok_or_else(|| format!("{name}: not an embedded schema file"))?
                .map_err(|e| format!("{name}: {e}"))?;
            builder = builder
                .add(format!("{}{name}", files::BASE_URI), doc)
                .map_err(|e| format!("{name}: {e}"))?;
        }
        let registry = builder
            .prepare()
            .map_err(|e| format!("schema registry: {e}"))?;
        Ok(Schemas {
            registry,
            events: OnceLock::new(),
            config: OnceLock::new(),
            callbacks: OnceLock::new(),
        })
    }

    fn build(&self, schema: &Value) -> Result<Validator, String> {
        jsonschema::options()
            .with_registry(&self.registry)
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .map_err(|e| format!("schema {schema}: {e}"))
    }

    fn build_fast(&self, schema: &Value) -> Result<Validator<TreeJson>, String> {
        jsonschema::options_for::<TreeJson>()
            .with_registry(&self.registry)
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .map_err(|e| format!("schema {schema}: {e}"))
    }

    fn compile_events(&self) -> Result<EventSchemas, String> {
        let mut events = HashMap::new();
        let mut fast_events = HashMap::new();
        let mut event_case = HashMap::new();
        for entry in registry() {
            if files::get(&entry.data_schema).is_none() {
                return Err(format!(
                    "registry.json: event type {} names data schema {} which is not in schemas/",
                    entry.event_type, entry.data_schema
                ));
            }
            let schema = json!({
                "allOf": [by_ref("cloudevent.schema.json")],
                "properties": {
                    "type": { "enum": [entry.event_type] },
                    "data": by_ref(&entry.data_schema)
                }
            });
            fast_events.insert(
                entry.event_type.clone(),
                (entry.kind, self.build_fast(&schema)?),
            );
            event_case.insert(
                entry.event_type.clone(),
                CaseFields::of(&entry.data_schema, &["data"])?,
            );
            events.insert(entry.event_type.clone(), (entry.kind, self.build(&schema)?));
        }
        Ok(EventSchemas {
            envelope: self.build(&by_ref("cloudevent.schema.json"))?,
            events,
            fast_events,
            event_case,
        })
    }

    fn compile_config(&self) -> Result<ConfigSchema, String> {
        Ok(ConfigSchema {
            validator: self.build(&by_ref("client-config.schema.json"))?,
            case: CaseFields::of("client-config.schema.json", &[])?,
        })
    }

    fn compile_callbacks(&self) -> Result<CallbackSchemas, String> {
        Ok(CallbackSchemas {
            message: self.build(&by_ref("callback-message-status.schema.json"))?,
            channel: self.build(&by_ref("callback-channel-status.schema.json"))?,
        })
    }

    fn event_schemas(&self) -> &EventSchemas {
        self.events
            .get_or_init(|| self.compile_events().expect(EMBEDDED))
    }

    fn config_schema(&self) -> &ConfigSchema {
        self.config
            .get_or_init(|| self.compile_config().expect(EMBEDDED))
    }

    fn callback_schemas(&self) -> &CallbackSchemas {
        self.callbacks
            .get_or_init(|| self.compile_callbacks().expect(EMBEDDED))
    }

    /// The kind of callback an event type produces, if the type is accepted.
    pub fn event_kind(&self, event_type: &str) -> Option<EventKind> {
        self.event_schemas().events.get(event_type).map(|(k, _)| *k)
    }

    /// The accepted event types, sorted.
    pub fn event_types(&self) -> Vec<&str> {
        let events = &self.event_schemas().events;
        let mut t: Vec<&str> = events.keys().map(String::as_str).collect();
        t.sort_unstable();
        t
    }

    /// Whether an event, parsed as a [`Tree`], is valid against the schema for its `type`; its
    /// kind if so. This is the accept fast path and gives no reasons: for an event it refuses,
    /// [`Schemas::validate_event`] on the `Value` says which fields are wrong and why.
    pub fn valid_event_kind(&self, event: &Tree<'_>) -> Option<EventKind> {
        let fast_events = &self.event_schemas().fast_events;
        let (kind, validator) = fast_events.get(event.get("type")?.as_str()?)?;
        validator.is_valid(event).then_some(*kind)
    }

    /// Applies the input rules that come before validation (docs/CONTRACTS.md, input rules 1-3)
    /// to an event in either representation: `null` members of the envelope and of `data` are
    /// removed, and values of any-case fields take the spelling their schema lists. Returns
    /// whether anything changed.
    pub fn normalise_event<D: Doc>(&self, event: &mut D) -> bool {
        let mut changed = drop_nulls(event);
        let fields = event
            .member_mut("type")
            .and_then(|t| t.string())
            .and_then(|t| self.event_schemas().event_case.get(t));
        if let Some(fields) = fields {
            changed |= fields.apply(event);
        }
        changed
    }

    /// Applies the any-case rule to a client configuration document (before validation).
    pub fn normalise_client_config(&self, doc: &mut Value) -> bool {
        self.config_schema().case.apply(doc)
    }

    /// Validates a whole event (envelope and data) against the schema for its `type`.
    /// An unknown or missing type is reported as an error at `/type`. Reasons never quote the
    /// event's values (input rule 6): a reject line names the pointer and the reason only.
    pub fn validate_event(&self, event: &Value) -> Result<EventKind, Vec<FieldError>> {
        let schemas = self.event_schemas();
        let Some(event_type) = event.get("type").and_then(Value::as_str) else {
            let mut errs = collect(&schemas.envelope, event, true);
            if errs.is_empty() {
                errs.push(FieldError {
                    pointer: "/type".into(),
                    reason: "is required".into(),
                });
            }
            return Err(errs);
        };
        let Some((kind, validator)) = schemas.events.get(event_type) else {
            let mut errs = vec![FieldError {
                pointer: "/type".into(),
                reason: format!(
                    "is not an accepted event type; accepted: {}",
                    self.event_types().join(", ")
                ),
            }];
            errs.extend(
                collect(&schemas.envelope, event, true)
                    .into_iter()
                    .filter(|e| e.pointer != "/type"),
            );
            return Err(errs);
        };
        if validator.is_valid(event) {
            Ok(*kind)
        } else {
            Err(collect(validator, event, true))
        }
    }

    /// Validates a client configuration document. Values are masked in the reasons, since a
    /// configuration holds API keys.
    pub fn validate_client_config(&self, doc: &Value) -> Result<(), Vec<FieldError>> {
        let validator = &self.config_schema().validator;
        if validator.is_valid(doc) {
            Ok(())
        } else {
            Err(collect(validator, doc, true))
        }
    }

    /// Validates a callback request body (what a client receives) against its payload schema.
    pub fn validate_callback(&self, kind: EventKind, body: &Value) -> Result<(), Vec<FieldError>> {
        let schemas = self.callback_schemas();
        let v = match kind {
            EventKind::MessageStatus => &schemas.message,
            EventKind::ChannelStatus => &schemas.channel,
        };
        if v.is_valid(body) {
            Ok(())
        } else {
            Err(collect(v, body, false))
        }
    }
}

/// A schema that is the embedded file `file`.
fn by_ref(file: &str) -> Value {
    json!({ "$ref": format!("{}{file}", files::BASE_URI) })
}

fn collect(validator: &Validator, instance: &Value, mask: bool) -> Vec<FieldError> {
    let mut out = Vec::new();
    for e in validator.iter_errors(instance) {
        flatten(&e, mask, &mut out);
    }
    // `oneOf`/`allOf` can report one violation several times; keep each once, deepest first.
    out.sort_by(|a, b| {
        b.pointer
            .len()
            .cmp(&a.pointer.len())
            .then_with(|| a.pointer.cmp(&b.pointer))
    });
    out.dedup();
    out.truncate(MAX_ERRORS);
    out
}

/// Turns one validation error into field errors that name the field and the reason.
/// A failed `oneOf`/`anyOf` is replaced by the errors of its closest branch (the one with the
/// fewest violations), so that e.g. a typo in a subscription's status list is reported at that
/// status rather than as "not valid under any of the schemas".
fn flatten(e: &jsonschema::ValidationError<'_>, mask: bool, out: &mut Vec<FieldError>) {
    use jsonschema::error::ValidationErrorKind as K;
    match e.kind() {
        K::OneOfNotValid { context } | K::AnyOf { context } if !context.is_empty() => {
            if let Some(best) = context
                .iter()
                .filter(|b| !b.is_empty())
                .min_by_key(|b| b.len())
            {
                for sub in best {
                    flatten(sub, mask, out);
                }
                return;
            }
        }
        K::Required { property } => {
            let mut pointer = e.instance_path().to_string();
            let name = property.as_str().unwrap_or_default();
            pointer.push_str(&super::tree::pointer_step(name));
            out.push(FieldError {
                pointer,
                reason: "is required".into(),
            });
            return;
        }
        _ => {}
    }
    let reason = if mask {
        e.masked().to_string()
    } else {
        e.to_string()
    };
    out.push(FieldError {
        pointer: e.instance_path().to_string(),
        reason,
    });
}
