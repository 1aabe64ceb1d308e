//! Input normalisation the schemas call for, applied before validation on every path.
//!
//! - **Any case.** A schema marked `"x-anyCase": true` (in `schemas/defs.schema.json`: the
//!   message, channel and supplier statuses and the channel type) accepts its enum values in any
//!   ASCII case: a string that equals one of them ignoring case is replaced by the spelling the
//!   schema lists, then validated as usual. The values come from the schemas' own `enum` lists;
//!   which instance fields are affected is found by walking the schema (`properties`, `items`,
//!   `$ref`, `oneOf`/`anyOf`/`allOf`). A value that matches no listed value in any case is left
//!   as sent, so validation refuses it.
//! - **Null means absent** (CloudEvents JSON format §3.1): a member of the event envelope or of
//!   its `data` whose value is `null` is removed, so an optional attribute that is `null` is not
//!   present and a required one is reported missing.
//!
//! Both document representations (`Value` for the reference path, `Tree` for the fast path)
//! are normalised by the same code through [`Doc`] ([`super::doc`]).

use serde_json::Value;

use super::doc::Doc;
use super::files;

/// The schema keyword marking an enum whose values are accepted in any case.
pub const ANY_CASE_KEYWORD: &str = "x-anyCase";

/// A walk deeper than this through a schema is a cycle (the schemas nest a few levels).
const MAX_SCHEMA_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(String),
    Items,
}

/// One field (a path through the instance) whose values are matched ignoring case.
#[derive(Debug, Clone)]
struct CaseField {
    path: Vec<Step>,
    values: Vec<String>,
}

/// The any-case fields of one document schema.
#[derive(Debug, Clone, Default)]
pub struct CaseFields(Vec<CaseField>);

impl CaseFields {
    /// The any-case fields of the embedded schema file `file`, under `prefix` (e.g. `data`).
    pub fn of(file: &str, prefix: &[&str]) -> Result<CaseFields, String> {
        let doc = parse_file(file)?;
        let mut out = CaseFields::default();
        let path = prefix
            .iter()
            .map(|m| Step::Member((*m).to_owned()))
            .collect();
        out.walk(doc, file, path, 0)?;
        Ok(out)
    }

    fn walk(
        &mut self,
        schema: &Value,
        file: &str,
        path: Vec<Step>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(format!(
                "{file}: schema nesting deeper than {MAX_SCHEMA_DEPTH} (a $ref cycle?)"
            ));
        }
        if schema.get(ANY_CASE_KEYWORD) == Some(&Value::Bool(true)) {
            let mut values = Vec::new();
            enum_values(schema, file, &mut values, depth)?;
            if values.is_empty() {
                return Err(format!(
                    "{file}: a schema marked {ANY_CASE_KEYWORD} lists no enum values"
                ));
            }
            self.add(path, values);
            return Ok(());
        }
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let (target, target_file) = resolve(r, file)?;
            self.walk(target, &target_file, path.clone(), depth + 1)?;
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for branch in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.walk(branch, file, path.clone(), depth + 1)?;
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let mut p = path.clone();
                p.push(Step::Member(name.clone()));
                self.walk(sub, file, p, depth + 1)?;
            }
        }
        if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
            let mut p = path;
            p.push(Step::Items);
            self.walk(items, file, p, depth + 1)?;
        }
        Ok(())
    }

    fn add(&mut self, path: Vec<Step>, values: Vec<String>) {
        match self.0.iter_mut().find(|f| f.path == path) {
            Some(f) => {
                for v in values {
                    if !f.values.contains(&v) {
                        f.values.push(v);
                    }
                }
            }
            None => self.0.push(CaseField { path, values }),
        }
    }

    /// Replaces every any-case value that is not spelled as listed by its listed spelling.
    /// Returns whether anything changed.
    pub fn apply<D: Doc>(&self, doc: &mut D) -> bool {
        let mut changed = false;
        for field in &self.0 {
            changed |= apply_at(doc, &field.path, &field.values);
        }
        changed
    }
}

fn apply_at<D: Doc>(doc: &mut D, path: &[Step], values: &[String]) -> bool {
    match path.split_first() {
        None => {
            let Some(s) = doc.string() else {
                return false;
            };
            if values.iter().any(|v| v == s) {
                return false;
            }
            match values.iter().find(|v| v.eq_ignore_ascii_case(s)) {
                Some(v) => {
                    doc.set_string(v.clone());
                    true
                }
                None => false,
            }
        }
        Some((Step::Member(name), rest)) => doc
            .member_mut(name)
            .is_some_and(|m| apply_at(m, rest, values)),
        Some((Step::Items, rest)) => {
            let mut changed = false;
            doc.for_each_item(&mut |item| changed |= apply_at(item, rest, values));
            changed
        }
    }
}

