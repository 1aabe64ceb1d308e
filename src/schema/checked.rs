//! The one-pass reader: a `serde` deserializer that wraps another ([`super::lex::de`], over the
//! event bytes) and checks every value against its [`Plan`] as the typed read takes it, so parsing,
//! validation and the typed read are a single walk over the bytes.
//!
//! Members the typed read skips are read all the same (their plans still apply); every object
//! at any depth must repeat no member name; `null` is admitted only where the plan allows any
//! value. Whatever the plan does not admit ends the read with an error: the caller then leaves
//! the document to the validating paths, which decide it and explain a refusal.

mod access;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

use super::lex::de::read_with;
use super::plan::{Plan, StrRule};
use access::{CheckMap, CheckSeq};

/// Reads a `T` from JSON text, every value checked against `plan`; `None` when the plan does
/// not admit the document (or it is not one JSON value).
pub fn read<'de, T: de::Deserialize<'de>>(plan: &Plan, bytes: &'de [u8]) -> Option<T> {
    read_with(bytes, |de| T::deserialize(Checked { plan, de })).ok()
}

/// The message of every refusal (never shown: a refusal only sends the document elsewhere).
const OUTSIDE: &str = "outside the reading plan";

fn outside<E: de::Error>() -> E {
    E::custom(OUTSIDE)
}

/// A deserializer whose value must follow `plan`.
pub struct Checked<'p, D> {
    plan: &'p Plan,
    de: D,
}

impl<'de, 'p, D: Deserializer<'de>> Deserializer<'de> for Checked<'p, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let plan = self.plan;
        let visitor = Check {
            plan,
            inner: visitor,
        };
        match plan {
            Plan::Str(_) => self.de.deserialize_str(visitor),
            Plan::Object(_) => self.de.deserialize_map(visitor),
            Plan::Array(_) => self.de.deserialize_seq(visitor),
            Plan::Int(_) | Plan::Any => self.de.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_option(CheckOption {
            plan: self.plan,
            inner: visitor,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        // Only a string names a unit variant here (serde_json would also take `{"V": ...}`).
        let Plan::Str(_) = self.plan else {
            return Err(outside());
        };
        self.de.deserialize_str(Check {
            plan: self.plan,
            inner: UnitVariant(visitor),
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// A seed whose value must follow `plan`.
pub struct CheckedSeed<'p, S> {
    plan: &'p Plan,
    seed: S,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for CheckedSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Checked {
            plan: self.plan,
            de,
        })
    }
}

/// Checks what the wrapped deserializer reports, then passes it on to `inner`.
struct Check<'p, V> {
    plan: &'p Plan,
    inner: V,
}

impl<V> Check<'_, V> {
    fn string<E: de::Error>(&self, s: &str) -> Result<(), E> {
        match self.plan {
            Plan::Any => Ok(()),
            Plan::Str(rule) if StrRule::admits(rule, s) => Ok(()),
            _ => Err(outside()),
        }
    }

    fn integer<E: de::Error>(&self, n: i128) -> Result<(), E> {
        match self.plan {
            Plan::Any => Ok(()),
            Plan::Int(rule) if rule.admits(n) => Ok(()),
            _ => Err(outside()),
        }
    }

    fn any<E: de::Error>(&self) -> Result<(), E> {
        match self.plan {
            Plan::Any => Ok(()),
            _ => Err(outside()),
        }
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Check<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        self.string(s)?;
        self.inner.visit_str(s)
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<V::Value, E> {
        self.string(s)?;
        self.inner.visit_borrowed_str(s)
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<V::Value, E> {
        self.string(&s)?;
        self.inner.visit_string(s)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<V::Value, E> {
        self.integer(i128::from(n))?;
        self.inner.visit_u64(n)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<V::Value, E> {
        self.integer(i128::from(n))?;
        self.inner.visit_i64(n)
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<V::Value, E> {
        self.any()?;
        self.inner.visit_f64(n)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<V::Value, E> {
        self.any()?;
        self.inner.visit_bool(b)
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.any()?;
        self.inner.visit_unit()
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let rule = match self.plan {
            Plan::Object(rule) => Some(rule),
            Plan::Any => None,
            _ => return Err(outside()),
        };
        let mut map = CheckMap::new(rule, map);
        let value = self.inner.visit_map(&mut map)?;
        map.finished()?;
        Ok(value)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let items = match self.plan {
            Plan::Array(items) => items,
            Plan::Any => &super::plan::ANY,
            _ => return Err(outside()),
        };
        self.inner.visit_seq(CheckSeq::new(items, seq))
    }
}

/// An optional value: present, it follows `plan`; `null` is left to the normalising paths.
struct CheckOption<'p, V> {
    plan: &'p Plan,
    inner: V,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for CheckOption<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Checked {
            plan: self.plan,
            de,
        })
    }
}

/// Hands a (checked) string to an enum's visitor as the name of a unit variant.
struct UnitVariant<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for UnitVariant<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.expecting(f)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        self.0.visit_enum(de::value::StrDeserializer::new(s))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<V::Value, E> {
        self.0
            .visit_enum(de::value::BorrowedStrDeserializer::new(s))
    }
}
