//! Generates the Rust types of every JSON Schema in `schemas/` with typify.
//!
//! typify (through schemars 0.8) understands one document with `definitions` and local `$ref`s
//! only, so the schemas are first bundled: every file's `$defs` and every file's root schema
//! (named by its `title`) become one `definitions` map, and every `$ref` — local
//! (`#/$defs/X`), cross-file (`defs.schema.json#/$defs/X`) or whole-file (`x.schema.json`) — is
//! rewritten to `#/definitions/<name>`. Keywords that only validation needs (`propertyNames`)
//! are dropped for code generation; run-time validation uses the schema files unchanged.
//! The schema files are also embedded in the library (`schema_files.rs`).

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::{env, fs};

#[path = "build/newtypes.rs"]
mod newtypes;
#[path = "build/wire.rs"]
mod wire;

struct SchemaFile {
    file_name: String,
    title: String,
    doc: Value,
}

fn main() {
    let dir =
        Path::new(&env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("schemas");
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".schema.json"))
        .collect();
    paths.sort();

    let files: Vec<SchemaFile> = paths
        .iter()
        .map(|p| {
            println!("cargo:rerun-if-changed={}", p.display());
            let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let doc: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let title = doc
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_else(|| {
                    panic!("{}: a root `title` names the generated type", p.display())
                })
                .to_string();
            SchemaFile {
                file_name: p
                    .file_name()
                    .expect("file name")
                    .to_string_lossy()
                    .into_owned(),
                title,
                doc,
            }
        })
        .collect();

    let titles: BTreeMap<&str, &str> = files
        .iter()
        .map(|f| (f.file_name.as_str(), f.title.as_str()))
        .collect();

    // Bundle into one definitions map.
    let mut definitions: Map<String, Value> = Map::new();
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |name: String, schema: Value, from: &str| {
        if let Some(prev) = definitions.get(&name) {
            if prev != &schema {
                panic!(
                    "type name `{name}` is defined differently in {from} and {}",
                    origin[&name]
                );
            }
            return;
        }
        origin.insert(name.clone(), from.to_string());
        definitions.insert(name, schema);
    };
    for f in &files {
        let mut root = f.doc.clone();
        let defs = root.as_object_mut().and_then(|o| o.remove("$defs"));
        if let Some(Value::Object(defs)) = defs {
            for (name, mut schema) in defs {
                rewrite(&mut schema, &f.file_name, &titles);
                add(name, schema, &f.file_name);
            }
        }
        rewrite(&mut root, &f.file_name, &titles);
        // A file that only holds `$defs` (defs.schema.json) has no root type of its own.
        let has_root_type = [
            "type",
            "oneOf",
            "anyOf",
            "allOf",
            "properties",
            "$ref",
            "enum",
        ]
        .iter()
        .any(|k| root.get(k).is_some());
        if has_root_type {
            add(f.title.clone(), root, &f.file_name);
        }
    }

    // Property order by type name (named definitions), and of every nested object (for the
    // anonymous types typify names itself).
    let mut named_orders: BTreeMap<String, Order> = BTreeMap::new();
    let mut orders = Vec::new();
    for (name, schema) in &definitions {
        let file = origin[name].clone();
        if let Some(Value::Object(props)) = schema.get("properties") {
            named_orders.insert(
                name.clone(),
                Order {
                    file: file.clone(),
                    keys: props.keys().cloned().collect(),
                },
            );
        }
        property_orders(schema, &file, &mut orders);
    }
    let root = serde_json::json!({ "definitions": Value::Object(definitions) });
    let root: schemars::schema::RootSchema =
        serde_json::from_value(root).expect("bundled schemas parse as schemars RootSchema");

    let mut settings = typify::TypeSpaceSettings::default();
    settings.with_struct_builder(false);
    // Secrets get a type whose Debug/Display redact the value, so no log line can carry one.
    settings.with_replacement("Secret", "crate::secret::Secret", std::iter::empty());
    let mut space = typify::TypeSpace::new(&settings);
    space
        .add_ref_types(root.definitions)
        .unwrap_or_else(|e| panic!("typify rejected the bundled schemas: {e}"));
    let tokens = space.to_stream();
    let mut file: syn::File = syn::parse2(tokens).expect("typify output parses as Rust");
    if let Err(problems) = reorder_fields(&mut file, &named_orders, &orders) {
        panic!(
            "cannot tell the field order of generated types (the callback payload's key order \
             depends on it):\n  {}",
            problems.join("\n  ")
        );
    }
    // Constrained string newtypes keep the `String` they read instead of copying it.
    assert!(
        newtypes::rewrite(&mut file) > 0,
        "no string newtype found to rewrite: update build/newtypes.rs"
    );
    // Enums give their wire strings without the formatting machinery (`schema::Wire`).
    assert!(
        wire::add(&mut file) > 0,
        "no enum Display of typify's shape found: update build/wire.rs"
    );
    // typify validates `pattern` newtypes with `regress` (a backtracking ECMAScript engine).
    // The same patterns run far faster on the `regex` crate's automata, and every pattern in
    // schemas/ uses syntax both accept (tests/schema.rs compiles each one with `regex`).
    let code = prettyplease::unparse(&file).replace("::regress::Regex", "::regex::Regex");
    // A value read from a document the compiled schema has just accepted already matched the
    // same pattern: the fast path's typed read says so (`schema::PatternsProven`) and the
    // newtypes skip the second match. Everywhere else they match as generated.
    let check = "if PATTERN.find(value).is_none() {";
    assert!(
        code.contains(check) || !code.contains("static PATTERN"),
        "typify's pattern check changed shape: update build.rs"
    );
    let code = code.replace(
        check,
        "if !crate::schema::patterns_proven() && PATTERN.find(value).is_none() {",
    );

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    fs::write(out.join("schema_types.rs"), code).expect("write schema_types.rs");

    // Embed every schema file and the registry.
    let mut embed = String::from("/// Every schema file in `schemas/`, by file name, embedded at build time.\npub static SCHEMA_FILES: &[(&str, &str)] = &[\n");
    for f in &files {
        embed.push_str(&format!(
            "    ({name:?}, include_str!({path:?})),\n",
            name = f.file_name,
            path = dir.join(&f.file_name).display().to_string()
        ));
    }
    embed.push_str("];\n");
    embed.push_str(&format!(
        "/// `schemas/registry.json`: event type to data schema.\npub static REGISTRY_JSON: &str = include_str!({:?});\n",
        dir.join("registry.json").display().to_string()
    ));
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("registry.json").display()
    );
    fs::write(out.join("schema_files.rs"), embed).expect("write schema_files.rs");
}

