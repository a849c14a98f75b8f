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
    write_number_text(out, n.as_str());
}

/// Writes the canonical form of JSON number text (RFC 8259 grammar).
pub(crate) fn write_number_text(out: &mut String, text: &str) {
    // The common case, a plain integer of up to 21 digits, is already in
    // canonical form (JSON forbids leading zeros).
    let magnitude = text.strip_prefix('-').unwrap_or(text);
    if !magnitude.is_empty()
        && magnitude.len() <= 21
        && magnitude.bytes().all(|b| b.is_ascii_digit())
        && (magnitude.len() == 1 || !magnitude.starts_with('0'))
    {
        out.push_str(if magnitude == "0" { "0" } else { text });
        return;
    }
    match Decimal::parse(text) {
        Some(d) => d.write(out),
        // serde_json only builds numbers from valid JSON number text (or
        // from integers and finite doubles, whose text is valid), so this
        // is unreachable; writing the text keeps the output injective anyway.
        None => out.push_str(text),
    }
}

/// A JSON number's exact decimal value: sign, significant digits without
/// leading or trailing zeros, and the exponent `n` with value
/// `0.digits × 10^n`. `digits` is empty for zero.
struct Decimal<'a> {
    negative: bool,
    /// The integer and fraction digits, borrowed when there is no fraction.
    digits: std::borrow::Cow<'a, str>,
    exponent: Exponent,
}

/// A decimal exponent; text exponents may be longer than any machine integer.
enum Exponent {
    Small(i64),
    /// Sign and magnitude digits (no leading zeros), beyond `i64` with room.
    Big {
        negative: bool,
        magnitude: String,
    },
}

impl<'a> Decimal<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (mantissa, exp_text) = match rest.split_once(['e', 'E']) {
            Some((m, e)) => (m, Some(e)),
            None => (rest, None),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        let digits_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits_ok(int_part) || (mantissa.contains('.') && !digits_ok(frac_part)) {
            return None;
        }
        let (exp_negative, exp_digits) = match exp_text {
            None => (false, "0"),
            Some(e) => {
                let (neg, d) = match e.as_bytes().first() {
                    Some(b'-') => (true, &e[1..]),
                    Some(b'+') => (false, &e[1..]),
                    _ => (false, e),
                };
                if !digits_ok(d) {
                    return None;
                }
                (neg, d)
            }
        };
        let all: std::borrow::Cow<'a, str> = if frac_part.is_empty() {
            std::borrow::Cow::Borrowed(int_part)
        } else {
            std::borrow::Cow::Owned(format!("{int_part}{frac_part}"))
        };
        let significant = all.trim_start_matches('0');
        if significant.is_empty() {
            return Some(Self {
                negative: false,
                digits: std::borrow::Cow::Borrowed(""),
                exponent: Exponent::Small(0),
            });
        }
        let leading_zeros = all.len() - significant.len();
        let digits = significant.trim_end_matches('0');
        // value = 0.<all> × 10^(len(int) + exp) = 0.<significant> × 10^n.
        let shift = len_i64(int_part) - len_i64_usize(leading_zeros);
        let exp_digits = exp_digits.trim_start_matches('0');
        let exponent = match exp_digits.parse::<i64>() {
            // Up to 18 digits: |exp| + |shift| cannot overflow an i64
            // (a shift that large would need an exabyte of digits).
            Ok(e) if exp_digits.len() <= 18 => {
                Exponent::Small(if exp_negative { -e } else { e } + shift)
            }
            _ if exp_digits.is_empty() => Exponent::Small(shift),
            _ => Exponent::Big {
                negative: exp_negative,
                // |exp| ≥ 10^18 > |shift|: the sign is the exponent's.
                magnitude: if exp_negative == (shift < 0) {
                    add_small(exp_digits, shift.unsigned_abs())
                } else {
                    sub_small(exp_digits, shift.unsigned_abs())
                },
            },
        };
        let digits = match all {
            std::borrow::Cow::Borrowed(b) => {
                let start = b.len() - significant.len();
                std::borrow::Cow::Borrowed(&b[start..start + digits.len()])
            }
            std::borrow::Cow::Owned(ref o) => {
                std::borrow::Cow::Owned(o[leading_zeros..leading_zeros + digits.len()].to_owned())
            }
        };
        Some(Self {
            negative,
            digits,
            exponent,
        })
    }

    fn write(&self, out: &mut String) {
        let digits: &str = &self.digits;
        if digits.is_empty() {
            out.push('0');
            return;
        }
        if self.negative {
            out.push('-');
        }
        match &self.exponent {
            Exponent::Small(n) => layout(out, digits, *n),
            Exponent::Big {
                negative,
                magnitude,
            } => {
                // n − 1 for a huge n: subtracting one moves a positive
                // magnitude down and a negative one up.
                let e = if *negative {
                    add_small(magnitude, 1)
                } else {
                    sub_small(magnitude, 1)
                };
                write_exponential(out, digits, if *negative { '-' } else { '+' }, &e);
            }
        }
    }
}