fn parse_file(file: &str) -> Result<&'static Value, String> {
    files::parsed(file)
        .ok_or_else(|| format!("{file}: not an embedded schema file"))?
        .map_err(|e| format!("{file}: {e}"))
}

/// The schema a `$ref` in `file` names, and the file it is in.
fn resolve(r: &str, file: &str) -> Result<(&'static Value, String), String> {
    let (doc, frag) = r.split_once('#').unwrap_or((r, ""));
    let target_file = if doc.is_empty() { file } else { doc };
    let root = parse_file(target_file)?;
    let target = if frag.is_empty() {
        Some(root)
    } else {
        root.pointer(frag)
    };
    let target = target.ok_or_else(|| format!("{file}: $ref {r} names nothing"))?;
    Ok((target, target_file.to_owned()))
}

/// Every string `enum` value of a schema, through `$ref` and `oneOf`/`anyOf`/`allOf`.
fn enum_values(
    schema: &Value,
    file: &str,
    out: &mut Vec<String>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(format!(
            "{file}: schema nesting deeper than {MAX_SCHEMA_DEPTH} (a $ref cycle?)"
        ));
    }
    for v in schema
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(s) = v.as_str().filter(|s| !out.iter().any(|o| o == s)) {
            out.push(s.to_owned());
        }
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let (target, target_file) = resolve(r, file)?;
        enum_values(target, &target_file, out, depth + 1)?;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for branch in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            enum_values(branch, file, out, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Tree;
    use serde_json::json;

    fn message_fields() -> CaseFields {
        CaseFields::of("message-status-data.v1.schema.json", &["data"]).expect("walk")
    }

    #[test]
    fn the_any_case_fields_are_found_in_the_schemas() {
        let paths = |c: &CaseFields| -> Vec<String> {
            c.0.iter()
                .map(|f| {
                    f.path
                        .iter()
                        .map(|s| match s {
                            Step::Member(m) => m.clone(),
                            Step::Items => "*".into(),
                        })
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .collect()
        };
        let mut m = paths(&message_fields());
        m.sort();
        assert_eq!(
            m,
            [
                "data/channels/*/channelStatus",
                "data/channels/*/type",
                "data/messageStatus",
                "data/previousMessageStatus"
            ]
        );
        let channel =
            CaseFields::of("channel-status-data.v1.schema.json", &["data"]).expect("walk");
        let mut c = paths(&channel);
        c.sort();
        assert_eq!(
            c,
            [
                "data/channel",
                "data/channelStatus",
                "data/previousChannelStatus",
                "data/previousSupplierStatus",
                "data/supplierStatus"
            ]
        );
        let config = CaseFields::of("client-config.schema.json", &[]).expect("walk");
        let mut k = paths(&config);
        k.sort();
        assert_eq!(
            k,
            [
                "subscriptions/*/channelStatuses/*",
                "subscriptions/*/channelType",
                "subscriptions/*/messageStatuses/*",
                "subscriptions/*/supplierStatuses/*"
            ]
        );
    }

    #[test]
    fn values_take_the_listed_spelling_in_both_representations() {
        let doc = json!({"data": {"messageStatus": "Delivered", "previousMessageStatus": "sending",
            "channels": [{"type": "nhsApp", "channelStatus": "DELIVERED"}, {"type": "Sms", "channelStatus": "bogus"}],
            "messageReference": "delivered"}});
        let want = json!({"data": {"messageStatus": "DELIVERED", "previousMessageStatus": "SENDING",
            "channels": [{"type": "NHSAPP", "channelStatus": "DELIVERED"}, {"type": "SMS", "channelStatus": "bogus"}],
            "messageReference": "delivered"}});
        let fields = message_fields();
        let mut value = doc.clone();
        assert!(fields.apply(&mut value));
        assert_eq!(value, want);
        assert!(!fields.apply(&mut value), "a second pass changes nothing");
        let text = serde_json::to_vec(&doc).expect("json");
        let mut tree = Tree::parse(&text).expect("tree");
        assert!(fields.apply(&mut tree));
        assert_eq!(tree.to_value(), want);
    }

    #[test]
    fn supplier_statuses_keep_either_listed_case_and_fold_mixed_case_to_the_first_listed() {
        let fields = CaseFields::of("channel-status-data.v1.schema.json", &["data"]).expect("walk");
        let mut v =
            json!({"data": {"supplierStatus": "READ", "previousSupplierStatus": "Notified"}});
        assert!(fields.apply(&mut v));
        assert_eq!(
            v,
            json!({"data": {"supplierStatus": "READ", "previousSupplierStatus": "notified"}})
        );
    }
}
