//! The canonical JSON form that events, the audit chain and receipts are
//! hashed and signed over: RFC 8785 (the JSON Canonicalization Scheme) with
//! numbers written exactly instead of through IEEE 754 doubles.
//!
//! `docs/CANONICAL.md` specifies the form for independent implementations;
//! this is the summary.
//!
//! - No insignificant whitespace.
//! - Object members sorted by their names compared as UTF-16 code units
//!   (RFC 8785 §3.2.3).
//! - Strings escaped as ECMAScript's `JSON.stringify` does: `\"`, `\\`, the
//!   short escapes `\b \f \n \r \t`, other control characters as lowercase
//!   `\u00xx`, everything else (including U+2028, U+2029 and DEL) verbatim.
//! - `true`, `false`, `null` as themselves.
//! - **Numbers: the exact decimal value of the number text.** Take its
//!   significant digits `d1…dk` (no leading or trailing zeros) and the
//!   exponent `n` with value = 0.d1…dk × 10^n, then lay them out as
//!   ECMAScript's `Number.prototype.toString` lays out a double's digits:
//!   `k ≤ n ≤ 21`: the digits then `n − k` zeros; `0 < n ≤ 21`: a decimal
//!   point after `n` digits; `−6 < n ≤ 0`: `0.`, `−n` zeros, the digits;
//!   otherwise `d1[.d2…dk]e±(n − 1)`. A zero of any spelling (`-0`, `0.0`,
//!   `0e5`) is `0`; a negative number is `-` then the form of its magnitude.
//!
//! # Why numbers differ from RFC 8785, and why old records still verify
//!
//! RFC 8785 reads every number as the nearest double, so `9007199254740993`
//! and `9007199254740992`, or two amounts differing in the 20th digit, had
//! the same canonical form and the same hash. Writing the exact value makes
//! the form injective: two numbers share a form only if they denote the same
//! exact decimal (`1.0` and `1`, `1e2` and `100`).
//!
//! For every number RFC 8785 wrote without loss (every integer up to 2^53,
//! and any text that is the shortest decimal of a double, such as `0.1`,
//! `1e+21`, `5e-324`) the output is unchanged, because the shortest digits
//! of a double are exactly its text's digits and the layout is the same.
//! In particular every text the old rule ever *produced* is its own
//! canonical form under the new rule, and the chain is verified from the
//! stored canonical text, so existing chains keep verifying without a
//! version field. Only a number the old rule rounded (an integer beyond
//! ±2^53, or more digits than a double holds) now gets a different, exact,
//! form; receipts never carried such numbers (they hold counts and hashes),
//! so issued receipts verify too. No version field is needed.
//!
//! Numbers must reach this module exactly: the workspace builds
//! `serde_json` with `arbitrary_precision`, so a [`Number`] keeps the text
//! it was parsed from, and nothing on the way from a request body to the
//! store goes through `f64`.

mod number;

use serde_json::{Number, Value};
use std::cmp::Ordering;
use std::fmt::Write as _;

/// Serializes `value` in canonical form (see the module docs).
#[must_use]
pub fn to_canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value);
    out
}

/// Orders member names as RFC 8785 does: by their UTF-16 code units.
fn utf16_order(a: &str, b: &str) -> Ordering {
    // Below U+E000 (UTF-8 lead bytes under 0xEE) UTF-8 byte order is UTF-16
    // order, and it is cheaper to compare.
    let plain = |s: &str| s.bytes().all(|b| b < 0xEE);
    if plain(a) && plain(b) {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            // serde_json's map usually iterates in UTF-8 order already,
            // which is the canonical order unless names hold characters
            // from U+E000 up: check, and sort only when needed.
            let names = map.keys();
            let sorted = names
                .clone()
                .zip(names.skip(1))
                .all(|(a, b)| utf16_order(a, b) != Ordering::Greater);
            if sorted {
                write_members(out, map.iter());
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| utf16_order(a.0, b.0));
                write_members(out, members.into_iter());
            }
            out.push('}');
        }
    }
}

fn write_members<'a>(out: &mut String, members: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k);
        out.push(':');
        write_value(out, v);
    }
}

