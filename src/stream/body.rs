//! The body of a request line, written once two ways at a time, into buffers reused from event
//! to event: the compact JSON that is signed (byte for byte what `serde_json::to_writer`
//! writes, [`crate::transform::body`]) and the same text escaped for the line's `"body"`
//! string (as `serde_json` escapes a string).
//!
//! Strings are escaped eight bytes at a time ([`next_special`]); numbers, booleans and `null`
//! are written by `serde_json` itself. What the payload types do not use (maps, tuples, enum
//! variants with data, `serde_json`'s raw values) is not written here: the whole body then
//! goes through `serde_json` and is escaped after.

use serde::ser::{self, Impossible, Serialize};
use serde_json::Error;

use crate::schema::lex::next_special;

/// The two forms of one body.
#[derive(Default)]
pub struct Body {
    /// Compact JSON: the exact request body.
    pub raw: Vec<u8>,
    /// `raw` escaped as the inside of a JSON string (without the quotes).
    pub escaped: Vec<u8>,
}

impl Body {
    /// Writes `value` in both forms (the buffers are cleared first).
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.raw.clear();
        self.escaped.clear();
        if value.serialize(Writer(self)).is_ok() {
            return Ok(());
        }
        self.raw.clear();
        self.escaped.clear();
        serde_json::to_writer(&mut self.raw, value)?;
        embed(&mut self.escaped, &self.raw)
    }
}

/// Appends `text` escaped as the inside of a JSON string, as `serde_json` escapes it: `"`, `\`
/// and control characters, the runs between them copied whole.
pub fn embed(out: &mut Vec<u8>, text: &[u8]) -> Result<(), Error> {
    let mut start = 0;
    while let Some(at) = next_special(text, start) {
        out.extend_from_slice(&text[start..at]);
        match text[at] {
            b @ (b'"' | b'\\') => out.extend_from_slice(&[b'\\', b]),
            c => {
                let quoted = serde_json::to_vec(&char::from(c))?;
                out.extend_from_slice(&quoted[1..quoted.len() - 1]);
            }
        }
        start = at + 1;
    }
    out.extend_from_slice(&text[start..]);
    Ok(())
}

/// Appends `b` to `v`; runs of up to sixteen bytes (most of a payload's) by two overlapping
/// word copies rather than a call to `memcpy`.
#[inline]
fn put(v: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n > 16 {
        v.extend_from_slice(b);
        return;
    }
    v.reserve(16);
    let len = v.len();
    let src = b.as_ptr();
    // SAFETY: `reserve(16)` leaves at least sixteen bytes of capacity after `len`, and every
    // write below lies in `len..len + n` with `n <= 16`; every read lies in `b` (`0..n`). The
    // first `n` bytes after `len` are then initialised, so `set_len(len + n)` is sound.
    unsafe {
        let dst = v.as_mut_ptr().add(len);
        if n >= 8 {
            let head = std::ptr::read_unaligned(src.cast::<u64>());
            let tail = std::ptr::read_unaligned(src.add(n - 8).cast::<u64>());
            std::ptr::write_unaligned(dst.cast::<u64>(), head);
            std::ptr::write_unaligned(dst.add(n - 8).cast::<u64>(), tail);
        } else if n >= 4 {
            let head = std::ptr::read_unaligned(src.cast::<u32>());
            let tail = std::ptr::read_unaligned(src.add(n - 4).cast::<u32>());
            std::ptr::write_unaligned(dst.cast::<u32>(), head);
            std::ptr::write_unaligned(dst.add(n - 4).cast::<u32>(), tail);
        } else {
            for i in 0..n {
                *dst.add(i) = *src.add(i);
            }
        }
        v.set_len(len + n);
    }
}

fn unsupported() -> Error {
    ser::Error::custom("left to serde_json")
}

struct Writer<'b>(&'b mut Body);

