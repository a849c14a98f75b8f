//! A strict JSON reader for documents that are checked against a signature
//! or a hash (receipts): it keeps every number's text, refuses duplicate
//! member names anywhere, and reports where a problem is as line:column.
//!
//! `serde_json` silently keeps the last of two equal keys, so two readers
//! of the same file could disagree about what it says; a verifier must not
//! accept such a file at all. The reader follows RFC 8259 exactly: no
//! comments, no trailing commas, no `NaN`, no lone surrogates in `\u`
//! escapes, nothing after the value but whitespace.

use serde_json::{Map, Number, Value};
use std::str::FromStr as _;

/// Deepest nesting of arrays and objects accepted.
const MAX_DEPTH: usize = 128;

/// Why a text is not strict JSON, and where (1-based line and column, the
/// column counted in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{message} at line {line}, column {column}")]
pub struct StrictJsonError {
    /// What is wrong, e.g. "duplicate key `governance_status`".
    pub message: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Parses one JSON value strictly (see the module docs). Numbers keep their
/// exact text, so [`crate::to_canonical_json`] of the result is the
/// canonical form of what the text says.
pub fn parse_strict_json(text: &str) -> Result<Value, StrictJsonError> {
    let mut r = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    r.skip_ws();
    let value = r.value(0)?;
    r.skip_ws();
    if r.pos < r.bytes.len() {
        return Err(r.error_at(r.pos, "unexpected content after the JSON value".to_owned()));
    }
    Ok(value)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error_at(&self, pos: usize, message: String) -> StrictJsonError {
        let before = &self.text[..floor_char_boundary(self.text, pos)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        StrictJsonError {
            message,
            line,
            column,
        }
    }

    fn error(&self, message: &str) -> StrictJsonError {
        self.error_at(self.pos, message.to_owned())
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, word: &str, value: Value) -> Result<Value, StrictJsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, StrictJsonError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.expect_literal("true", Value::Bool(true)),
            Some(b'f') => self.expect_literal("false", Value::Bool(false)),
            Some(b'n') => self.expect_literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, StrictJsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1; // {
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            let key_pos = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name in double quotes"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:` after the member name"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            if map.contains_key(&key) {
                return Err(self.error_at(key_pos, format!("duplicate key `{key}`")));
            }
            map.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.error("expected `,` or `}` in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, StrictJsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1; // [
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]` in an array")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, StrictJsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_len = self.digits();
        if int_len == 0 {
            return Err(self.error("expected a digit"));
        }
        if int_len > 1 && self.bytes[int_start] == b'0' {
            return Err(self.error_at(int_start, "a number may not start with 0".to_owned()));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after `.`"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        let text = &self.text[start..self.pos];
        // With arbitrary_precision, Number keeps the text exactly.
        Number::from_str(text)
            .map(Value::Number)
            .map_err(|e| self.error_at(start, format!("invalid number `{text}`: {e}")))
    }

    fn string(&mut self) -> Result<String, StrictJsonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Boundaries are ASCII bytes, so this slice is whole characters.
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.error("control character in a string")),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), StrictJsonError> {
        let Some(c) = self.peek() else {
            return Err(self.error("unterminated escape"));
        };
        self.pos += 1;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let at = self.pos - 2;
                let first = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if !self.bytes[self.pos..].starts_with(b"\\u") {
                        return Err(self.error_at(at, "lone surrogate in a \\u escape".to_owned()));
                    }
                    self.pos += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(self.error_at(at, "lone surrogate in a \\u escape".to_owned()));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else if (0xDC00..0xE000).contains(&first) {
                    return Err(self.error_at(at, "lone surrogate in a \\u escape".to_owned()));
                } else {
                    first
                };
                char::from_u32(code)
                    .ok_or_else(|| self.error_at(at, "invalid \\u escape".to_owned()))?
            }
            _ => return Err(self.error_at(self.pos - 2, "invalid escape".to_owned())),
        };
        out.push(ch);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, StrictJsonError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("expected 4 hex digits in a \\u escape"))?;
            code = code * 16 + d;
            self.pos += 1;
        }
        Ok(code)
    }
}

/// The largest char boundary at or before `pos`.
fn floor_char_boundary(s: &str, mut pos: usize) -> usize {
    pos = pos.min(s.len());
    while !s.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_canonical_json;

    fn err(text: &str) -> String {
        parse_strict_json(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_pretty_printed_json_and_keeps_numbers_exact() {
        let v = parse_strict_json("{\n  \"a\": [1, 2.50, 9007199254740993, -0, 1e400],\n  \"b\": \"\\u00e9\\ud83d\\ude00\\/\"\n}\n").unwrap();
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":[1,2.5,9007199254740993,0,1e+400],"b":"é😀/"}"#
        );
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_position() {
        assert_eq!(
            err(
                "{\n  \"governance_status\": \"approved\",\n  \"governance_status\": \"allowed\"\n}"
            ),
            "duplicate key `governance_status` at line 3, column 3"
        );
        // Also nested, and also when spelled with an escape.
        assert_eq!(
            err(r#"{"x":{"a":1,"\u0061":2}}"#),
            "duplicate key `a` at line 1, column 13"
        );
    }

    #[test]
    fn everything_outside_rfc8259_is_refused() {
        for (text, want) in [
            (
                "{} x",
                "unexpected content after the JSON value at line 1, column 4",
            ),
            ("[1,]", "expected a JSON value at line 1, column 4"),
            (
                "{\"a\":1,}",
                "expected a member name in double quotes at line 1, column 8",
            ),
            ("NaN", "expected a JSON value at line 1, column 1"),
            ("01", "a number may not start with 0 at line 1, column 1"),
            ("1.", "expected a digit after `.` at line 1, column 3"),
            (
                "\"\\ud800\"",
                "lone surrogate in a \\u escape at line 1, column 2",
            ),
            (
                "\"a\u{1}\"",
                "control character in a string at line 1, column 3",
            ),
            ("\"\\x\"", "invalid escape at line 1, column 2"),
            ("", "unexpected end of input at line 1, column 1"),
            (
                "\"é\" é",
                "unexpected content after the JSON value at line 1, column 5",
            ),
        ] {
            assert_eq!(err(text), want, "{text:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(err(&deep).starts_with("nested too deeply"));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse_strict_json(&ok).is_ok());
    }
}
