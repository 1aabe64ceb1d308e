//! The dependency rule between the library's modules (README, "How it is built"): the core (`schema`,
//! `event`, `config`, `filter`, `transform`, `sign`, `pipeline`, `stream`, `secret`) names
//! nothing of `deliver`, `local` or `aws`; `deliver` nothing of `local` or `aws`; `local` and
//! `aws` never each other. Every `crate::<module>` path in a source file counts (a `use` line
//! or a path written out in place).

use std::path::{Path, PathBuf};

const CORE: &[&str] = &[
    "schema",
    "event",
    "config",
    "filter",
    "transform",
    "sign",
    "pipeline",
    "stream",
    "secret",
];

/// The top-level modules a module may not name.
fn forbidden(module: &str) -> &'static [&'static str] {
    match module {
        "deliver" => &["local", "aws"],
        "local" => &["aws"],
        "aws" => &["local"],
        m if CORE.contains(&m) => &["deliver", "local", "aws"],
        _ => &[],
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`None` for the crate root and bins).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    if first == "bin" || first == "lib.rs" || first == "main.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_string())
}

/// The `crate::<module>` paths a source text names, with their line numbers. `use crate::{a,
/// b::c}` groups count too.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.push((n + 1, name));
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((n + 1, name));
        }
    }
    out
}

#[test]
fn no_module_names_one_it_must_not_depend_on() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 50, "found {} source files", files.len());
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        for (line, named) in named_modules(&text) {
            if forbidden(&module).contains(&named.as_str()) {
                violations.push(format!(
                    "{}:{line}: `{module}` names crate::{named}",
                    file.strip_prefix(&src).unwrap_or(file).display()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_scan_sees_use_lines_groups_and_paths_in_place() {
    let text = "use crate::deliver::Endpoint;\nuse crate::{config, aws::x};\n  // crate::local::y\nlet m = crate::local::z();";
    let names: Vec<String> = named_modules(text).into_iter().map(|(_, m)| m).collect();
    assert_eq!(names, ["deliver", "config", "aws", "local"]);
    assert_eq!(forbidden("config"), ["deliver", "local", "aws"]);
    assert_eq!(forbidden("deliver"), ["local", "aws"]);
}