impl Writer<'_> {
    fn both(&mut self, raw: &[u8], escaped: &[u8]) {
        put(&mut self.0.raw, raw);
        put(&mut self.0.escaped, escaped);
    }

    /// A member name and its colon.
    fn key(&mut self, key: &str) -> Result<(), Error> {
        self.string(key)?;
        self.both(b":", b":");
        Ok(())
    }

    /// A scalar as `serde_json` writes it.
    fn scalar<T: Serialize>(self, v: T) -> Result<(), Error> {
        let start = self.0.raw.len();
        serde_json::to_writer(&mut self.0.raw, &v)?;
        embed(&mut self.0.escaped, &self.0.raw[start..])
    }

    fn string(&mut self, s: &str) -> Result<(), Error> {
        let bytes = s.as_bytes();
        let Some(first) = next_special(bytes, 0) else {
            // No specials (most strings): the same bytes in both forms, between quotes.
            let (raw, escaped) = (&mut self.0.raw, &mut self.0.escaped);
            raw.push(b'"');
            put(raw, bytes);
            raw.push(b'"');
            escaped.extend_from_slice(b"\\\"");
            put(escaped, bytes);
            escaped.extend_from_slice(b"\\\"");
            return Ok(());
        };
        self.both(b"\"", b"\\\"");
        let mut start = 0;
        let mut next = Some(first);
        while let Some(at) = next {
            self.both(&bytes[start..at], &bytes[start..at]);
            match bytes[at] {
                b'"' => self.both(b"\\\"", b"\\\\\\\""),
                b'\\' => self.both(b"\\\\", b"\\\\\\\\"),
                c => {
                    let quoted = serde_json::to_vec(&char::from(c))?;
                    let inner = &quoted[1..quoted.len() - 1];
                    self.0.raw.extend_from_slice(inner);
                    embed(&mut self.0.escaped, inner)?;
                }
            }
            start = at + 1;
            next = next_special(bytes, start);
        }
        self.both(&bytes[start..], &bytes[start..]);
        self.both(b"\"", b"\\\"");
        Ok(())
    }
}

/// A sequence or a struct being written.
struct Compound<'b> {
    body: &'b mut Body,
    first: bool,
}

impl Compound<'_> {
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.body.raw.push(b',');
            self.body.escaped.push(b',');
        }
    }
}

macro_rules! scalars {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method(self, v: $ty) -> Result<(), Error> {
            self.scalar(v)
        })*
    };
}

impl<'b> ser::Serializer for Writer<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'b>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Compound<'b>;
    type SerializeStructVariant = Impossible<(), Error>;

    scalars!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_bytes: &[u8]);

    fn serialize_char(mut self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(mut self, v: &str) -> Result<(), Error> {
        self.string(v)
    }
    fn serialize_none(mut self) -> Result<(), Error> {
        self.both(b"null", b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(unsupported())
    }
    fn serialize_seq(mut self, _: Option<usize>) -> Result<Compound<'b>, Error> {
        self.both(b"[", b"[");
        Ok(Compound {
            body: self.0,
            first: true,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(unsupported())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(unsupported())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(unsupported())
    }
    fn serialize_struct(mut self, name: &'static str, _: usize) -> Result<Compound<'b>, Error> {
        // `serde_json`'s own types (a raw value, an arbitrary-precision number) are written
        // by it.
        if name.starts_with("$serde_json") {
            return Err(unsupported());
        }
        self.both(b"{", b"{");
        Ok(Compound {
            body: self.0,
            first: true,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.separate();
        value.serialize(Writer(&mut *self.body))
    }
    fn end(self) -> Result<(), Error> {
        self.body.raw.push(b']');
        self.body.escaped.push(b']');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.separate();
        Writer(&mut *self.body).key(key)?;
        value.serialize(Writer(&mut *self.body))
    }
    fn end(self) -> Result<(), Error> {
        self.body.raw.push(b'}');
        self.body.escaped.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
