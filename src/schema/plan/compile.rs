//! Compiling the embedded schema files into [`Plan`]s.
//!
//! Understood: `type` (one of object, string, integer, array), `$ref` (into the embedded files),
//! `allOf`, `oneOf` of string enumerations that share no value, `enum` of strings, `minLength`,
//! `maxLength`, `pattern`, an integer `minimum`, `properties`, `required`,
//! `additionalProperties: false`, `propertyNames`, `items`; annotations are skipped. Any other
//! keyword makes the schema unsupported (its events take the validating paths only).

use serde_json::{Map, Value};

use super::{IntRule, Member, NameIndex, ObjectRule, Pattern, Plan, StrRule};
use crate::schema::files;

/// Why a schema has no plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("schema file {0} is not embedded")]
    MissingFile(String),
    #[error("schema file {file}: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("$ref {0} does not resolve")]
    Unresolved(String),
    #[error("pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        source: Box<regex_automata::dfa::dense::BuildError>,
    },
    #[error("not planned: {0}")]
    Unsupported(String),
}

/// Keywords that do not constrain a value.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "x-anyCase",
];

/// How deep `$ref`s may nest (the schemas are not recursive; this bounds a mistake).
const MAX_DEPTH: usize = 32;

/// The plan of a whole event of type `event_type`: the envelope (`cloudevent.schema.json`)
/// with `type` fixed to `event_type` and `data` following `data_schema`, as
/// [`crate::schema::Schemas`] validates it.
pub fn event_plan(event_type: &str, data_schema: &str) -> Result<Plan, PlanError> {
    let compiler = Compiler;
    let envelope = compiler.file("cloudevent.schema.json", 0)?;
    let data = compiler.file(data_schema, 0)?;
    let fixed = ObjectRule {
        members: vec![
            Member {
                name: "type".into(),
                plan: Plan::Str(StrRule {
                    values: Some(NameIndex::new([event_type.into()])),
                    ..StrRule::default()
                }),
                required: false,
            },
            Member {
                name: "data".into(),
                plan: data,
                required: false,
            },
        ],
        ..ObjectRule::default()
    };
    envelope.and(Plan::Object(fixed.seal()?))
}

/// Compiles schemas found in the embedded files.
struct Compiler;

/// The plan of `schema`, a part of the standalone document `doc` (for tests).
#[cfg(test)]
pub fn schema_plan(schema: &Value, doc: &Value) -> Result<Plan, PlanError> {
    Compiler.schema(schema, "", doc, 0)
}

impl Compiler {
    fn file(&self, name: &str, depth: usize) -> Result<Plan, PlanError> {
        let doc = document(name)?;
        self.schema(doc, name, doc, depth)
    }

    /// The plan of `schema`, found in file `file` whose whole document is `doc`.
    fn schema(
        &self,
        schema: &Value,
        file: &str,
        doc: &Value,
        depth: usize,
    ) -> Result<Plan, PlanError> {
        if depth > MAX_DEPTH {
            return Err(PlanError::Unsupported("$ref nested too deep".into()));
        }
        let keywords = match schema {
            Value::Bool(true) => return Ok(Plan::Any),
            Value::Object(keywords) => keywords,
            _ => return Err(PlanError::Unsupported(format!("schema {schema}"))),
        };
        let mut plan = Plan::Any;
        for (keyword, value) in keywords {
            if ANNOTATIONS.contains(&keyword.as_str()) {
                continue;
            }
            let part = self.keyword(keyword, value, keywords, file, doc, depth)?;
            plan = plan.and(part)?;
        }
        Ok(plan)
    }

    fn keyword(
        &self,
        keyword: &str,
        value: &Value,
        keywords: &Map<String, Value>,
        file: &str,
        doc: &Value,
        depth: usize,
    ) -> Result<Plan, PlanError> {
        let sub = |schema: &Value| self.schema(schema, file, doc, depth);
        Ok(match keyword {
            "type" => type_plan(value)?,
            "$ref" => self.reference(str_of(keyword, value)?, file, doc, depth + 1)?,
            "allOf" => array_of(keyword, value)?
                .iter()
                .try_fold(Plan::Any, |plan, s| plan.and(sub(s)?))?,
            "oneOf" => one_of(array_of(keyword, value)?.iter().map(sub))?,
            "enum" => Plan::Str(StrRule {
                values: Some(NameIndex::new(strings(keyword, value)?)),
                ..StrRule::default()
            }),
            "minLength" => Plan::Str(StrRule {
                min_chars: count(keyword, value)?,
                ..StrRule::default()
            }),
            "maxLength" => Plan::Str(StrRule {
                max_chars: Some(count(keyword, value)?),
                ..StrRule::default()
            }),
            "pattern" => Plan::Str(StrRule {
                patterns: vec![Pattern::new(str_of(keyword, value)?)?],
                ..StrRule::default()
            }),
            "minimum" => Plan::Int(IntRule {
                minimum: Some(integer(keyword, value)?),
            }),
            "items" => Plan::Array(Box::new(sub(value)?)),
            "properties" | "required" | "additionalProperties" | "propertyNames" => {
                self.object_part(keyword, value, keywords, &sub)?
            }
            other => return Err(PlanError::Unsupported(format!("keyword {other}"))),
        })
    }

