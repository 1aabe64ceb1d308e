//! A one-pass scanner from JSON text to a [`Tree`], for the accept fast path.
//!
//! It answers only when it is sure: `Some(tree)` is exactly what [`Tree::parse`] (`serde_json`)
//! gives for the same text, and no object of it repeats a member name. Anything else — invalid
//! JSON, a repeated name, a lone surrogate escape, nesting deeper than [`MAX_DEPTH`] — is `None`,
//! and the caller asks `serde_json` instead. Numbers other than plain non-negative integers are
//! read by `serde_json` itself, so they mean what they mean there.

use std::borrow::Cow;

use serde_json::Number;

use super::tree::Tree;

/// Deeper nesting is left to `serde_json` (which refuses past 128 levels).
pub const MAX_DEPTH: usize = 100;

/// The document `bytes` holds, if the scanner is sure of it (see the module documentation).
pub fn scan(bytes: &[u8]) -> Option<Tree<'_>> {
    // Valid UTF-8 as a whole, so every run between two ASCII bytes is valid UTF-8 too (and a
    // non-ASCII byte outside a string is refused by the grammar below, as serde_json does).
    let text = std::str::from_utf8(bytes).ok()?;
    let mut s = Scanner {
        text,
        bytes,
        pos: 0,
    };
    let tree = s.value(0)?;
    s.skip_ws();
    (s.pos == bytes.len()).then_some(tree)
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after white space, consumed.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_ws();
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn value(&mut self, depth: usize) -> Option<Tree<'a>> {
        match self.next_token()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(Tree::String),
            b't' => self.literal(b"rue", Tree::Bool(true)),
            b'f' => self.literal(b"alse", Tree::Bool(false)),
            b'n' => self.literal(b"ull", Tree::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, rest: &[u8], tree: Tree<'a>) -> Option<Tree<'a>> {
        let end = self.pos + rest.len();
        (self.bytes.get(self.pos..end)? == rest).then(|| {
            self.pos = end;
            tree
        })
    }

    fn object(&mut self, depth: usize) -> Option<Tree<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut members: Vec<(Cow<'a, str>, Tree<'a>)> = Vec::new();
        match self.next_token()? {
            b'}' => return Some(Tree::Object(members)),
            b'"' => {}
            _ => return None,
        }
        // Room for an event envelope or its data without growing.
        members.reserve(16);
        loop {
            let name = self.string()?;
            if members.iter().any(|(earlier, _)| *earlier == name) {
                return None;
            }
            if self.next_token()? != b':' {
                return None;
            }
            let value = self.value(depth)?;
            members.push((name, value));
            match self.next_token()? {
                b',' if self.next_token()? == b'"' => {}
                b'}' => return Some(Tree::Object(members)),
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Tree<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Some(Tree::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            match self.next_token()? {
                b',' => {}
                b']' => return Some(Tree::Array(items)),
                _ => return None,
            }
        }
    }

    /// A string's contents, after its opening quote; borrowed unless it has escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos;
        let end = self.plain_run(start)?;
        if self.bytes[end] == b'"' {
            self.pos = end + 1;
            return self.text.get(start..end).map(Cow::Borrowed);
        }
        let mut out = String::from(self.text.get(start..end)?);
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
            out.push_str(self.text.get(from..end)?);
            self.pos = end;
            if self.bytes[end] == b'"' {
                self.pos = end + 1;
                return Some(Cow::Owned(out));
            }
        }
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
    fn number(&mut self) -> Option<Tree<'a>> {
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
            return Some(Tree::Number(n.into()));
        }
        serde_json::from_slice::<Number>(text)
            .ok()
            .map(Tree::Number)
    }
}

