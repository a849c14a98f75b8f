//! A strict RFC 8259 JSON reader that produces [`Value`]s with exact decimal
//! numbers.
//!
//! `serde_json` without its `arbitrary_precision` feature hands non-integer
//! numbers to visitors as `f64`, losing the digits a policy compares (the
//! store turns that feature on for its canonical form, but a policy needs
//! decimals it can compute with, not number text). A small reader of our own
//! keeps the text of each number, enforces nesting and size limits before
//! any allocation grows, and rejects duplicate keys (two readers of the same
//! payload must never disagree about its content).

use rust_decimal::Decimal;

use super::types::{Map, Value};

/// Limits applied while reading JSON.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimits {
    /// Deepest nesting of lists and objects allowed.
    pub max_depth: usize,
    /// Longest input accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Why a JSON text was rejected, with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("invalid JSON at byte {offset}: {message}")]
pub struct JsonError {
    message: String,
    offset: usize,
}

impl JsonError {
    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Byte offset in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// Reads one JSON value with the default [`JsonLimits`].
///
/// ```
/// use countersign_engine::{parse_json, Value};
/// let v = parse_json(br#"{"amount": 1250.10}"#).unwrap();
/// let amount = v.as_object().unwrap().get("amount").unwrap();
/// assert_eq!(amount, &parse_json(b"1250.1").unwrap());
/// ```
pub fn parse_json(input: &[u8]) -> Result<Value, JsonError> {
    parse_json_with_limits(input, JsonLimits::default())
}

/// Reads one JSON value (surrounded by optional whitespace) within `limits`.
pub fn parse_json_with_limits(input: &[u8], limits: JsonLimits) -> Result<Value, JsonError> {
    if input.len() > limits.max_bytes {
        return Err(JsonError {
            message: format!("input is larger than {} bytes", limits.max_bytes),
            offset: limits.max_bytes,
        });
    }
    let mut r = Reader {
        input,
        pos: 0,
        limits,
    };
    r.skip_ws();
    let value = r.value(0)?;
    r.skip_ws();
    if r.pos != input.len() {
        return Err(r.error("unexpected data after the JSON value"));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    limits: JsonLimits,
}

impl Reader<'_> {
    fn error(&self, message: impl Into<String>) -> JsonError {
        JsonError {
            message: message.into(),
            offset: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_word(&mut self, word: &[u8], value: Value) -> Result<Value, JsonError> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unexpected character"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.list(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.expect_word(b"true", Value::Bool(true)),
            Some(b'f') => self.expect_word(b"false", Value::Bool(false)),
            Some(b'n') => self.expect_word(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), JsonError> {
        if depth > self.limits.max_depth {
            Err(self.error(format!(
                "nesting is deeper than {} levels",
                self.limits.max_depth
            )))
        } else {
            Ok(())
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        let start = self.pos;
        self.pos += 1;
        let mut entries = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(Map::new()));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:` after an object key"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `}` in an object")),
            }
        }
        Map::try_from_entries(entries)
            .map(Value::Object)
            .map_err(|key| JsonError {
                message: format!("duplicate key `{key}` in an object"),
                offset: start,
            })
    }

    fn list(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::List(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `]` in a list")),
            }
        }
        Ok(Value::List(items))
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("expected a digit")),
        }
        let mut scientific = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit after `.`"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            scientific = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit in the exponent"));
            }
            self.digits();
        }
        // The slice holds only ASCII digits, signs, `.` and `e`.
        let text = std::str::from_utf8(&self.input[start..self.pos])
            .map_err(|_| self.error("invalid number"))?;
        parse_decimal(text, scientific)
            .map(Value::Number)
            .ok_or_else(|| JsonError {
                message: format!("number `{text}` is outside the exact decimal range"),
                offset: start,
            })
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, JsonError> {
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
            let run =
                std::str::from_utf8(&self.input[run_start..self.pos]).map_err(|e| JsonError {
                    message: "invalid UTF-8 in a string".into(),
                    offset: run_start + e.valid_up_to(),
                })?;
            out.push_str(run);
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

    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let c = self
            .peek()
            .ok_or_else(|| self.error("unterminated escape"))?;
        self.pos += 1;
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let first = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if !self.input[self.pos..].starts_with(b"\\u") {
                        return Err(self.error("unpaired surrogate in a string"));
                    }
                    self.pos += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(self.error("unpaired surrogate in a string"));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else if (0xDC00..0xE000).contains(&first) {
                    return Err(self.error("unpaired surrogate in a string"));
                } else {
                    first
                };
                out.push(char::from_u32(code).ok_or_else(|| self.error("invalid code point"))?);
            }
            _ => return Err(self.error("invalid escape")),
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .input
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let mut code = 0u32;
        for &d in digits {
            let v = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            code = code * 16 + v;
        }
        self.pos += 4;
        Ok(code)
    }
}

/// Parses number text into an exact decimal, or `None` when it cannot be
/// held without rounding.
pub(crate) fn parse_decimal(text: &str, scientific: bool) -> Option<Decimal> {
    if scientific {
        let d = Decimal::from_scientific(text).ok()?;
        // from_scientific rounds when the exponent pushes digits past the
        // 28-digit scale; detect that by reading the result back.
        let (mantissa, exp) = text.split_once(['e', 'E'])?;
        let exp: i64 = exp.parse().ok()?;
        let digits_after_point = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i64;
        if digits_after_point - exp > 28 {
            return None;
        }
        Some(d)
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Value {
        Value::Number(s.parse().unwrap())
    }

    #[test]
    fn reads_exact_decimals() {
        assert_eq!(parse_json(b"1250.10").unwrap(), num("1250.1"));
        assert_eq!(parse_json(b"-0.5").unwrap(), num("-0.5"));
        assert_eq!(parse_json(b"2.5e3").unwrap(), num("2500"));
        assert_eq!(parse_json(b"1E-2").unwrap(), num("0.01"));
        // More digits than an f64 can hold survive.
        let big = parse_json(b"12345678901234567.891").unwrap();
        assert_eq!(big, num("12345678901234567.891"));
        assert_ne!(big, num("12345678901234567.89"));
    }

    #[test]
    fn rejects_numbers_that_would_round() {
        let err = parse_json(b"1e40").unwrap_err();
        assert!(err.message().contains("exact decimal range"), "{err}");
        assert!(parse_json(b"1e-40").is_err());
        assert!(parse_json(b"123456789012345678901234567890123").is_err());
    }

    #[test]
    fn rejects_malformed_json() {
        for bad in [
            &b""[..],
            b"{",
            b"[1,]",
            b"{\"a\":1,}",
            b"01",
            b"1.",
            b"-",
            b"+1",
            b"\"\\x\"",
            b"\"a\nb\"",
            b"tru",
            b"1 2",
            b"{'a':1}",
            b"\"\\ud800\"",
            b"\xff",
        ] {
            assert!(
                parse_json(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rejects_duplicate_keys() {
        let err = parse_json(br#"{"a":1,"b":2,"a":3}"#).unwrap_err();
        assert!(err.message().contains("duplicate key `a`"), "{err}");
    }

    #[test]
    fn enforces_depth_and_size_limits() {
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert!(parse_json(deep.as_bytes()).is_err());
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(parse_json(ok.as_bytes()).is_ok());
        let limits = JsonLimits {
            max_depth: 64,
            max_bytes: 4,
        };
        assert!(parse_json_with_limits(b"12345", limits).is_err());
    }

    #[test]
    fn decodes_escapes_and_surrogate_pairs() {
        let v = parse_json(br#""a\"b\\c\/d\n\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(v, Value::string("a\"b\\c/d\né😀"));
    }

    #[test]
    fn key_order_does_not_matter() {
        assert_eq!(
            parse_json(br#"{"a":1,"b":{"x":1,"y":2}}"#).unwrap(),
            parse_json(br#"{"b":{"y":2,"x":1},"a":1}"#).unwrap()
        );
    }

    #[test]
    fn strings_are_written_with_exactly_the_needed_escapes() {
        let cases = [
            ("", r#""""#),
            ("plain", r#""plain""#),
            ("q\"b\\s", r#""q\"b\\s""#),
            ("é😀 ok", "\"é😀 ok\""),
            ("\n\r\t", r#""\n\r\t""#),
            ("\u{1}x\u{1f}", r#""\u0001x\u001f""#),
            ("\u{7f}/", "\"\u{7f}/\""),
            ("end\\", r#""end\\""#),
        ];
        for (text, json) in cases {
            let mut out = String::from("prefix:");
            crate::value::write_json_string(text, &mut out);
            assert_eq!(out, format!("prefix:{json}"), "{text:?}");
            assert_eq!(parse_json(json.as_bytes()).unwrap(), Value::string(text));
        }
    }

    #[test]
    fn round_trips_through_to_json() {
        let src = r#"{"a":[1,2.5,"x\"y",null,true],"b":{"c":-3}}"#;
        let v = parse_json(src.as_bytes()).unwrap();
        assert_eq!(v.to_json(), src);
    }
}