    /// One object keyword as an object rule of its own (they combine with [`Plan::and`]).
    fn object_part(
        &self,
        keyword: &str,
        value: &Value,
        keywords: &Map<String, Value>,
        sub: &dyn Fn(&Value) -> Result<Plan, PlanError>,
    ) -> Result<Plan, PlanError> {
        let mut rule = ObjectRule::default();
        match keyword {
            "properties" => {
                let Value::Object(properties) = value else {
                    return Err(PlanError::Unsupported(
                        "properties that are not an object".into(),
                    ));
                };
                for (name, schema) in properties {
                    rule.members.push(member(name, sub(schema)?, false));
                }
            }
            "required" => {
                for name in strings(keyword, value)? {
                    rule.members.push(member(&name, Plan::Any, true));
                }
            }
            "additionalProperties" => match value {
                Value::Bool(false) => {
                    rule.closed = true;
                    // Closed over the members this same schema names.
                    if let Some(Value::Object(properties)) = keywords.get("properties") {
                        for name in properties.keys() {
                            rule.members.push(member(name, Plan::Any, false));
                        }
                    }
                }
                Value::Bool(true) => {}
                _ => {
                    return Err(PlanError::Unsupported(
                        "additionalProperties other than a boolean".into(),
                    ))
                }
            },
            _ => match sub(value)? {
                Plan::Any => {}
                Plan::Str(names) => rule.names.push(names),
                _ => {
                    return Err(PlanError::Unsupported(
                        "propertyNames other than string rules".into(),
                    ))
                }
            },
        }
        Ok(Plan::Object(rule.seal()?))
    }

    fn reference(
        &self,
        target: &str,
        file: &str,
        doc: &Value,
        depth: usize,
    ) -> Result<Plan, PlanError> {
        let target = target.strip_prefix(files::BASE_URI).unwrap_or(target);
        let (name, fragment) = target.split_once('#').unwrap_or((target, ""));
        if name.is_empty() {
            let schema = doc
                .pointer(fragment)
                .ok_or_else(|| PlanError::Unresolved(target.into()))?;
            return self.schema(schema, file, doc, depth);
        }
        let other = document(name)?;
        let schema = other
            .pointer(fragment)
            .ok_or_else(|| PlanError::Unresolved(target.into()))?;
        self.schema(schema, name, other, depth)
    }
}

fn document(name: &str) -> Result<&'static Value, PlanError> {
    files::parsed(name)
        .ok_or_else(|| PlanError::MissingFile(name.into()))?
        .map_err(|source| PlanError::Json {
            file: name.into(),
            source,
        })
}

fn member(name: &str, plan: Plan, required: bool) -> Member {
    Member {
        name: name.into(),
        plan,
        required,
    }
}

fn type_plan(value: &Value) -> Result<Plan, PlanError> {
    Ok(match value.as_str() {
        Some("object") => Plan::Object(ObjectRule::default()),
        Some("string") => Plan::Str(StrRule::default()),
        Some("integer") => Plan::Int(IntRule::default()),
        Some("array") => Plan::Array(Box::new(Plan::Any)),
        _ => return Err(PlanError::Unsupported(format!("type {value}"))),
    })
}

/// `oneOf` over string enumerations with no value in common: exactly one branch holds exactly
/// when the value is in their union.
fn one_of(branches: impl Iterator<Item = Result<Plan, PlanError>>) -> Result<Plan, PlanError> {
    let mut union: Vec<Box<str>> = Vec::new();
    for branch in branches {
        let values = match branch? {
            Plan::Str(StrRule {
                values: Some(values),
                min_chars: 0,
                max_chars: None,
                patterns,
            }) if patterns.is_empty() => values.names().to_vec(),
            _ => {
                return Err(PlanError::Unsupported(
                    "oneOf other than string enumerations".into(),
                ))
            }
        };
        if values.iter().any(|v| union.contains(v)) {
            return Err(PlanError::Unsupported(
                "oneOf branches that share a value".into(),
            ));
        }
        union.extend(values);
    }
    Ok(Plan::Str(StrRule {
        values: Some(NameIndex::new(union)),
        ..StrRule::default()
    }))
}

fn str_of<'v>(keyword: &str, value: &'v Value) -> Result<&'v str, PlanError> {
    value
        .as_str()
        .ok_or_else(|| PlanError::Unsupported(format!("{keyword} that is not a string")))
}

fn array_of<'v>(keyword: &str, value: &'v Value) -> Result<&'v Vec<Value>, PlanError> {
    value
        .as_array()
        .ok_or_else(|| PlanError::Unsupported(format!("{keyword} that is not an array")))
}

fn strings(keyword: &str, value: &Value) -> Result<Vec<Box<str>>, PlanError> {
    array_of(keyword, value)?
        .iter()
        .map(|v| str_of(keyword, v).map(Into::into))
        .collect()
}

fn count(keyword: &str, value: &Value) -> Result<u64, PlanError> {
    value
        .as_u64()
        .ok_or_else(|| PlanError::Unsupported(format!("{keyword} {value}")))
}

fn integer(keyword: &str, value: &Value) -> Result<i64, PlanError> {
    value
        .as_i64()
        .ok_or_else(|| PlanError::Unsupported(format!("{keyword} {value}")))
}
