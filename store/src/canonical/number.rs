//! The canonical form of a JSON number: its exact decimal value, laid out
//! as ECMAScript lays out a double's digits (see the parent module and
//! docs/CANONICAL.md).

use std::borrow::Cow;

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
    digits: Cow<'a, str>,
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
        let all: Cow<'a, str> = if frac_part.is_empty() {
            Cow::Borrowed(int_part)
        } else {
            Cow::Owned(format!("{int_part}{frac_part}"))
        };
        let significant = all.trim_start_matches('0');
        if significant.is_empty() {
            return Some(Self {
                negative: false,
                digits: Cow::Borrowed(""),
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
            Cow::Borrowed(b) => {
                let start = b.len() - significant.len();
                Cow::Borrowed(&b[start..start + digits.len()])
            }
            Cow::Owned(ref o) => {
                Cow::Owned(o[leading_zeros..leading_zeros + digits.len()].to_owned())
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
    use serde_json::Number;
    use std::str::FromStr as _;

    /// Canonical form of number text, as serde_json keeps it.
    fn num(text: &str) -> String {
        let n = Number::from_str(text).unwrap();
        let mut s = String::new();
        write_number_text(&mut s, n.as_str());
        s
    }

    /// Canonical form of the number a double is written as.
    fn double(f: f64) -> String {
        let mut s = String::new();
        write_number_text(&mut s, Number::from_f64(f).unwrap().as_str());
        s
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
}
