use super::*;
use crate::schema::files;

/// Every `pattern` in the embedded schema files.
fn schema_patterns() -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(p)) = m.get("pattern") {
                    out.push(p.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (_, text) in files::SCHEMA_FILES {
        walk(&serde_json::from_str(text).expect("schema json"), &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// Strings near the patterns' languages: samples that match, each byte replaced, dropped or
/// doubled, and random ASCII.
fn probes() -> Vec<String> {
    let samples = [
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "2WL3qFTEFM0qMY8xjRbt1LIKCzM",
        "2025-11-03T09:12:44.018Z",
        "2025-11-03T09:12:44+01:00",
        "/data-plane/client-callbacks/core",
        "https://notify.nhs.uk/cloudevents/schemas/client-callbacks/message-status-data.v1.schema.json",
        "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1",
        "datacontenttype",
        "https://x.example/cb?a=1",
        "http://a",
        "x",
        "",
    ];
    let replacements = [
        b'0', b'a', b'Z', b'-', b' ', b'\t', b'.', b':', b'G', b'~', 0, 0x0b, 0x1f, 0x7f,
    ];
    let mut out: Vec<String> = Vec::new();
    for s in samples {
        out.push(s.to_string());
        let b = s.as_bytes();
        for i in 0..b.len() {
            for &r in &replacements {
                let mut m = b.to_vec();
                m[i] = r;
                out.push(String::from_utf8(m).expect("ascii"));
            }
            let mut dropped = b.to_vec();
            dropped.remove(i);
            out.push(String::from_utf8(dropped).expect("ascii"));
            let mut doubled = b.to_vec();
            doubled.insert(i, b[i]);
            out.push(String::from_utf8(doubled).expect("ascii"));
        }
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..5000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 70) as usize;
        out.push(
            (0..len)
                .map(|i| char::from(32 + ((x >> (i % 57)) % 95) as u8))
                .collect(),
        );
    }
    out
}

#[test]
fn byte_class_runs_answer_as_the_dfa_does_for_every_schema_pattern() {
    let patterns = schema_patterns();
    assert!(patterns.len() >= 5, "{patterns:?}");
    let probes = probes();
    let mut with_runs = 0;
    let mut with_tail = 0;
    for source in &patterns {
        let pattern = Pattern::new(source).expect("compiles");
        with_runs += usize::from(pattern.uses_runs());
        with_tail += usize::from(pattern.uses_runs_then_dfa());
        let mut matched = 0;
        for s in &probes {
            let want = pattern.dfa_matches(s);
            assert_eq!(pattern.matches(s), want, "{source} on {s:?}");
            matched += usize::from(want);
        }
        assert!(matched > 0, "no probe matches {source}");
    }
    // The fixed-shape patterns (trace context, KSUID, key, no white space, the https URL) take
    // the runs; the timestamp starts with runs and ends with a DFA.
    assert!(with_runs >= 5, "{with_runs} of {patterns:?}");
    assert!(with_tail >= 1, "{with_tail} of {patterns:?}");
}

#[test]
fn runs_with_a_varying_middle_or_a_dfa_tail_answer_as_the_whole_dfa_does() {
    // (pattern, whole as runs, runs then a DFA)
    let cases = [
        (r"^ab?c[0-9]+$", true, false),
        (r"^a*b+$", true, false),
        (r"^x[0-9]{0,3}y{2,}$", true, false),
        // Not disjoint or possibly empty after the varying run: the DFA alone.
        (r"^a?a$", false, false),
        (r"^[a-z]+[0-9]*x$", false, false),
        (r"^[0-9]{2}(x|yz)?$", false, true),
        (r"^ab[0-9]{3}(\.[0-9]+)?(Z|[+-][0-9]{2})$", false, true),
        (r"^[0-9]+(x|y)$", false, false),
    ];
    let mut probes = probes();
    for s in [
        "abc1",
        "ac12",
        "abbc1",
        "abc",
        "b",
        "aab",
        "aaabbb",
        "x12yy",
        "x1234yy",
        "xyy",
        "x1y",
        "aa",
        "a",
        "ab9x",
        "abx",
        "12",
        "12x",
        "12yz",
        "12y",
        "ab123",
        "ab123Z",
        "ab123.5+01",
        "ab123.Z",
        "ab12Z",
        "9x",
        "99y",
        "x",
    ] {
        probes.push(s.to_string());
    }
    for (source, whole, tail) in cases {
        let pattern = Pattern::new(source).expect("compiles");
        assert_eq!(pattern.uses_runs(), whole, "{source}");
        assert_eq!(pattern.uses_runs_then_dfa(), tail, "{source}");
        let reference = regex::Regex::new(source).expect("regex");
        let mut matched = 0;
        for s in &probes {
            let want = reference.is_match(s);
            assert_eq!(pattern.dfa_matches(s), want, "{source} on {s:?} (DFA)");
            assert_eq!(pattern.matches(s), want, "{source} on {s:?}");
            matched += usize::from(want);
        }
        assert!(matched > 0, "no probe matches {source}");
    }
}

#[test]
fn the_dfa_agrees_with_the_regex_crate_on_ascii() {
    for source in schema_patterns() {
        let pattern = Pattern::new(&source).expect("compiles");
        let reference = regex::Regex::new(&source).expect("regex");
        for s in probes() {
            assert_eq!(
                pattern.dfa_matches(&s),
                reference.is_match(&s),
                "{source} on {s:?}"
            );
        }
    }
}

#[test]
fn non_ascii_strings_are_never_admitted_under_a_pattern() {
    let pattern = Pattern::new(r"^[^\s]+$").expect("compiles");
    assert!(pattern.matches("caf"));
    assert!(!pattern.matches("caf\u{e9}"));
    assert!(!pattern.dfa_matches("caf\u{e9}"));
}

#[test]
fn a_name_index_finds_each_name_and_nothing_else() {
    let names: Vec<Box<str>> = [
        "",
        "a",
        "id",
        "data",
        "type",
        "previousMessageStatus",
        "previousChannelStatus",
        "previousMessageStatuz",
        "datacontenttype",
        "dataschema",
        "1234567",
        "12345678",
        "123456789",
        "messageReference",
        "messageReferencf",
        "0123456789abcdefg",
        "messageStatusDescription",
        "abcdefghXXijklmnopq",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    let index = NameIndex::new(names.clone());
    for (i, n) in names.iter().enumerate() {
        assert_eq!(index.find(n), Some(i), "{n}");
    }
    for other in [
        "b",
        "i",
        "dat",
        "datA",
        "previousMessageStatu",
        "1234568",
        "12345679",
        "data\0",
        "messageReferencee",
        "0123456789abcdefh",
        "0123456789abcdeg",
        "0123456789abXdefg",
        "messageStatusDescriptioN",
        "messageStatusDeXcription",
        "abcdefghXYijklmnopq",
        "abcdefghYXijklmnopq",
    ] {
        assert_eq!(index.find(other), None, "{other}");
    }
    assert_eq!(NameIndex::default().find("a"), None);
}

#[test]
fn every_registry_type_compiles_into_a_plan_that_fixes_its_type() {
    for entry in crate::schema::registry() {
        let plan = event_plan(&entry.event_type, &entry.data_schema).expect("plan");
        let Plan::Object(rule) = plan else {
            panic!("{}: not an object plan", entry.event_type)
        };
        let ty = rule.find("type").map(|i| &rule.members[i].plan);
        let Some(Plan::Str(ty)) = ty else {
            panic!("{}: no type member", entry.event_type)
        };
        assert!(ty.admits(&entry.event_type));
        assert!(!ty.admits("uk.nhs.notify.other"));
        for required in ["specversion", "id", "source", "type", "time", "data"] {
            let i = rule.find(required).expect(required);
            assert!(rule.required & (1 << i) != 0, "{required}");
        }
    }
}

#[test]
fn unknown_keywords_and_conflicting_types_have_no_plan() {
    let compile = |schema: serde_json::Value| {
        let doc = schema.clone();
        compile::schema_plan(&schema, &doc)
    };
    assert!(compile(serde_json::json!({"type": "string", "format": "uri"})).is_err());
    assert!(compile(serde_json::json!({"type": "number"})).is_err());
    assert!(
        compile(serde_json::json!({"allOf": [{"type": "string"}, {"type": "object"}]})).is_err()
    );
    assert!(
        compile(serde_json::json!({"oneOf": [{"enum": ["a", "b"]}, {"enum": ["b"]}]})).is_err()
    );
    assert!(compile(serde_json::json!({"minimum": 0.5})).is_err());
    let Ok(Plan::Str(rule)) =
        compile(serde_json::json!({"oneOf": [{"enum": ["a"]}, {"enum": ["B"]}], "maxLength": 1}))
    else {
        panic!("a oneOf of disjoint enumerations is planned")
    };
    assert!(rule.admits("a") && rule.admits("B") && !rule.admits("b"));
    let Ok(Plan::Object(rule)) = compile(serde_json::json!({
        "type": "object", "additionalProperties": false, "required": ["x"],
        "properties": {"x": {"type": "integer", "minimum": 1}}
    })) else {
        panic!("object planned")
    };
    assert!(rule.closed && rule.required == 1);
    assert!(matches!(&rule.members[0].plan, Plan::Int(r) if r.admits(1) && !r.admits(0)));
}

#[test]
fn names_compare_equal_exactly_when_they_are_equal() {
    let base: Vec<u8> = (0..24u8).map(|b| b'a' + b).collect();
    for n in 0..=base.len() {
        let a = &base[..n];
        assert!(names::same_name(a, a), "{n}");
        for i in 0..n {
            let mut b = a.to_vec();
            b[i] ^= 0x20;
            assert!(!names::same_name(a, &b), "{n} differ at {i}");
        }
        assert!(!names::same_name(a, &base[..n.saturating_sub(1)]) || n == 0);
    }
}

#[test]
fn members_are_found_whatever_order_they_come_in() {
    let names = [
        "specversion",
        "id",
        "source",
        "type",
        "data",
        "datacontenttype",
        "messageReference",
        "x",
    ];
    let rule = ObjectRule {
        members: names
            .iter()
            .map(|n| Member {
                name: (*n).into(),
                plan: Plan::Any,
                required: false,
            })
            .collect(),
        ..ObjectRule::default()
    }
    .seal()
    .expect("seals");
    let orders: [&[usize]; 4] = [
        &[0, 1, 2, 3, 4, 5, 6, 7],
        &[7, 6, 5, 4, 3, 2, 1, 0],
        &[0, 1, 2, 3, 4, 5, 6, 7],
        &[3, 0, 4, 1, 7],
    ];
    for round in 0..3 {
        for order in orders {
            let mut after = 0;
            for &i in order {
                assert_eq!(rule.find_after(after, names[i]), Some(i), "round {round}");
                assert_eq!(rule.find_after(after, "messageReferencf"), None);
                assert_eq!(rule.find_after(after, "i"), None);
                after = i + 1;
            }
        }
    }
}