/// Rewrites `$ref`s to the bundled `#/definitions/<name>` form and drops keywords typify
/// does not need, recursively.
fn rewrite(v: &mut Value, file: &str, titles: &BTreeMap<&str, &str>) {
    match v {
        Value::Object(o) => {
            for k in ["$schema", "$id", "$comment", "propertyNames", "x-anyCase"] {
                o.remove(k);
            }
            if let Some(Value::String(r)) = o.get_mut("$ref") {
                *r = bundle_ref(r, file, titles);
            }
            for (_, child) in o.iter_mut() {
                rewrite(child, file, titles);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| rewrite(c, file, titles)),
        _ => {}
    }
}

fn bundle_ref(r: &str, file: &str, titles: &BTreeMap<&str, &str>) -> String {
    let (doc, frag) = r.split_once('#').unwrap_or((r, ""));
    let doc = if doc.is_empty() { file } else { doc };
    if let Some(name) = frag.strip_prefix("/$defs/") {
        return format!("#/definitions/{name}");
    }
    if frag.is_empty() || frag == "/" {
        let title = titles
            .get(doc)
            .unwrap_or_else(|| panic!("{file}: $ref to unknown schema file `{doc}`"));
        return format!("#/definitions/{title}");
    }
    panic!("{file}: unsupported $ref `{r}` (use `#/$defs/X`, `file.schema.json#/$defs/X` or `file.schema.json`)");
}

/// One `properties` object's key order, as written, and the schema file it is written in.
#[derive(Clone, PartialEq)]
struct Order {
    file: String,
    keys: Vec<String>,
}

/// Every `properties` object's key order, as written in the schemas.
fn property_orders(v: &Value, file: &str, out: &mut Vec<Order>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(props)) = o.get("properties") {
                out.push(Order {
                    file: file.to_string(),
                    keys: props.keys().cloned().collect(),
                });
            }
            o.values().for_each(|c| property_orders(c, file, out));
        }
        Value::Array(a) => a.iter().for_each(|c| property_orders(c, file, out)),
        _ => {}
    }
}

