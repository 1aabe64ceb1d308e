//! A borrowed JSON document for the validator's fast path.
//!
//! Strings point into the input bytes (copied only when they hold escapes) and objects are
//! member lists, so parsing builds no maps and allocates a fraction of what
//! `serde_json::Value` does. The `jsonschema` validators read it through that crate's
//! extension traits ([`super::tree_json`]), so the same compiled schemas apply.
//!
//! Semantics match `serde_json::Value` exactly where validation can see them: numbers are
//! `serde_json::Number`s parsed by the same parser. An object keeps every member as written,
//! a repeated name included; [`Tree::duplicate_member`] finds one, and event parsing refuses
//! such a document on every path (RFC 8259 leaves a repeated name's meaning undefined, so the
//! routing decision would depend on the parser). Lookups read the last occurrence, as a
//! `Value` map keeps it.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{Deserialize, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// One JSON value, borrowing from the text it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Tree<'a>>),
    Object(Vec<(Cow<'a, str>, Tree<'a>)>),
}

impl<'a> Tree<'a> {
    /// Parses JSON text (the same parser and limits as `serde_json::from_slice`).
    pub fn parse(bytes: &'a [u8]) -> Result<Tree<'a>, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The member `name` of an object (the last one, if the name repeats).
    pub fn get(&self, name: &str) -> Option<&Tree<'a>> {
        match self {
            Tree::Object(members) => members.iter().rev().find(|(k, _)| k == name).map(|m| &m.1),
            _ => None,
        }
    }

    /// The JSON pointer of the first member whose name repeats an earlier member of the same
    /// object (the later occurrence), searching the whole document in order; `None` when every
    /// object's member names are distinct.
    pub fn duplicate_member(&self) -> Option<String> {
        match self {
            Tree::Object(members) => {
                for (i, (name, value)) in members.iter().enumerate() {
                    if members[..i].iter().any(|(earlier, _)| earlier == name) {
                        return Some(pointer_step(name));
                    }
                    if let Some(inner) = value.duplicate_member() {
                        return Some(pointer_step(name) + &inner);
                    }
                }
                None
            }
            Tree::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| item.duplicate_member().map(|inner| format!("/{i}{inner}"))),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Tree::String(s) => Some(s),
            _ => None,
        }
    }

    /// The equivalent `serde_json::Value` (error paths only).
    pub fn to_value(&self) -> Value {
        match self {
            Tree::Null => Value::Null,
            Tree::Bool(b) => Value::Bool(*b),
            Tree::Number(n) => Value::Number(n.clone()),
            Tree::String(s) => Value::String(s.to_string()),
            Tree::Array(items) => Value::Array(items.iter().map(Tree::to_value).collect()),
            Tree::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// One JSON pointer step naming the member `name` (`/` and RFC 6901 escaping).
pub(crate) fn pointer_step(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    out.push('/');
    out.push_str(&name.replace('~', "~0").replace('/', "~1"));
    out
}

/// A string that borrows from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Tree<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tree<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Tree<'de>, E> {
                Ok(Tree::Null)
            }
            fn visit_none<E>(self) -> Result<Tree<'de>, E> {
                Ok(Tree::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Tree<'de>, E> {
                Ok(Tree::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Tree<'de>, E> {
                Ok(Tree::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Tree<'de>, E> {
                Ok(Tree::Number(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Tree<'de>, E> {
                // As `serde_json::Value` does: a non-finite float (impossible in JSON text)
                // becomes null.
                Ok(Number::from_f64(n).map_or(Tree::Null, Tree::Number))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Tree<'de>, E> {
                Ok(Tree::String(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Tree<'de>, E> {
                Ok(Tree::String(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Tree<'de>, E> {
                Ok(Tree::String(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree<'de>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Tree::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree<'de>, A::Error> {
                // Room for a typical object at its first member; an empty object allocates
                // nothing (no more memory per input byte than a `Value` takes).
                let mut members = Vec::new();
                while let Some((Text(k), v)) = map.next_entry::<Text<'de>, Tree<'de>>()? {
                    if members.is_empty() {
                        members.reserve(map.size_hint().unwrap_or(0).clamp(8, 64));
                    }
                    members.push((k, v));
                }
                Ok(Tree::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}

/// Typed reads from a parsed [`Tree`] (strings are handed out borrowed), so the accept path
/// deserializes the generated types without scanning the JSON text a second time.
impl<'de> Deserializer<'de> for &'de Tree<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Tree::Null => visitor.visit_unit(),
            Tree::Bool(b) => visitor.visit_bool(*b),
            Tree::Number(n) => n.deserialize_any(visitor),
            Tree::String(s) => visitor.visit_borrowed_str(s),
            Tree::Array(items) => {
                let mut seq = SeqDeserializer::new(items.iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Tree::Object(members) => {
                let mut map = MapDeserializer::new(
                    members
                        .iter()
                        .map(|(k, v)| (BorrowedStrDeserializer::new(k.as_ref()), v)),
                );
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Tree::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Tree::String(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            _ => Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Other("a non-string value"),
                &"a unit variant name",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for &'de Tree<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_borrow_unless_escaped_and_numbers_match_serde_json() {
        let text = br#"{"a":"plain","b":"esc\"aped","n":[1,-2,2.5,1e2,18446744073709551615],"t":true,"z":null}"#;
        let tree = Tree::parse(text).expect("json");
        assert!(matches!(
            tree.get("a"),
            Some(Tree::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(tree.get("b"), Some(Tree::String(Cow::Owned(s))) if s == "esc\"aped"));
        let value: Value = serde_json::from_slice(text).expect("json");
        assert_eq!(tree.to_value(), value);
    }

    #[test]
    fn a_repeated_key_reads_as_its_last_occurrence_like_a_value_map() {
        let text = br#"{"k":1,"k":2}"#;
        let tree = Tree::parse(text).expect("json");
        let value: Value = serde_json::from_slice(text).expect("json");
        assert_eq!(tree.get("k").map(Tree::to_value), value.get("k").cloned());
        let members = match &tree {
            Tree::Object(m) => m.as_slice(),
            _ => panic!("object"),
        };
        let found = jsonschema::json::Object::<super::super::tree_json::TreeJson>::get(
            &members,
            &"k".to_string(),
        )
        .map(Tree::to_value);
        assert_eq!(found, Some(Value::from(2)));
    }

    #[test]
    fn duplicate_member_names_the_pointer_of_the_repeat_at_any_depth() {
        let cases: [(&[u8], Option<&str>); 7] = [
            (br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#, None),
            (br#"{"a":1,"a":2}"#, Some("/a")),
            (br#"{"a":1,"b":{"x":1,"y":2,"x":3}}"#, Some("/b/x")),
            (br#"{"l":[{"k":1},{"k":1,"k":2}]}"#, Some("/l/1/k")),
            (br#"{"a/b":{"m~n":1,"m~n":1}}"#, Some("/a~1b/m~0n")),
            // The same name in different objects is not a repeat.
            (br#"{"k":{"k":{"k":1}}}"#, None),
            // An escaped spelling of the same name is the same name.
            (br#"{"id":"a","id":"b"}"#, Some("/id")),
        ];
        for (text, want) in cases {
            let tree = Tree::parse(text).expect("json");
            assert_eq!(
                tree.duplicate_member().as_deref(),
                want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