/// The position of the first byte from `from` on that a JSON string cannot hold as it is: `"`,
/// `\` or a control character (below 0x20). Eight bytes at a time: a byte is flagged if it is
/// one of those, and the lowest flagged byte of a word is exact (a borrow only runs upwards
/// from a flagged byte).
pub fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `scan` is `None` or exactly `Tree::parse`; returns whether it answered.
    fn agrees(text: &[u8]) -> bool {
        let ours = scan(text);
        if let Some(tree) = &ours {
            assert_eq!(
                Some(tree),
                Tree::parse(text).ok().as_ref(),
                "{}",
                String::from_utf8_lossy(text)
            );
            assert!(tree.duplicate_member().is_none());
        }
        ours.is_some()
    }

    #[test]
    fn answers_as_serde_json_does_or_not_at_all() {
        let answered: &[&[u8]] = &[
            r#"{"a":"plain","b":"esc\"aped \\ \/ \b\f\n\r\t \u00e9\u2603 \ud83d\ude00 end","c":"caf\u00c3 é ☃ 😀"}"#.as_bytes(),
            br#" { "n" : [ 0, 1, 12, 1234567890123456789, 12345678901234567890, 18446744073709551616, -0, -1, -9223372036854775809, 0.5, 1e2, 1E-2, -2.5e+3, 1.0 ] } "#,
            br#"{"t":true,"f":false,"z":null,"e":{},"l":[],"x":[{"k":{"k":1}}]}"#,
            b"[1,2]",
            b"\"s\"",
            b"12",
            b"{\"\\u0000\":\"\\u0000\"}",
            b"{\"k\":\"\\\"\"}",
        ];
        for text in answered {
            assert!(agrees(text), "{}", String::from_utf8_lossy(text));
        }
        let refused: &[&[u8]] = &[
            b"",
            b" ",
            b"{",
            b"{\"a\":1,}",
            b"[1,]",
            b"{\"a\" 1}",
            b"{\"a\":1 \"b\":2}",
            b"{\"a\":1}x",
            b"{\"a\":1}{}",
            b"{'a':1}",
            b"{\"a\":01}",
            b"{\"a\":1.}",
            b"{\"a\":.5}",
            b"{\"a\":1e}",
            b"{\"a\":--1}",
            b"{\"a\":+1}",
            b"{\"a\":1e999}",
            b"{\"a\":tru}",
            b"{\"a\":nul}",
            b"{\"a\":\"\t\"}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":\"\\u12\"}",
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":\"\\udc00\"}",
            b"{\"a\":\"\\ud800\\u0041\"}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\xc3\"}",
            b"{\"a\":\"unterminated}",
            b"{\"a\":1,\"a\":2}",
            b"{\"b\":{\"x\":1,\"y\":2,\"x\":3}}",
            b"{\"id\":\"a\",\"i\\u0064\":\"b\"}",
            b"\xef\xbb\xbf{}",
        ];
        for text in refused {
            assert!(!agrees(text), "{}", String::from_utf8_lossy(text));
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(agrees(deep(MAX_DEPTH).as_bytes()));
        assert!(!agrees(deep(MAX_DEPTH + 1).as_bytes()));
    }

    #[test]
    fn every_special_byte_is_found_at_every_offset_of_a_word() {
        let specials: [&[u8]; 9] = [
            b"\\\"",
            b"\\n",
            b"\\u00e9",
            b"\x01",
            b"\x1f",
            b"\x7f",
            "\u{e9}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b" ",
        ];
        for special in specials {
            for before in 0..20 {
                for after in [0, 1, 7, 8, 9] {
                    let mut text = b"{\"k\":\"".to_vec();
                    text.extend(std::iter::repeat_n(b'a', before));
                    text.extend_from_slice(special);
                    text.extend(std::iter::repeat_n(b'z', after));
                    text.extend_from_slice(b"\"}");
                    let control = special[0] < 0x20;
                    assert_eq!(
                        agrees(&text),
                        !control,
                        "{}",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
        }
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let tree = scan(br#"{"a":"plain","b":"x\ny"}"#).expect("scan");
        assert!(matches!(
            tree.get("a"),
            Some(Tree::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(tree.get("b"), Some(Tree::String(Cow::Owned(s))) if s == "x\ny"));
    }
}
