//! A `serde` deserializer over the [`Lexer`]: JSON text read straight into typed values, with
//! strings borrowed from the text unless escaped. It reads what `serde_json` reads, the same
//! way, or refuses ([`Refused`]); the one-pass event read wraps it in
//! [`crate::schema::checked`]. Member names are passed on as they are: repeats are the caller's
//! to refuse.

use std::borrow::Cow;

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Lexer, MAX_DEPTH};

/// The text is not JSON this reader is sure of, or the typed read refused it. Carries no
/// message: a refusal only sends the text to the paths that explain.
#[derive(Debug, thiserror::Error)]
#[error("refused by the fast reader")]
pub struct Refused;

impl de::Error for Refused {
    fn custom<T: std::fmt::Display>(_: T) -> Refused {
        Refused
    }
}

/// Reads one `T` from the whole of `bytes`.
pub fn from_slice<'a, T: de::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Refused> {
    read_with(bytes, |de| T::deserialize(de))
}

/// Runs `read` on a deserializer over `bytes`, which must then be at their end.
pub fn read_with<'a, T>(
    bytes: &'a [u8],
    read: impl FnOnce(&mut JsonDe<'a>) -> Result<T, Refused>,
) -> Result<T, Refused> {
    let mut de = JsonDe {
        lex: Lexer::new(bytes).ok_or(Refused)?,
        depth: 0,
    };
    let value = read(&mut de)?;
    if de.lex.at_end() {
        Ok(value)
    } else {
        Err(Refused)
    }
}

/// The deserializer: a lexer and how deep in arrays and objects it is.
pub struct JsonDe<'a> {
    lex: Lexer<'a>,
    depth: usize,
}

impl<'a> JsonDe<'a> {
    fn nest(&mut self) -> Result<(), Refused> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(Refused)
        } else {
            Ok(())
        }
    }

    fn string<V: Visitor<'a>>(&mut self, visitor: V) -> Result<V::Value, Refused> {
        match self.lex.string().ok_or(Refused)? {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn number<V: Visitor<'a>>(&mut self, visitor: V) -> Result<V::Value, Refused> {
        let n = self.lex.number().ok_or(Refused)?;
        if let Some(u) = n.as_u64() {
            visitor.visit_u64(u)
        } else if let Some(i) = n.as_i64() {
            visitor.visit_i64(i)
        } else {
            visitor.visit_f64(n.as_f64().ok_or(Refused)?)
        }
    }
}

impl<'de> Deserializer<'de> for &mut JsonDe<'de> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.lex.next_token().ok_or(Refused)? {
            b'{' => {
                self.nest()?;
                let mut members = Members {
                    de: &mut *self,
                    first: true,
                    ended: false,
                };
                let value = visitor.visit_map(&mut members)?;
                if !members.ended {
                    return Err(Refused);
                }
                self.depth -= 1;
                Ok(value)
            }
            b'[' => {
                self.nest()?;
                let mut items = Items {
                    de: &mut *self,
                    first: true,
                    ended: false,
                };
                let value = visitor.visit_seq(&mut items)?;
                if !items.ended {
                    return Err(Refused);
                }
                self.depth -= 1;
                Ok(value)
            }
            b'"' => self.string(visitor),
            b't' => self
                .lex
                .literal(b"rue")
                .ok_or(Refused)
                .and_then(|()| visitor.visit_bool(true)),
            b'f' => self
                .lex
                .literal(b"alse")
                .ok_or(Refused)
                .and_then(|()| visitor.visit_bool(false)),
            b'n' => self
                .lex
                .literal(b"ull")
                .ok_or(Refused)
                .and_then(|()| visitor.visit_unit()),
            b'-' | b'0'..=b'9' => self.number(visitor),
            _ => Err(Refused),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        if self.lex.peek_token() == Some(b'n') {
            self.lex.pos += 1;
            self.lex.literal(b"ull").ok_or(Refused)?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refused> {
        // Unit variants only, named by a string.
        if self.lex.next_token() != Some(b'"') {
            return Err(Refused);
        }
        match self.lex.string().ok_or(Refused)? {
            Cow::Borrowed(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            Cow::Owned(s) => visitor.visit_enum(StringDeserializer::new(s)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// An object's members, after its `{`.
struct Members<'d, 'a> {
    de: &'d mut JsonDe<'a>,
    first: bool,
    /// The closing bracket was read.
    ended: bool,
}

impl<'a> MapAccess<'a> for Members<'_, 'a> {
    type Error = Refused;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Refused> {
        let lex = &mut self.de.lex;
        match (lex.next_token(), std::mem::replace(&mut self.first, false)) {
            (Some(b'}'), _) => {
                self.ended = true;
                return Ok(None);
            }
            (Some(b'"'), true) => {}
            (Some(b','), false) if lex.next_token() == Some(b'"') => {}
            _ => return Err(Refused),
        }
        let name = lex.string().ok_or(Refused)?;
        if lex.next_token() != Some(b':') {
            return Err(Refused);
        }
        match name {
            Cow::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)),
            Cow::Owned(s) => seed.deserialize(StringDeserializer::new(s)),
        }
        .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'a>>(&mut self, seed: S) -> Result<S::Value, Refused> {
        seed.deserialize(&mut *self.de)
    }
}

/// An array's items, after its `[`.
struct Items<'d, 'a> {
    de: &'d mut JsonDe<'a>,
    first: bool,
    /// The closing bracket was read.
    ended: bool,
}

impl<'a> SeqAccess<'a> for Items<'_, 'a> {
    type Error = Refused;

    fn next_element_seed<S: DeserializeSeed<'a>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Refused> {
        let lex = &mut self.de.lex;
        match lex.peek_token() {
            Some(b']') => {
                lex.pos += 1;
                self.ended = true;
                return Ok(None);
            }
            Some(b',') if !self.first => lex.pos += 1,
            Some(_) if self.first => {}
            _ => return Err(Refused),
        }
        self.first = false;
        seed.deserialize(&mut *self.de).map(Some)
    }
}