/// ECMAScript's layout of `0.digits × 10^n` (Number.prototype.toString,
/// ECMA-262 §6.1.6.1.20 steps 6 to 10).
fn layout(out: &mut String, digits: &str, n: i64) {
    let k = len_i64(digits);
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
        write_exponential(out, digits, sign, &e.unsigned_abs().to_string());
    }
}

fn write_exponential(out: &mut String, digits: &str, sign: char, magnitude: &str) {
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    out.push('e');
    out.push(sign);
    out.push_str(magnitude);
}

/// `a + b` for a decimal digit string `a` (no leading zeros).
fn add_small(a: &str, b: u64) -> String {
    let mut digits: Vec<u8> = a.bytes().rev().map(|d| d - b'0').collect();
    let mut carry = u128::from(b);
    let mut i = 0;
    while carry > 0 {
        if i == digits.len() {
            digits.push(0);
        }
        let sum = u128::from(digits[i]) + carry;
        digits[i] = (sum % 10) as u8;
        carry = sum / 10;
        i += 1;
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// `a − b` for a decimal digit string `a > b` (no leading zeros).
fn sub_small(a: &str, b: u64) -> String {
    let mut digits: Vec<u8> = a.bytes().rev().map(|d| d - b'0').collect();
    let mut borrow = u128::from(b);
    let mut i = 0;
    while borrow > 0 && i < digits.len() {
        let take = borrow % 10;
        borrow /= 10;
        if u128::from(digits[i]) >= take {
            digits[i] -= take as u8;
        } else {
            digits[i] = (u128::from(digits[i]) + 10 - take) as u8;
            borrow += 1;
        }
        i += 1;
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

fn len_i64(s: &str) -> i64 {
    len_i64_usize(s.len())
}

fn len_i64_usize(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::str::FromStr as _;

    /// Canonical form of number text.
    fn num(text: &str) -> String {
        let n = Number::from_str(text).unwrap();
        let mut s = String::new();
        write_number(&mut s, &n);
        s
    }

    /// Canonical form of the number a double is written as.
    fn double(f: f64) -> String {
        to_canonical_json(&Value::Number(Number::from_f64(f).unwrap()))
    }

    /// The old rule, RFC 8785's: ECMAScript `Number.prototype.toString` of
    /// a double. Kept as the oracle that the new rule leaves every such
    /// text unchanged.
    fn rfc8785_double(f: f64) -> String {
        if f == 0.0 {
            return "0".to_owned();
        }
        let mut out = String::new();
        if f < 0.0 {
            out.push('-');
        }
        let mut buffer = ryu::Buffer::new();
        let printed = buffer.format_finite(f.abs());
        let (mantissa, exp) = printed.split_once(['e', 'E']).unwrap_or((printed, "0"));
        let exp: i64 = exp.parse().unwrap();
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all = format!("{int_part}{frac_part}");
        let significant = all.trim_start_matches('0');
        let leading_zeros = len_i64(&all) - len_i64(significant);
        let digits = significant.trim_end_matches('0');
        layout(&mut out, digits, len_i64(int_part) + exp - leading_zeros);
        out
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
    fn decimals_keep_every_digit_and_drop_only_insignificant_zeros() {
        assert_eq!(num("0.1"), "0.1");
        assert_eq!(num("0.10"), "0.1");
        assert_eq!(num("1.0"), "1");
        assert_eq!(num("100e-2"), "1");
        assert_eq!(num("123.4500e2"), "12345");
        assert_eq!(num("-0.0e-5"), "0");
        assert_eq!(num("0e99"), "0");
        assert_eq!(
            num("0.1000000000000000055511151231257827021181583404541015625"),
            "0.1000000000000000055511151231257827021181583404541015625"
        );
        assert_ne!(num("0.12345678901234567890"), num("0.12345678901234567891"));
        assert_eq!(num("333333333.33333329"), "333333333.33333329");
        assert_eq!(num("1e-6"), "0.000001");
        assert_eq!(num("1e-7"), "1e-7");
        assert_eq!(num("0.00000012345"), "1.2345e-7");
        assert_eq!(num("1e20"), "100000000000000000000");
        assert_eq!(num("1E21"), "1e+21");
        assert_eq!(num("1e400"), "1e+400");
        assert_eq!(num("-1.5E-400"), "-1.5e-400");
    }

    #[test]
    fn exponents_beyond_machine_integers_are_exact() {
        assert_eq!(num("1e999999999999999999999"), "1e+999999999999999999999");
        assert_eq!(
            num("12.5e999999999999999999999"),
            "1.25e+1000000000000000000000"
        );
        assert_eq!(
            num("0.0125e-999999999999999999999"),
            "1.25e-1000000000000000000001"
        );
        assert_eq!(num("1e-999999999999999999999"), "1e-999999999999999999999");
        assert_eq!(num("10e9999999999999999999"), "1e+10000000000000000000");
        assert_eq!(num("1e000000000000000000000000001"), "10");
        assert_eq!(add_small("999", 1), "1000");
        assert_eq!(sub_small("1000", 1), "999");
        assert_eq!(
            sub_small("10000000000000000000000", 12345),
            "9999999999999999987655"
        );
    }

    #[test]
    fn rfc8785_ieee754_samples_are_unchanged() {
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
            let f = f64::from_bits(bits);
            assert_eq!(double(f), want, "bits {bits:#018x}");
            assert_eq!(rfc8785_double(f), want, "oracle, bits {bits:#018x}");
            // And the text RFC 8785 wrote is its own canonical form.
            assert_eq!(num(want), want, "fixed point, bits {bits:#018x}");
        }
    }

    proptest! {
        /// Every text the old rule produced is unchanged by the new one, so
        /// chains verified from their stored canonical text still verify; and
        /// a double enters as that same text.
        #[test]
        fn the_old_form_of_every_double_is_a_fixed_point(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assume!(f.is_finite());
            let old = rfc8785_double(f);
            prop_assert_eq!(num(&old), old.clone());
            prop_assert_eq!(double(f), old);
        }

        /// Different exact values never share a form: the form read back is
        /// the same value (checked on integers of any size and decimals).
        #[test]
        fn integers_and_decimals_round_trip(digits in "[1-9][0-9]{0,40}", point in 0usize..42, neg: bool) {
            let point = point.min(digits.len());
            let int = if point == 0 { "0" } else { &digits[..point] };
            let text = format!("{}{int}.{}1", if neg { "-" } else { "" }, &digits[point..]);
            let canonical = num(&text);
            // The canonical text is itself canonical, and it is the same
            // exact value as the input: same digits once zeros are dropped.
            prop_assert_eq!(num(&canonical), canonical.clone());
            let sig = |t: &str| {
                let mantissa = t.split(['e', 'E']).next().unwrap_or("").replace(['-', '.'], "");
                mantissa.trim_start_matches('0').trim_end_matches('0').to_owned()
            };
            prop_assert_eq!(sig(&canonical), sig(&text));
        }
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
