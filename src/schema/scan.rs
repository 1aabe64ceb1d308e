//! A one-pass scanner from JSON text to a [`Tree`], for the accept fast path.
//!
//! It answers only when it is sure: `Some(tree)` is exactly what [`Tree::parse`] (`serde_json`)
//! gives for the same text, and no object of it repeats a member name. Anything else — invalid
//! JSON, a repeated name, a lone surrogate escape, nesting deeper than [`MAX_DEPTH`] — is `None`,
//! and the caller asks `serde_json` instead. Numbers other than plain non-negative integers are
//! read by `serde_json` itself, so they mean what they mean there.

use std::borrow::Cow;

use super::lex::Lexer;
use super::tree::Tree;

pub use super::lex::MAX_DEPTH;

/// The document `bytes` holds, if the scanner is sure of it (see the module documentation).
pub fn scan(bytes: &[u8]) -> Option<Tree<'_>> {
    let mut s = Scanner(Lexer::new(bytes)?);
    let tree = s.value(0)?;
    s.0.at_end().then_some(tree)
}

struct Scanner<'a>(Lexer<'a>);

impl<'a> Scanner<'a> {
    fn value(&mut self, depth: usize) -> Option<Tree<'a>> {
        match self.0.next_token()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.0.string().map(Tree::String),
            b't' => self.0.literal(b"rue").map(|()| Tree::Bool(true)),
            b'f' => self.0.literal(b"alse").map(|()| Tree::Bool(false)),
            b'n' => self.0.literal(b"ull").map(|()| Tree::Null),
            b'-' | b'0'..=b'9' => self.0.number().map(Tree::Number),
            _ => None,
        }
    }

    fn object(&mut self, depth: usize) -> Option<Tree<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut members: Vec<(Cow<'a, str>, Tree<'a>)> = Vec::new();
        match self.0.next_token()? {
            b'}' => return Some(Tree::Object(members)),
            b'"' => {}
            _ => return None,
        }
        // Room for an event envelope or its data without growing.
        members.reserve(16);
        loop {
            let name = self.0.string()?;
            if members.iter().any(|(earlier, _)| *earlier == name) {
                return None;
            }
            if self.0.next_token()? != b':' {
                return None;
            }
            let value = self.value(depth)?;
            members.push((name, value));
            match self.0.next_token()? {
                b',' if self.0.next_token()? == b'"' => {}
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
        self.0.skip_ws();
        if self.0.peek_token() == Some(b']') {
            self.0.pos += 1;
            return Some(Tree::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            match self.0.next_token()? {
                b',' => {}
                b']' => return Some(Tree::Array(items)),
                _ => return None,
            }
        }
    }
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
