//! The one-pass read of an event (`read_one_pass`: the schemas compiled into reading plans, the
//! bytes checked against them as the typed read takes them) only ever accepts what the reference
//! path (`parse_value`: a `serde_json::Value`, the schemas, the typed read) accepts, with the same
//! contents. It covers the real events (every golden event), and a deterministic sweep of
//! mutated events (every member removed, repeated, retyped, re-cased, lengthened, ... plus
//! random combinations and byte edits) never finds it accepting what the reference refuses or
//! reading it differently.

mod common;

use std::path::Path;

use callbacks::event::{
    parse_event, parse_value, planned_types, read_one_pass, EventData, InboundEvent,
};
use callbacks::schema::registry;
use common::*;
use serde_json::{json, Value};

fn data_json(e: &InboundEvent) -> Value {
    match &e.data {
        EventData::MessageStatus(d) => serde_json::to_value(d).expect("ser"),
        EventData::ChannelStatus(d) => serde_json::to_value(d).expect("ser"),
    }
}

/// Checks the one-pass read against the reference on `bytes`; returns whether it accepted.
fn agree(bytes: &[u8]) -> bool {
    let Some(one) = read_one_pass(bytes) else {
        return false;
    };
    let text = String::from_utf8_lossy(bytes);
    match parse_value(bytes) {
        Ok(r) => {
            assert_eq!(one.meta, r.meta, "meta differs on {text}");
            assert_eq!(data_json(&one), data_json(&r), "data differs on {text}");
        }
        Err(e) => panic!("read_one_pass accepted what the reference refuses ({e}): {text}"),
    }
    true
}

fn golden_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("legacy-compat/cases")
}

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(golden_root().join(name).join("event.json")).expect("event.json")
}

/// Golden events the one-pass read legitimately leaves to the other paths (they are accepted by
/// `parse_event` all the same, as the test checks):
/// - a `null` where the schema wants a string (normalised to absent by the other paths);
/// - statuses and channel types in another case than the schema's (normalised likewise).
const GOLDEN_LEFT_TO_OTHER_PATHS: &[&str] = &[
    "case-mixed-channel-status-event",
    "case-mixed-message-status-event",
    "data-null-optional-channel-fields-are-absent",
    "data-null-optional-message-fields-are-absent",
    "envelope-null-attributes-are-absent",
];

#[test]
fn every_golden_event_is_read_in_one_pass_with_the_reference_contents() {
    let mut names: Vec<String> = std::fs::read_dir(golden_root())
        .expect("cases")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut refused = Vec::new();
    for name in &names {
        let bytes = golden(name);
        if !agree(&bytes) {
            parse_event(&bytes).unwrap_or_else(|e| panic!("golden {name} is refused: {e}"));
            refused.push(name.as_str());
        }
    }
    assert!(names.len() >= 60, "only {} golden cases found", names.len());
    assert_eq!(refused, GOLDEN_LEFT_TO_OTHER_PATHS);
}

#[test]
fn every_registry_type_has_a_plan() {
    assert_eq!(planned_types(), registry().len());
    assert!(planned_types() >= 4);
}

// ---------------------------------------------------------------------------------------------
// The mutation sweep.

/// A JSON document that can say what `serde_json::Value` cannot: repeated member names, names
/// spelled with escapes, scalars written exactly as given.
#[derive(Clone, Debug)]
enum J {
    /// A scalar (or any text) written as is.
    Raw(String),
    /// Members, each name as a JSON string literal (quotes included), in order.
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
}

fn lit(s: &str) -> String {
    serde_json::to_string(s).expect("json")
}

/// Read in document order (a `Value` here sorts member names).
impl<'de> serde::Deserialize<'de> for J {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<J, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, J>()? {
                    members.push((lit(&k), v));
                }
                Ok(J::Obj(members))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<J>()? {
                    items.push(v);
                }
                Ok(J::Arr(items))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Raw(lit(s)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::Raw(n.to_string()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::Raw(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<J, E> {
                Ok(J::Raw(Value::from(n).to_string()))
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Raw(b.to_string()))
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Raw("null".into()))
            }
        }
        de.deserialize_any(Visit)
    }
}