/// The name a generated field has on the wire (its `serde(rename)`, else its identifier).
fn wire_name(f: &syn::Field) -> String {
    use quote::ToTokens;
    for attr in &f.attrs {
        let text = attr.to_token_stream().to_string();
        if let Some(rest) = text.split("rename = \"").nth(1) {
            if let Some(name) = rest.split('"').next() {
                return name.to_string();
            }
        }
    }
    let ident = f.ident.as_ref().expect("named field").to_string();
    ident
        .trim_end_matches('_')
        .trim_start_matches("r#")
        .to_string()
}

/// The schema order of struct `ident`, whose fields are `names` (sorted): its named
/// definition's own order, else the one order every `properties` object with exactly these keys
/// agrees on. Anything else is an error naming the schema and the struct: a guessed order could
/// change the bytes clients receive.
fn order_of<'a>(
    ident: &str,
    names: &[String],
    named_orders: &'a BTreeMap<String, Order>,
    orders: &'a [Order],
) -> Result<&'a [String], String> {
    let sorted = |keys: &[String]| {
        let mut k = keys.to_vec();
        k.sort();
        k
    };
    if let Some(own) = named_orders.get(ident) {
        if sorted(&own.keys) != names {
            return Err(format!(
                "{}: struct `{ident}` has fields {names:?} but its schema lists properties {:?}",
                own.file, own.keys
            ));
        }
        return Ok(&own.keys);
    }
    let candidates: Vec<&Order> = orders.iter().filter(|o| sorted(&o.keys) == names).collect();
    let Some(first) = candidates.first() else {
        return Err(format!(
            "struct `{ident}` (fields {names:?}) matches no `properties` object in schemas/"
        ));
    };
    if let Some(other) = candidates.iter().find(|c| c.keys != first.keys) {
        return Err(format!(
            "struct `{ident}`: its properties are listed in different orders in {} ({:?}) and in {} ({:?}); \
             give the object a `title` (a named definition) or list the properties in one order",
            first.file, first.keys, other.file, other.keys
        ));
    }
    Ok(&first.keys)
}

/// typify emits struct fields sorted by name; serde serialises fields in declaration order.
/// Put each struct's fields back in the order its schema lists the properties, so that the
/// generated types serialise in schema order (the callback payload's order on the wire).
/// Every struct whose order cannot be told for certain is reported.
fn reorder_fields(
    file: &mut syn::File,
    named_orders: &BTreeMap<String, Order>,
    orders: &[Order],
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for item in &mut file.items {
        let syn::Item::Struct(st) = item else {
            continue;
        };
        let syn::Fields::Named(named) = &mut st.fields else {
            continue;
        };
        let mut names: Vec<String> = named.named.iter().map(wire_name).collect();
        names.sort();
        let order = match order_of(&st.ident.to_string(), &names, named_orders, orders) {
            Ok(order) => order,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let mut fields: Vec<syn::Field> = std::mem::take(&mut named.named).into_iter().collect();
        fields.sort_by_key(|f| {
            let n = wire_name(f);
            order.iter().position(|o| *o == n)
        });
        named.named = fields.into_iter().collect();
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
