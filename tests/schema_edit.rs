//! Schema-first: editing a schema file changes the generated Rust types on the next build, with
//! no other edit. Builds a copy of this crate (library only, no default features) twice: with a
//! probe that reads a field the schema does not have yet (must not compile), then with that
//! field added to the schema (must compile).

use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn check(dir: &Path, target_dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO"))
        .args([
            "check",
            "--lib",
            "--no-default-features",
            "--offline",
            "--quiet",
        ])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .expect("run cargo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of this crate under `tmp`.
fn copy_crate(tmp: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let krate = tmp.join("crate");
    for f in ["Cargo.toml", "Cargo.lock", "build.rs"] {
        std::fs::create_dir_all(&krate).expect("mkdir");
        std::fs::copy(root.join(f), krate.join(f)).expect("copy");
    }
    // The build script's modules, and every directory a manifest target may live in (explicit
    // [[bin]], [[example]], [[bench]]).
    for d in ["src", "build", "schemas", "benches", "examples", "tests"] {
        copy_dir(&root.join(d), &krate.join(d));
    }
    krate
}

/// Build rule 7 (docs/CONTRACTS.md): when two objects share a key set but list it in different
/// orders, the generated struct's field order (the payload's key order) cannot be told, and
/// the build fails naming the schema and the struct instead of guessing.
#[test]
fn an_ambiguous_field_order_fails_the_build_naming_schema_and_struct() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let krate = copy_crate(tmp.path());
    let schema_path = krate.join("schemas/channel-status-data.v1.schema.json");
    let text = std::fs::read_to_string(&schema_path).expect("schema");
    // Two anonymous objects with the keys {zeta, alpha}, written in opposite orders.
    let edited = text.replacen(
        "\"properties\": {",
        "\"properties\": {\n    \"probeOne\": {\"type\": \"object\", \"properties\": {\"zeta\": {\"type\": \"string\"}, \"alpha\": {\"type\": \"integer\"}}},\n    \"probeTwo\": {\"type\": \"object\", \"properties\": {\"alpha\": {\"type\": \"integer\"}, \"zeta\": {\"type\": \"string\"}}},",
        1,
    );
    assert_ne!(edited, text, "the schema has a properties object");
    std::fs::write(&schema_path, edited).expect("write schema");
    let (ok, stderr) = check(&krate, &root.join("target").join("schema-edit-test"));
    assert!(!ok, "the build guessed a field order");
    assert!(
        stderr.contains("cannot tell the field order")
            && stderr.contains("channel-status-data.v1.schema.json")
            && stderr.contains("struct `"),
        "the failure does not name the schema and the struct: {stderr}"
    );
}

#[test]
fn a_schema_edit_regenerates_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let krate = copy_crate(tmp.path());
    // A probe that reads a field the schema does not have.
    let lib = krate.join("src/lib.rs");
    let mut text = std::fs::read_to_string(&lib).expect("lib.rs");
    text.push_str(
        "\npub fn schema_edit_probe(d: &schema::types::MessageStatusData) -> Option<&str> {\n    d.supplier_reference.as_deref()\n}\n",
    );
    std::fs::write(&lib, text).expect("write lib.rs");
    // Reused between runs so that only this crate is rebuilt.
    let target_dir = root.join("target").join("schema-edit-test");

    let (ok, stderr) = check(&krate, &target_dir);
    assert!(!ok, "the probe compiled before the schema had the field");
    assert!(
        stderr.contains("supplier_reference"),
        "unexpected failure: {stderr}"
    );

    let schema_path = krate.join("schemas/message-status-data.v1.schema.json");
    let text = std::fs::read_to_string(&schema_path).expect("schema");
    let edited = text.replacen(
        "\"properties\": {",
        "\"properties\": {\n    \"supplierReference\": {\"type\": \"string\"},",
        1,
    );
    assert_ne!(edited, text, "the schema has a properties object");
    std::fs::write(&schema_path, edited).expect("write schema");

    let (ok, stderr) = check(&krate, &target_dir);
    assert!(
        ok,
        "the crate did not build after the schema edit: {stderr}"
    );
}
