//! RFC 8785 (JSON Canonicalization Scheme) serialization of `serde_json::Value`.
//!
//! The hash chain hashes the canonical form of each event, so two stores
//! holding the same events, whatever the database, compute the same hashes.
//!
//! Rules implemented here:
//! - no insignificant whitespace;
//! - object members sorted by their names compared as UTF-16 code units;
//! - strings escaped as ECMAScript's `JSON.stringify` does: `\"`, `\\`, the
//!   short escapes `\b \f \n \r \t`, other control characters as lowercase
//!   `\u00xx`, everything else (including U+2028, U+2029 and DEL) verbatim;
//! - numbers in ECMAScript's `Number.prototype.toString` form of the IEEE 754
//!   double they denote: shortest round-trip digits, plain notation for
//!   exponents from -6 to 20, otherwise `d.ddde+N` / `d.ddde-N`; `-0` is `0`;
//!   among equally short digit strings the closest wins, ties to even.
//!
//! Integers outside ±2^53 are first rounded to the nearest double, exactly as
//! a JCS implementation reading the same JSON text would.

use serde_json::{Number, Value};
use std::cmp::Ordering;
use std::fmt::Write as _;

/// Largest integer that every double represents exactly (2^53).
const MAX_EXACT_INT: u64 = 1 << 53;

/// Serializes `value` in RFC 8785 canonical form.
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

/// Writes `n` in canonical (ECMAScript) form.
pub(crate) fn write_number(out: &mut String, n: &Number) {
    if let Some(u) = n.as_u64() {
        if u <= MAX_EXACT_INT {
            let _ = write!(out, "{u}");
        } else {
            #[expect(
                clippy::cast_precision_loss,
                reason = "JCS reads every number as a double; rounding is the specified behaviour"
            )]
            write_double(out, u as f64);
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= MAX_EXACT_INT {
            let _ = write!(out, "{i}");
        } else {
            #[expect(
                clippy::cast_precision_loss,
                reason = "JCS reads every number as a double; rounding is the specified behaviour"
            )]
            write_double(out, i as f64);
        }
    } else if let Some(f) = n.as_f64() {
        write_double(out, f);
    } else {
        // Only reachable with serde_json's arbitrary_precision; fall back to
        // the double the text denotes.
        let f = n.to_string().parse::<f64>().unwrap_or(f64::NAN);
        write_double(out, f);
    }
}

/// ECMAScript `Number.prototype.toString` for a double.
fn write_double(out: &mut String, f: f64) {
    if !f.is_finite() {
        // JSON cannot carry these; JSON.stringify writes null.
        out.push_str("null");
        return;
    }
    if f == 0.0 {
        out.push('0');
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    // ryu gives the shortest digits that round-trip, the closest of them to
    // the exact value, ties to even: the digits ECMAScript specifies. Only
    // its notation differs, so take the digits and the decimal exponent out
    // of whatever form it printed ("123.45", "1e21", "1.5e-7", "0.001").
    let mut buffer = ryu::Buffer::new();
    let printed = buffer.format_finite(f.abs());
    let (mantissa, exp) = printed.split_once(['e', 'E']).unwrap_or((printed, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int_part}{frac_part}");
    let significant = all.trim_start_matches('0');
    let leading_zeros = len_i64(&all) - len_i64(significant);
    let digits = significant.trim_end_matches('0');
    let k = len_i64(digits);
    // value = 0.d1d2...dk × 10^n
    let n = len_i64(int_part) + exp - leading_zeros;
    if k <= n && n <= 21 {
        out.push_str(digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        let split = usize::try_from(n).unwrap_or(0);
        out.push_str(&digits[..split]);
        out.push('.');
        out.push_str(&digits[split..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let e = n - 1;
        let sign = if e >= 0 { '+' } else { '-' };
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{sign}{}", e.abs());
    }
}

fn len_i64(s: &str) -> i64 {
    i64::try_from(s.len()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(f: f64) -> String {
        let mut s = String::new();
        write_double(&mut s, f);
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
    fn integers_print_plainly() {
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
        // Beyond 2^53 integers go through the nearest double, like any JCS reader.
        assert_eq!(
            to_canonical_json(&json!(9007199254740993_u64)),
            "9007199254740992"
        );
        assert_eq!(to_canonical_json(&json!(u64::MAX)), "18446744073709552000");
    }

    #[test]
    fn number_forms_follow_ecmascript() {
        assert_eq!(num(1e21), "1e+21");
        assert_eq!(num(1e20), "100000000000000000000");
        assert_eq!(num(1e-7), "1e-7");
        assert_eq!(num(1e-6), "0.000001");
        assert_eq!(num(1.5e-7), "1.5e-7");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(-1.5), "-1.5");
        assert_eq!(num(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(num(123.456), "123.456");
        assert_eq!(num(1.2345e25), "1.2345e+25");
        assert_eq!(num(f64::NAN), "null");
    }

    #[test]
    fn rfc8785_ieee754_samples() {
        let cases: &[(u64, &str)] = &[
            (0x0000_0000_0000_0000, "0"),
            (0x8000_0000_0000_0000, "0"),
            (0x0000_0000_0000_0001, "5e-324"),
            (0x8000_0000_0000_0001, "-5e-324"),
            (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
            (0xffef_ffff_ffff_ffff, "-1.7976931348623157e+308"),
            (0x4340_0000_0000_0000, "9007199254740992"),
            (0xc340_0000_0000_0000, "-9007199254740992"),
            (0x4430_0000_0000_0000, "295147905179352830000"),
            (0x44b5_2d02_c7e1_4af5, "9.999999999999997e+22"),
            (0x44b5_2d02_c7e1_4af6, "1e+23"),
            (0x44b5_2d02_c7e1_4af7, "1.0000000000000001e+23"),
            (0x444b_1ae4_d6e2_ef4e, "999999999999999700000"),
            (0x444b_1ae4_d6e2_ef4f, "999999999999999900000"),
            (0x444b_1ae4_d6e2_ef50, "1e+21"),
            (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"),
            (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
            (0x41b3_de43_5555_5553, "333333333.3333332"),
            (0x41b3_de43_5555_5554, "333333333.33333325"),
            (0x41b3_de43_5555_5555, "333333333.3333333"),
            (0x41b3_de43_5555_5556, "333333333.3333334"),
            (0x41b3_de43_5555_5557, "333333333.33333343"),
            (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
            // Exactly halfway between ...206.2 and ...206.3: ties go to even.
            (0x4314_3ff3_c1cb_0959, "1424953923781206.2"),
        ];
        for &(bits, want) in cases {
            assert_eq!(num(f64::from_bits(bits)), want, "bits {bits:#018x}");
        }
    }

    #[test]
    fn parsed_floats_canonicalize_through_serde_json() {
        let v: Value =
            serde_json::from_str(r#"{"b":1E3,"a":-0.0,"c":1e-7,"d":2.50}"#).unwrap_or(Value::Null);
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":0,"b":1000,"c":1e-7,"d":2.5}"#
        );
    }

    #[test]
    fn canonical_output_is_a_fixed_point() {
        let v = json!({"k": [1.5e300, 0.000_012_3, "\u{1}", {"é": 1, "e": 2}]});
        let once = to_canonical_json(&v);
        let reparsed: Value = serde_json::from_str(&once).unwrap_or(Value::Null);
        assert_eq!(to_canonical_json(&reparsed), once);
    }
}