/// Writes `s` as a canonical JSON string literal.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Copy runs of characters that need no escape in one go.
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes `n` in canonical form: its exact decimal value.
pub(crate) fn write_number(out: &mut String, n: &Number) {
    number::write_number_text(out, n.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr as _;

    /// Canonical form of number text.
    fn num(text: &str) -> String {
        let n = Number::from_str(text).unwrap();
        let mut s = String::new();
        write_number(&mut s, &n);
        s
    }

    #[test]
    fn no_whitespace_and_literals() {
        let v = json!({"a": [true, false, null, 1, "x"], "b": {}});
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":[true,false,null,1,"x"],"b":{}}"#
        );
        assert_eq!(to_canonical_json(&json!([])), "[]");
    }

    #[test]
    fn keys_sort_by_utf16_code_units_not_code_points() {
        // U+1F600 is encoded as the surrogates D83D DE00, which sort *before*
        // U+FB33 in UTF-16 although the code point is larger. Lower-case sorts
        // after upper-case, and a prefix sorts first.
        let v = json!({
            "\u{fb33}": 1,
            "\u{1f600}": 2,
            "\u{20ac}": 3,
            "b": 4,
            "B": 5,
            "ba": 6,
            "\r": 7,
            "1": 8,
            "\u{80}": 9,
            "\u{f6}": 10
        });
        assert_eq!(
            to_canonical_json(&v),
            "{\"\\r\":7,\"1\":8,\"B\":5,\"b\":4,\"ba\":6,\"\u{80}\":9,\"\u{f6}\":10,\"\u{20ac}\":3,\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn nested_objects_are_sorted_too() {
        let v = json!({"z": {"y": 1, "x": [ {"b": 1, "a": 2} ]}, "a": null});
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":null,"z":{"x":[{"a":2,"b":1}],"y":1}}"#
        );
    }

    #[test]
    fn string_escaping() {
        let s = "q\"b\\s/\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}\u{2028}é€😀";
        assert_eq!(
            to_canonical_json(&Value::String(s.to_owned())),
            "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0000\\u001f\u{7f}\u{2028}é€😀\""
        );
        // Lowercase hex for the other control characters.
        assert_eq!(
            to_canonical_json(&Value::String("\u{1b}\u{0b}".to_owned())),
            "\"\\u001b\\u000b\""
        );
    }

    #[test]
    fn integers_keep_every_digit() {
        assert_eq!(to_canonical_json(&json!(0)), "0");
        assert_eq!(to_canonical_json(&json!(-17)), "-17");
        assert_eq!(
            to_canonical_json(&json!(9007199254740992_u64)),
            "9007199254740992"
        );
        assert_eq!(
            to_canonical_json(&json!(-9007199254740992_i64)),
            "-9007199254740992"
        );
        // Beyond 2^53 plain RFC 8785 would round to the nearest double;
        // this form must not, or 2^53 + 1 and 2^53 would share a hash.
        assert_eq!(
            to_canonical_json(&json!(9007199254740993_u64)),
            "9007199254740993"
        );
        assert_eq!(to_canonical_json(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(num("-9223372036854775809"), "-9223372036854775809");
        assert_eq!(num("123456789012345678901"), "123456789012345678901");
        // Past 21 digits the layout is exponential, as for a double.
        assert_eq!(num("1234567890123456789012"), "1.234567890123456789012e+21");
        assert_eq!(num("1000000000000000000000"), "1e+21");
        assert_eq!(num("-0"), "0");
    }

    #[test]
    fn parsed_numbers_canonicalize_through_serde_json() {
        let v: Value = serde_json::from_str(
            r#"{"b":1E3,"a":-0.0,"c":1e-7,"d":2.50,"e":9007199254740993,"f":0.12345678901234567891}"#,
        )
        .unwrap();
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":0,"b":1000,"c":1e-7,"d":2.5,"e":9007199254740993,"f":0.12345678901234567891}"#
        );
    }

    #[test]
    fn canonical_output_is_a_fixed_point() {
        let v = json!({"k": [1.5e300, 0.000_012_3, "\u{1}", {"é": 1, "e": 2}]});
        let once = to_canonical_json(&v);
        let reparsed: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(to_canonical_json(&reparsed), once);
    }
}