impl J {
    fn of(v: &Value) -> J {
        match v {
            Value::Object(m) => J::Obj(m.iter().map(|(k, v)| (lit(k), J::of(v))).collect()),
            Value::Array(a) => J::Arr(a.iter().map(J::of).collect()),
            v => J::Raw(serde_json::to_string(v).expect("json")),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            J::Raw(s) => out.push_str(s),
            J::Obj(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            J::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn at_mut(&mut self, path: &[usize]) -> &mut J {
        match path.split_first() {
            None => self,
            Some((&i, rest)) => match self {
                J::Obj(m) => m[i].1.at_mut(rest),
                J::Arr(a) => a[i].at_mut(rest),
                J::Raw(_) => unreachable!("path into a scalar"),
            },
        }
    }

    fn at(&self, path: &[usize]) -> &J {
        match path.split_first() {
            None => self,
            Some((&i, rest)) => match self {
                J::Obj(m) => m[i].1.at(rest),
                J::Arr(a) => a[i].at(rest),
                J::Raw(_) => unreachable!("path into a scalar"),
            },
        }
    }

    /// Every node's path, the root's (empty) included.
    fn paths(&self, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(prefix.clone());
        let n = match self {
            J::Obj(m) => m.len(),
            J::Arr(a) => a.len(),
            J::Raw(_) => 0,
        };
        for i in 0..n {
            prefix.push(i);
            self.at(&[i]).paths(prefix, out);
            prefix.pop();
        }
    }

    fn all_paths(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        self.paths(&mut Vec::new(), &mut out);
        out
    }
}

/// A member name literal with one character written as a `\u00XX` escape (`upper`: hex digits
/// in upper case), e.g. `"id"` as `"i\u0064"`.
fn escaped_name(key: &str, at_end: bool, upper: bool) -> Option<String> {
    let name: String = serde_json::from_str(key).ok()?;
    let chars: Vec<char> = name.chars().collect();
    if chars.is_empty() || !chars.iter().all(char::is_ascii_alphanumeric) {
        return None;
    }
    let i = if at_end { chars.len() - 1 } else { 0 };
    let esc = if upper {
        format!("\\u{:04X}", chars[i] as u32)
    } else {
        format!("\\u{:04x}", chars[i] as u32)
    };
    let mut s = String::from("\"");
    for (j, c) in chars.iter().enumerate() {
        if j == i {
            s.push_str(&esc);
        } else {
            s.push(*c);
        }
    }
    s.push('"');
    Some(s)
}

fn flip_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

fn first_flipped(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => flip_case(&f.to_string()) + c.as_str(),
        None => String::new(),
    }
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

/// Replacement values for any node.
fn replacements() -> &'static [String] {
    static REPLACEMENTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    REPLACEMENTS.get_or_init(make_replacements)
}

fn make_replacements() -> Vec<String> {
    let long = "a".repeat(300);
    [
        "null",
        "0",
        "1",
        "2",
        "1.0",
        "1e0",
        "-1",
        "-0",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        "0.5",
        "true",
        "false",
        r#""x""#,
        r#""""#,
        r#""1.0""#,
        r#""0""#,
        "{}",
        "[]",
        r#"{"a":1}"#,
        r#"[1]"#,
        r#"["x"]"#,
        r#"[{}]"#,
        r#""2025-11-03T09:12:44.018Z""#,
        r#""2WL3qFTEFM0qMY8xjRbt1LIKCzM""#,
        r#""NHSAPP""#,
        r#""DELIVERED""#,
        r#""primary""#,
        r#""read""#,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([lit(&long), lit(MESSAGE_TYPE), lit(CHANNEL_TYPE)])
    .collect()
}

/// Ways to change a string value, given its decoded text: new JSON string literals.
fn string_edits(s: &str) -> Vec<String> {
    let mut out = vec![
        lit(&s.to_ascii_lowercase()),
        lit(&s.to_ascii_uppercase()),
        lit(&flip_case(s)),
        lit(&first_flipped(s)),
        lit(""),
        lit(&format!("{s}é")),
        lit(&format!("é{s}")),
        lit(&format!("{s}\u{2028}")),
        lit(&format!("{s}\u{feff}")),
        lit(&format!("{s}\u{85}")),
        lit(&format!("{s}\u{a0}")),
        lit(&format!("{s}😀")),
        lit(&format!("{s} ")),
        lit(&format!(" {s}")),
        lit(&format!("{s}\t")),
        lit(&format!("{s}\n")),
        lit(&format!("{s}\u{0}")),
        lit(&format!("{s}\u{1f}")),
        lit(&format!("{s}\u{7f}")),
        // Invalid UTF-8, written by `bytes_of`.
        lit(&format!("{s}{BAD_BYTE}")),
        lit(&format!("{s}{CUT_SEQUENCE}")),
        lit(&format!("{s}{OVERLONG}")),
        lit(&format!("{s}{SURROGATE}")),
        lit(&format!("{s}{s}")),
        lit(&"b".repeat(300)),
        lit(&"é".repeat(256)),
        lit(&"é".repeat(257)),
        lit(&"c".repeat(256)),
        lit(&"c".repeat(257)),
        lit(&"d".repeat(1024)),
        lit(&"d".repeat(1025)),
        lit(&s.chars().take(s.chars().count() / 2).collect::<String>()),
    ];
    // The same text with escapes written into the literal (same contents, or not).
    let raw = lit(s);
    let body = &raw[1..raw.len() - 1];
    for suffix in [
        r"\u2028",
        r"\u00e9",
        r"\u0000",
        r"\u000b",
        r"\u001F",
        r"\ud800",
        r"\udc00",
        r"\ud83d\ude00",
        r"\ud83d",
        r"\/",
        r"\\",
        r#"\""#,
        r"\x",
        r"\u12",
        "\t",
        "\u{1}",
    ] {
        out.push(format!("\"{body}{suffix}\""));
    }
    // Every character written as an escape: the same string.
    let escaped: String = s.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
    if s.is_ascii() {
        out.push(format!("\"{escaped}\""));
    }
    out
}

/// Collects the mutations asked for: all of them, or only the one numbered `want` (the others
/// are counted, not made).
struct Picker {
    want: Option<usize>,
    seen: usize,
    made: Vec<J>,
}

impl Picker {
    fn offer(&mut self, make: impl FnOnce() -> J) {
        if self.want.is_none_or(|w| w == self.seen) {
            self.made.push(make());
        }
        self.seen += 1;
    }
}

/// Every single mutation of `doc` at the node at `path`.
fn mutations_at(doc: &J, path: &[usize]) -> Vec<J> {
    mutations_picked(doc, path, None).made
}

/// The mutations of `doc` at `path` (`want`: only that one, by number; the count is `seen`).
fn mutations_picked(doc: &J, path: &[usize], want: Option<usize>) -> Picker {
    let mut out = Picker {
        want,
        seen: 0,
        made: Vec::new(),
    };
    let node = doc.at(path);
    if let Some((&i, parent_path)) = path.split_last() {
        let parent = doc.at(parent_path);
        let mut edit = |f: &dyn Fn(&mut J)| {
            out.offer(|| {
                let mut d = doc.clone();
                f(d.at_mut(parent_path));
                d
            })
        };
        match parent {
            J::Obj(members) => {
                let (key, value) = members[i].clone();
                edit(&|p| {
                    if let J::Obj(m) = p {
                        m.remove(i);
                    }
                });
                // Repeated: right after, at the end, first, with another value, escaped.
                let (k, v) = (key.clone(), value.clone());
                edit(&move |p| {
                    if let J::Obj(m) = p {
                        m.insert(i + 1, (k.clone(), v.clone()));
                    }
                });
                let (k, v) = (key.clone(), value.clone());
                edit(&move |p| {
                    if let J::Obj(m) = p {
                        m.push((k.clone(), v.clone()));
                    }
                });
                let k = key.clone();
                edit(&move |p| {
                    if let J::Obj(m) = p {
                        m.insert(0, (k.clone(), J::Raw(r#""other""#.into())));
                    }
                });
                for (at_end, upper) in [(false, false), (true, false), (true, true)] {
                    if let Some(esc) = escaped_name(&key, at_end, upper) {
                        let (e, v) = (esc.clone(), value.clone());
                        edit(&move |p| {
                            if let J::Obj(m) = p {
                                m.insert(i + 1, (e.clone(), v.clone()));
                            }
                        });
                        // Only renamed: the same name, accepted the same.
                        let e = esc.clone();
                        edit(&move |p| {
                            if let J::Obj(m) = p {
                                m[i].0 = e.clone();
                            }
                        });
                    }
                }
                // The name in another case.
                if let Ok(name) = serde_json::from_str::<String>(&key) {
                    for renamed in [
                        name.to_ascii_lowercase(),
                        name.to_ascii_uppercase(),
                        first_flipped(&name),
                        format!("{name}x"),
                    ] {
                        let r = lit(&renamed);
                        edit(&move |p| {
                            if let J::Obj(m) = p {
                                m[i].0 = r.clone();
                            }
                        });
                    }
                }
            }
            J::Arr(_) => {
                edit(&|p| {
                    if let J::Arr(a) = p {
                        a.remove(i);
                    }
                });
                edit(&|p| {
                    if let J::Arr(a) = p {
                        let v = a[i].clone();
                        a.insert(i, v);
                    }
                });
            }
            J::Raw(_) => unreachable!(),
        }
    }
    let mut set = |v: &str| {
        out.offer(|| {
            let mut d = doc.clone();
            *d.at_mut(path) = J::Raw(v.to_string());
            d
        })
    };
    if !path.is_empty() {
        for r in replacements() {
            set(r);
        }
    }
    if let J::Raw(raw) = node {
        if let Ok(s) = serde_json::from_str::<String>(raw) {
            for e in string_edits(&s) {
                set(&e);
            }
        }
        if raw.bytes().all(|b| b.is_ascii_digit()) {
            set(&format!("{raw}.0"));
            set(&format!("{raw}e0"));
            set(&format!("0{raw}"));
            set(&format!("-{raw}"));
            set(&format!("+{raw}"));
            set(&format!("{raw}."));
        }
    }
    // Additions inside an object or an array.
    let mut add = |f: &dyn Fn(&mut J)| {
        out.offer(|| {
            let mut d = doc.clone();
            f(d.at_mut(path));
            d
        })
    };
    match node {
        J::Obj(members) => {
            let long = "n".repeat(70);
            let sixty_four = "m".repeat(64);
            let first = members.first().map(|(k, _)| k.clone());
            for (name, value) in [
                ("zz", "1".to_string()),
                ("ext9", r#""v""#.to_string()),
                ("ext9", "null".to_string()),
                ("ext9", r#"{"k":1,"k":2}"#.to_string()),
                ("ext9", r#"[{"k":1,"K":2,"k":3}]"#.to_string()),
                ("ext9", r#"{"k":{"j":1,"j":1}}"#.to_string()),
                ("ext9", r#"{"k":1,"\u006b":2}"#.to_string()),
                ("ext9", r#"[1,2.5,-3,null,true,{"k":"v"},"é"]"#.to_string()),
                ("Bad-Name", "1".to_string()),
                ("Upper", r#""x""#.to_string()),
                ("under_score", "1".to_string()),
                ("", "1".to_string()),
                ("é", "1".to_string()),
                (long.as_str(), "1".to_string()),
                (sixty_four.as_str(), "1".to_string()),
                ("deep", nested_arrays(20)),
                ("deep", nested_arrays(98)),
                ("deep", nested_arrays(99)),
                ("deep", nested_arrays(100)),
                ("deep", nested_arrays(101)),
                ("deep", nested_arrays(300)),
                ("deep", nested_objects(50)),
                ("deep", nested_objects(100)),
                ("deep", nested_objects(200)),
                ("deep", "1.5e3".to_string()),
                ("deep", "-0.0".to_string()),
                ("deep", "01".to_string()),
                ("deep", "1.".to_string()),
                ("deep", "NaN".to_string()),
                ("deep", "tru".to_string()),
                ("deep", "nul".to_string()),
                ("deep", r#""\ud800""#.to_string()),
                ("deep", r#""\ud83d\ude00\u0000""#.to_string()),
                ("deep", "1e400".to_string()),
                ("deep", "-1e400".to_string()),
                ("deep", "1e-400".to_string()),
                ("deep", "1E+2".to_string()),
                ("deep", ".5".to_string()),
                ("deep", "-".to_string()),
                ("deep", "1e".to_string()),
                ("deep", "0x1".to_string()),
                ("deep", "Infinity".to_string()),
                ("deep", "[1,]".to_string()),
                ("deep", "{\"k\":1,}".to_string()),
                ("deep", "[ 1 ,\t2\r\n]".to_string()),
                ("deep", "{ \"k\" : [ ] }".to_string()),
                ("deep", "\"\u{1}\"".to_string()),
                ("deep", "\"\\q\"".to_string()),
                ("deep", format!("\"{BAD_BYTE}\"")),
                ("\u{1}", "1".to_string()),
            ] {
                let (n, v) = (lit(name), value.clone());
                add(&move |p| {
                    if let J::Obj(m) = p {
                        m.push((n.clone(), J::Raw(v.clone())));
                    }
                });
                let (n, v) = (lit(name), value);
                add(&move |p| {
                    if let J::Obj(m) = p {
                        m.insert(0, (n.clone(), J::Raw(v.clone())));
                    }
                });
            }
            // Unknown names written with escapes: `zz`, a lone surrogate, NUL.
            for name in [r#""z\u007a""#, r#""\ud800""#, r#""\u0000""#, r#""\q""#] {
                add(&move |p| {
                    if let J::Obj(m) = p {
                        m.push((name.into(), J::Raw("1".into())));
                    }
                });
            }
            // The first member's name, once more escaped at the other end.
            if let Some(first) = first {
                if let Some(esc) = escaped_name(&first, true, false) {
                    add(&move |p| {
                        if let J::Obj(m) = p {
                            m.push((esc.clone(), J::Raw("1".into())));
                        }
                    });
                }
            }
        }
        J::Arr(items) => {
            let first = items.first().cloned();
            add(&|p| {
                if let J::Arr(a) = p {
                    a.clear();
                }
            });
            add(&|p| {
                if let J::Arr(a) = p {
                    a.push(J::Raw("null".into()));
                }
            });
            add(&|p| {
                if let J::Arr(a) = p {
                    a.push(J::Raw("{}".into()));
                }
            });
            if let Some(f) = first {
                add(&move |p| {
                    if let J::Arr(a) = p {
                        a.push(f.clone());
                    }
                });
            }
        }
        J::Raw(_) => {}
    }
    out
}

/// Private-use characters standing for invalid UTF-8 in a document's text, replaced by
/// [`bytes_of`]: a byte no UTF-8 has, a sequence cut short, an overlong `/`, a surrogate.
const BAD_BYTE: char = '\u{e000}';
const CUT_SEQUENCE: char = '\u{e001}';
const OVERLONG: char = '\u{e002}';
const SURROGATE: char = '\u{e003}';

fn bytes_of(text: String) -> Vec<u8> {
    // The markers' UTF-8 starts with 0xee (as do only other characters no base has).
    if !text.as_bytes().contains(&0xee) {
        return text.into_bytes();
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match c {
            BAD_BYTE => out.push(0xff),
            CUT_SEQUENCE => out.push(0xc3),
            OVERLONG => out.extend([0xc0, 0xaf]),
            SURROGATE => out.extend([0xed, 0xa0, 0x80]),
            c => out.extend(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// Mutations of the whole text: truncations, trailing bytes, leading bytes, other layouts.
fn text_mutations(text: &str, out: &mut Vec<Vec<u8>>, every: usize) {
    let bytes = text.as_bytes();
    // Other white space between the tokens (JSON's four, and three it does not have).
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        out.push(serde_json::to_vec_pretty(&v).expect("json"));
    }
    for ws in [" ", "\t", "\r\n", "\u{b}", "\u{c}", "\u{a0}"] {
        out.push(
            text.replace("\":", &format!("\"{ws}:{ws}"))
                .replace(",\"", &format!(",{ws}\""))
                .into_bytes(),
        );
    }
    for n in (0..bytes.len()).step_by(every) {
        out.push(bytes[..n].to_vec());
    }
    for tail in [
        " ", "\n", "\r\n\t ", "x", "}", "]", ",", "{}", "[]", "null", "1", "\"\"", "\u{c}",
        "\u{0}", "\u{a0}", "/", "//", "\u{feff}",
    ] {
        out.push(format!("{text}{tail}").into_bytes());
    }
    for head in [" ", "\n", "\u{feff}", "x", "[", "{", ",", "\u{c}"] {
        out.push(format!("{head}{text}").into_bytes());
    }
    out.push(format!("[{text}]").into_bytes());
    out.push(format!("{text}{text}").into_bytes());
    out.push(format!("{{\"data\":{text}}}").into_bytes());
    let mut invalid_utf8 = bytes.to_vec();
    if let Some(p) = text.find("Plan") {
        invalid_utf8[p] = 0xff;
        out.push(invalid_utf8.clone());
        invalid_utf8[p] = 0xc3;
        out.push(invalid_utf8);
    }
}

/// xorshift64*: deterministic, no crate needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The base events: golden ones (message with two channels, channel with every optional member,
/// both alternative types of the registry) and the generator's shape (scripts/gen-events.py).
fn bases() -> Vec<J> {
    let schema_base = "https://notify.nhs.uk/cloudevents/schemas/client-callbacks/";
    let mut gen_message = message_event(
        "9b1a0c9e-0000-4000-8000-000000000007",
        "client-7",
        "SENDING",
    );
    gen_message["subject"] = json!("customer/00000007/message/2WL3qFTEFM0qMY8xjRbt1LIKCzM");
    gen_message["dataschema"] = json!(format!("{schema_base}message-status-data.v1.schema.json"));
    gen_message["data"]["messageStatusDescription"] = json!("Sent");
    gen_message["data"]["messageFailureReasonCode"] = json!("CODE_1");
    let mut gen_channel = channel_event(
        "9b1a0c9e-0000-4000-8000-000000000009",
        "client-9",
        "SKIPPED",
        "permanent_failure",
    );
    gen_channel["subject"] = json!("customer/00000009/message/2WL3qFTEFM0qMY8xjRbt1LIKCzM");
    gen_channel["datacontenttype"] = json!("application/json");
    gen_channel["dataschema"] = json!(format!("{schema_base}channel-status-data.v1.schema.json"));
    gen_channel["traceparent"] = json!("00-0000000000000000000000000000000a-b7ad6b7169203331-01");
    gen_channel["data"]["channelStatusDescription"] = json!("Skipped");
    let mut out = vec![J::of(&gen_message), J::of(&gen_channel)];
    for name in [
        "message-status-created",
        "channel-status-failed",
        "event-type-client-callbacks-channel-status",
        "event-type-client-callbacks-message-status",
    ] {
        // In the producer's member order (`type` before `data`).
        out.push(serde_json::from_slice(&golden(name)).expect("golden json"));
    }
    out
}

#[test]
fn mutated_events_are_read_in_one_pass_only_as_the_reference_reads_them() {
    let started = std::time::Instant::now();
    let bases = bases();
    let mut docs: Vec<Vec<u8>> = Vec::new();
    let mut singles: Vec<J> = Vec::new();
    for (b, base) in bases.iter().enumerate() {
        let text = base.text();
        assert!(
            agree(text.as_bytes()),
            "base {b} is not read in one pass: {text}"
        );
        for path in base.all_paths() {
            for d in mutations_at(base, &path) {
                docs.push(bytes_of(d.text()));
                singles.push(d);
            }
        }
        text_mutations(&text, &mut docs, if b < 2 { 1 } else { 7 });
    }
    // Type confusion: every registry type (and near misses) as the `type`, with each registry
    // type's string elsewhere in the document too (the plan is guessed from the text).
    let types: Vec<String> = registry().into_iter().map(|e| e.event_type).collect();
    let mut claimed: Vec<String> = types.clone();
    for t in &types {
        claimed.extend([
            format!("{t}x"),
            t.to_ascii_lowercase(),
            t.replace(".v1", ".v2"),
            format!(" {t}"),
        ]);
    }
    claimed.extend([String::new(), "bogus".into()]);
    for base in &bases {
        let J::Obj(members) = base else {
            unreachable!("an event is an object")
        };
        let at = members
            .iter()
            .position(|(k, _)| k == "\"type\"")
            .expect("type");
        for claim in &claimed {
            for elsewhere in std::iter::once(None).chain(types.iter().map(Some)) {
                for (before, member) in [(true, "\"subject\""), (false, "\"ext9\"")] {
                    let mut m = members.clone();
                    m[at].1 = J::Raw(lit(claim));
                    if let Some(t) = elsewhere {
                        m.retain(|(k, _)| k != member);
                        let extra = (member.to_string(), J::Raw(lit(t)));
                        if before {
                            m.insert(0, extra);
                        } else {
                            m.push(extra);
                        }
                    } else if !before {
                        continue;
                    }
                    docs.push(bytes_of(J::Obj(m).text()));
                }
            }
        }
    }
    let systematic = docs.len();
    // Random combinations: one or two more mutations on top of a single one.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..1500 {
        let mut doc = singles[rng.below(singles.len())].clone();
        for _ in 0..1 + usize::from(rng.below(4) == 0) {
            let paths = doc.all_paths();
            let path = &paths[rng.below(paths.len())];
            let n = mutations_picked(&doc, path, Some(usize::MAX)).seen;
            if n == 0 {
                continue;
            }
            let mut picked = mutations_picked(&doc, path, Some(rng.below(n)));
            doc = picked.made.pop().expect("picked");
        }
        docs.push(bytes_of(doc.text()));
    }
    // Random byte edits of the compact texts.
    let texts: Vec<String> = bases.iter().map(J::text).collect();
    let interesting = b"\"\\{}[],:0159aAzZ .-e\x00\x1f\x7f\xc3\xa9\xff";
    for _ in 0..2000 {
        let mut bytes = texts[rng.below(texts.len())].clone().into_bytes();
        for _ in 0..1 + rng.below(2) {
            let at = rng.below(bytes.len());
            let b = interesting[rng.below(interesting.len())];
            match rng.below(3) {
                0 => bytes[at] = b,
                1 => bytes.insert(at, b),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        docs.push(bytes);
    }
    // The same document made twice is checked once.
    let mut unique = std::collections::HashSet::new();
    let made = docs.len();
    docs.retain(|d| unique.insert(d.clone()));
    let generated = started.elapsed();
    let accepted = docs.iter().filter(|d| agree(d)).count();
    let refused = docs.len() - accepted;
    eprintln!(
        "{} distinct documents ({made} made, {systematic} of them systematically): {accepted} read \
         in one pass, {refused} left to the other paths, in {:?} ({generated:?} generating)",
        docs.len(),
        started.elapsed()
    );
    assert!(docs.len() >= 10_000, "only {} documents", docs.len());
    assert!(
        accepted >= 1000,
        "only {accepted} accepted: the sweep is vacuous"
    );
    assert!(
        refused >= 1000,
        "only {refused} refused: the sweep is vacuous"
    );
}

// ---------------------------------------------------------------------------------------------
// Targeted refusals, and what the reference says of them.

fn text(v: &Value) -> String {
    serde_json::to_string(v).expect("json")
}

/// Refused in one pass; the reference's answer.
fn refused(input: &str) -> callbacks::event::Rejected {
    assert!(
        read_one_pass(input.as_bytes()).is_none(),
        "read in one pass: {input}"
    );
    assert!(!agree(input.as_bytes()));
    parse_value(input.as_bytes()).expect_err(input)
}

fn pointers(r: &callbacks::event::Rejected) -> Vec<String> {
    r.error.fields().into_iter().map(|f| f.pointer).collect()
}

#[test]
fn the_other_type_with_this_data_is_refused_by_both() {
    let m = text(&message_event("e-1", "client-a", "DELIVERED"));
    let c = text(&channel_event("e-2", "client-a", "FAILED", "read"));
    for (input, missing) in [
        (m.replace(MESSAGE_TYPE, CHANNEL_TYPE), "/data"),
        (c.replace(CHANNEL_TYPE, MESSAGE_TYPE), "/data"),
        (
            m.replace(
                MESSAGE_TYPE,
                "uk.nhs.notify.client-callbacks.channel.status.PUBLISHED.v1",
            ),
            "/data",
        ),
    ] {
        let r = refused(&input);
        assert!(
            pointers(&r).iter().any(|p| p.starts_with(missing)),
            "{input}: {r}"
        );
    }
}

#[test]
fn an_unknown_type_is_refused_by_both_whatever_else_names_a_type() {
    let m = message_event("e-1", "client-a", "DELIVERED");
    for (claim, elsewhere) in [
        ("bogus", MESSAGE_TYPE),
        (&format!("{MESSAGE_TYPE}x"), MESSAGE_TYPE),
        ("uk.nhs.notify.message.status.PUBLISHED.v2", MESSAGE_TYPE),
    ] {
        let mut v = m.clone();
        v["type"] = json!(claim);
        v["subject"] = json!(elsewhere);
        let input = text(&v);
        let r = refused(&input);
        assert!(pointers(&r).iter().any(|p| p == "/type"), "{input}: {r}");
    }
}

#[test]
fn envelope_values_outside_the_schema_are_refused_by_both() {
    let m = text(&message_event("e-1", "client-a", "DELIVERED"));
    let cases = [
        (
            m.replace(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
            ),
            "/traceparent",
        ),
        (
            m.replace(r#""specversion":"1.0""#, r#""specversion":"1.1""#),
            "/specversion",
        ),
        (
            m.replace(
                r#""createdDate":"2023-11-17T14:27:51.413Z""#,
                r#""createdDate":"2023-11-17T14:27:51.413Z","extra":"x""#,
            ),
            "/data/routingPlan",
        ),
    ];
    for (input, pointer) in &cases {
        let r = refused(input);
        assert!(
            pointers(&r).iter().any(|p| p.starts_with(pointer)),
            "{input}: {r}"
        );
        assert_eq!(r.event_id.as_deref(), Some("e-1"), "{input}");
    }
}

#[test]
fn integers_outside_the_schema_are_refused_by_both() {
    let c = text(&channel_event("e-2", "client-a", "FAILED", "read"));
    for (input, pointer) in [
        // An integer-valued number is an integer to the schema; the typed read refuses it.
        (
            c.replace(r#""retryCount":0"#, r#""retryCount":1.0"#),
            "/data",
        ),
        (
            c.replace(r#""cascadeOrder":1"#, r#""cascadeOrder":0"#),
            "/data/cascadeOrder",
        ),
    ] {
        let r = refused(&input);
        assert!(pointers(&r).iter().any(|p| p == pointer), "{input}: {r}");
    }
}

#[test]
fn a_repeated_id_spelled_with_an_escape_is_refused_by_both() {
    let m = text(&message_event("e-1", "client-a", "DELIVERED"));
    let input = m.replace(r#""id":"e-1""#, r#""id":"e-1","i\u0064":"e-2""#);
    let r = refused(&input);
    assert_eq!(pointers(&r), ["/id"], "{r}");
    assert!(r.to_string().contains("repeats"), "{r}");
    assert_eq!(r.event_id, None);
    // Spelled with the escape alone, it is the same member, read the same by both.
    let renamed = m.replace(r#""id":"e-1""#, r#""i\u0064":"e-1""#);
    assert!(agree(renamed.as_bytes()), "{renamed}");
    assert_eq!(
        read_one_pass(renamed.as_bytes()).expect("read").meta.id,
        "e-1"
    );
}
