//! The value type and its operations (comparison, conversion to and from
//! `serde_json`, display), separate from [`super::json`] parsing so the
//! parser depends on the type and not the other way round.
use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

/// A JSON value, or a timestamp (only `now` and values derived from it).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JSON `null`; also what an unset `actor` or `source` reads as.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An exact decimal number.
    Number(Decimal),
    /// A UTF-8 string.
    String(String),
    /// An ordered list.
    List(Vec<Value>),
    /// An object; keys are unique and kept sorted.
    Object(Map),
    /// A point in time (the `now` variable).
    Timestamp(DateTime<Utc>),
}

/// A JSON object: unique keys kept in sorted order, so lookups are a binary
/// search and two payloads that differ only in key order are equal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    // INVARIANT: sorted by key, no duplicate keys.
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an object from entries; on duplicate keys the last one wins.
    pub fn from_entries(mut entries: Vec<(String, Value)>) -> Self {
        // A stable sort keeps duplicates in input order, so keeping the last
        // of each run implements "last wins".
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Self { entries: out }
    }

    /// Builds an object, reporting the first duplicated key instead of
    /// silently choosing one.
    pub fn try_from_entries(mut entries: Vec<(String, Value)>) -> Result<Self, String> {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in entries.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(pair[0].0.clone());
            }
        }
        Ok(Self { entries })
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        // Payload objects are usually small; a linear scan of a few keys
        // beats a binary search's unpredictable branches.
        if self.entries.len() <= 8 {
            return self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        }
        self.entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Inserts or replaces `key`.
    pub fn insert(&mut self, key: String, value: Value) {
        match self.entries.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.entries[i].1 = value,
            Err(i) => self.entries.insert(i, (key, value)),
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => Some(self.entries.remove(i).1),
            Err(_) => None,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the object has no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl Value {
    /// The name of this value's type as the language calls it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Object(_) => "object",
            Value::Timestamp(_) => "timestamp",
        }
    }

    /// The name JSON gives this value's type, with its article, for
    /// messages about a JSON document: `an array`, not the language's `list`.
    pub fn json_type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) | Value::Timestamp(_) => "a string",
            Value::List(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object inside, if this is an object.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Convenience constructor for a string value.
    pub fn string(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    /// Writes this value as compact JSON. Numbers are written exactly (in
    /// normalized form, so `1250.10` becomes `1250.1`); timestamps as RFC 3339
    /// strings.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    /// Appends this value as compact JSON to `out` (see [`Value::to_json`]).
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let _ = write!(out, "{}", n.normalize());
            }
            Value::String(s) => write_json_string(s, out),
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
            Value::Timestamp(t) => {
                write_json_string(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true), out)
            }
        }
    }

    /// Converts to a `serde_json::Value`. Integers in the `i64`/`u64` range
    /// are exact; other numbers are exact when `serde_json` is built with
    /// `arbitrary_precision` (as in the gate, where the store turns it on:
    /// the number keeps its decimal text), and the nearest `f64` otherwise.
    pub fn to_serde_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => number_to_serde(*n),
            Value::String(s) => J::String(s.clone()),
            Value::List(items) => J::Array(items.iter().map(Value::to_serde_json).collect()),
            Value::Object(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_serde_json()))
                    .collect(),
            ),
            Value::Timestamp(t) => J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }

    /// Converts from a `serde_json::Value`. Non-integer numbers go through
    /// their shortest decimal text, which is exact for any decimal with up to
    /// 15 significant digits; use [`super::parse_json`] on the original text to keep
    /// more.
    pub fn from_serde_json(v: &serde_json::Value) -> Result<Self, String> {
        use serde_json::Value as J;
        Ok(match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => Value::Number(
                n.to_string()
                    .parse::<Decimal>()
                    .or_else(|_| Decimal::from_scientific(&n.to_string()))
                    .map_err(|_| format!("number `{n}` is outside the exact decimal range"))?,
            ),
            J::String(s) => Value::String(s.clone()),
            J::Array(items) => Value::List(
                items
                    .iter()
                    .map(Value::from_serde_json)
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(m) => Value::Object(Map::from_entries(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), Value::from_serde_json(v)?)))
                    .collect::<Result<_, String>>()?,
            )),
        })
    }
}

pub(super) fn number_to_serde(n: Decimal) -> serde_json::Value {
    use rust_decimal::prelude::ToPrimitive;
    use std::str::FromStr as _;
    let n = n.normalize();
    if n.scale() == 0 {
        if let Some(i) = n.to_i64() {
            return serde_json::Value::from(i);
        }
        if let Some(u) = n.to_u64() {
            return serde_json::Value::from(u);
        }
    }
    // Never through an f64 of our own: with `arbitrary_precision` the Number
    // keeps this text, so long decimals keep every digit on their way to the
    // canonical form. A Decimal's text is always valid JSON number text; the
    // fallback only keeps the function total.
    serde_json::Number::from_str(&n.to_string())
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Appends `s` to `out` as a JSON string literal: `"`, `\\`, and control
/// characters escaped, everything else (non-ASCII included) as is.
pub fn write_json_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Copy runs of characters that need no escape in one go; every byte
    // that needs one is ASCII, so the run boundaries are char boundaries.
    let mut run_start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[run_start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        run_start = i + 1;
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// Ordering for `<`, `<=`, `>`, `>=`: numbers with numbers, strings with
/// strings (by code point), timestamps with timestamps. Anything else has no
/// order and is an evaluation error.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
