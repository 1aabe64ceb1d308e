//! The lexical layer of the fast JSON readers ([`super::scan`]'s tree, [`super::lex::de`]'s
//! serde deserializer): white space, literals, strings (borrowed unless escaped) and numbers,
//! over text already known to be valid UTF-8. Each answers only when sure: `None` means the
//! text is not what `serde_json` reads the same way, and the caller asks `serde_json` instead.
//! Numbers other than plain non-negative integers are read by `serde_json` itself, so they mean
//! what they mean there.

pub mod de;

use std::borrow::Cow;

use serde_json::Number;

/// Deeper nesting is left to `serde_json` (which refuses past 128 levels).
pub const MAX_DEPTH: usize = 100;

/// A position in JSON text that is valid UTF-8 as a whole (so every run between two ASCII
/// bytes is valid UTF-8 too, and a non-ASCII byte outside a string is refused by the grammar,
/// as serde_json refuses it).
pub struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `bytes`; `None` if they are not UTF-8.
    pub fn new(bytes: &'a [u8]) -> Option<Lexer<'a>> {
        let text = simdutf8::basic::from_utf8(bytes).ok()?;
        Some(Lexer {
            text,
            bytes,
            pos: 0,
        })
    }

    pub fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after white space, consumed.
    pub fn next_token(&mut self) -> Option<u8> {
        self.skip_ws();
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// The next byte after white space, not consumed.
    pub fn peek_token(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    /// Consumes `rest` (the remainder of `true`, `false` or `null` after its first byte).
    pub fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.pos + rest.len();
        (self.bytes.get(self.pos..end)? == rest).then(|| {
            self.pos = end;
        })
    }

    /// Whether only white space is left.
    pub fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.bytes.len()
    }

    /// A string's contents, after its opening quote; borrowed unless it has escapes.
    #[inline]
    pub fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos;
        let end = self.plain_run(start)?;
        if self.bytes[end] == b'"' {
            self.pos = end + 1;
            return Some(Cow::Borrowed(self.run(start, end)));
        }
        self.escaped(start, end).map(Cow::Owned)
    }

    /// The rest of a string with escapes, whose first run is `start..end` (`end` at a
    /// backslash). Out of line: most strings have none.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, start: usize, end: usize) -> Option<String> {
        let mut out = String::from(self.run(start, end));
        self.pos = end;
        loop {
            // At a backslash.
            self.pos += 1;
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            match b {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => out.push(self.unicode_escape()?),
                _ => return None,
            }
            let from = self.pos;
            let end = self.plain_run(from)?;
            out.push_str(self.run(from, end));
            self.pos = end;
            if self.bytes[end] == b'"' {
                self.pos = end + 1;
                return Some(out);
            }
        }
    }

    /// The text of a run of string bytes: `start` just after a `"` or an escape, `end` at the
    /// `"` or `\` after it ([`Lexer::plain_run`]).
    #[inline]
    fn run(&self, start: usize, end: usize) -> &'a str {
        debug_assert!(start <= end && end < self.bytes.len());
        debug_assert!(self.text.is_char_boundary(start) && self.text.is_char_boundary(end));
        // SAFETY: `plain_run` gave `end` as the position of a byte of the text at or after
        // `start`, so `start <= end < len`; both are just after or at an ASCII byte (a quote, a
        // backslash or the last byte of an escape) of valid UTF-8 text, where no character's
        // encoding is split, so both are character boundaries.
        unsafe { self.text.get_unchecked(start..end) }
    }

    /// The end of the run of string bytes from `from`: the position of the next `"` or `\`;
    /// `None` at a control character (which JSON refuses unescaped) or the end of the text.
    fn plain_run(&self, from: usize) -> Option<usize> {
        let i = next_special(self.bytes, from)?;
        (self.bytes[i] >= 0x20).then_some(i)
    }

    /// The character of `\uXXXX` (after the `u`), a surrogate pair taken whole; `None` for a
    /// lone surrogate.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if !(0xD800..0xE000).contains(&first) {
            return char::from_u32(first);
        }
        if first >= 0xDC00 || self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
            return None;
        }
        self.pos += 2;
        let second = self.hex4()?;
        if !(0xDC00..0xE000).contains(&second) {
            return None;
        }
        char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let mut n = 0;
        for &d in digits {
            n = n * 16 + char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(n)
    }

    /// A number, after its first byte: a plain integer of up to 19 digits directly, anything
    /// else through `serde_json`.
    pub fn number(&mut self) -> Option<Number> {
        let start = self.pos - 1;
        let mut end = self.pos;
        while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.bytes.get(end) {
            end += 1;
        }
        self.pos = end;
        let text = &self.bytes[start..end];
        let simple = text.len() <= 19
            && text.iter().all(u8::is_ascii_digit)
            && (text[0] != b'0' || text.len() == 1);
        if simple {
            let n = text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            return Some(n.into());
        }
        serde_json::from_slice::<Number>(text).ok()
    }
}

/// The position of the first byte from `from` on that a JSON string cannot hold as it is: `"`,
/// `\` or a control character (below 0x20). Sixteen bytes at a time with SSE2 (part of every
/// x86-64), then eight at a time ([`next_special_words`]).
pub fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut i = from;
        while let Some(chunk) = bytes.get(i..i + 16) {
            // SAFETY: SSE2 is part of the x86-64 baseline, so these instructions exist; `chunk`
            // is 16 readable bytes and the load has no alignment requirement.
            let mask = unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr().cast());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // max(b, 0x1f) == 0x1f exactly when b <= 0x1f (unsigned).
                let low = _mm_set1_epi8(0x1f);
                let control = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
            };
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
        next_special_words(bytes, i)
    }
    #[cfg(not(target_arch = "x86_64"))]
    next_special_words(bytes, from)
}

/// [`next_special`] eight bytes at a time: a byte is flagged if it is one of those, and the
/// lowest flagged byte of a word is exact (a borrow only runs upwards from a flagged byte).
pub fn next_special_words(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let flagged = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let flagged = flagged & HIGH;
        if flagged != 0 {
            return Some(i + (flagged.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i.min(bytes.len())..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|at| i + at)
}
