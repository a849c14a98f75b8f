//! Timestamps: every time the store keeps has microsecond precision, and is
//! written as RFC 3339 UTC with exactly six fractional digits and `Z`, so
//! SQLite text and PostgreSQL `timestamptz` hash identically.

use crate::error::StoreError;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the form hashed in events).
#[must_use]
pub fn format_ts(t: DateTime<Utc>) -> String {
    let year = t.year();
    let nanos = t.nanosecond();
    // chrono's formatter parses its pattern on every call, which showed in
    // profiles (several timestamps per stored event). Digits by hand for
    // the usual case; chrono for years beyond four digits and leap seconds.
    let (Ok(year), true) = (u32::try_from(year), year <= 9999 && nanos < 1_000_000_000) else {
        return t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    };
    let mut out = String::with_capacity(27);
    push_digits(&mut out, year, 4);
    out.push('-');
    push_digits(&mut out, t.month(), 2);
    out.push('-');
    push_digits(&mut out, t.day(), 2);
    out.push('T');
    push_digits(&mut out, t.hour(), 2);
    out.push(':');
    push_digits(&mut out, t.minute(), 2);
    out.push(':');
    push_digits(&mut out, t.second(), 2);
    out.push('.');
    push_digits(&mut out, nanos / 1000, 6);
    out.push('Z');
    out
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    for i in (0..width).rev() {
        let digit = value / 10_u32.pow(i) % 10;
        out.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
    }
}

/// Truncates `t` to microseconds and checks it is in the storable range
/// (years 1 to 9999), so both backends keep exactly the same instant.
pub(crate) fn normalize(t: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
    let year = t.year();
    if !(1..=9999).contains(&year) {
        return Err(StoreError::invalid(format!(
            "timestamp {t} is outside years 1..=9999"
        )));
    }
    DateTime::from_timestamp_micros(t.timestamp_micros())
        .ok_or_else(|| StoreError::invalid(format!("timestamp {t} is out of range")))
}

/// Parses a timestamp written by [`format_ts`] (any RFC 3339 is accepted).
pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::corrupt(format!("bad timestamp `{s}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_exactly_six_digits() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default();
        let n = normalize(t).unwrap_or_default();
        assert_eq!(format_ts(n), "2023-11-14T22:13:20.123456Z");
        let whole = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        assert_eq!(format_ts(whole), "2023-11-14T22:13:20.000000Z");
        assert_eq!(parse_ts(&format_ts(n)).ok(), Some(n));
    }

    #[test]
    fn hand_formatting_matches_chrono() {
        let chrono_form = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let mut secs: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
        let mut nanos: u32 = 999_999_999;
        while secs < 253_402_300_800 {
            // up to 9999-12-31
            let t = DateTime::from_timestamp(secs, nanos).unwrap_or_default();
            assert_eq!(format_ts(t), chrono_form(t));
            secs += 86_400 * 97 + 3_671;
            nanos = nanos.wrapping_mul(7_919) % 1_000_000_000;
        }
        for t in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::from_timestamp(-62_135_596_801, 5_000).unwrap_or_default(),
            DateTime::from_timestamp(253_402_300_800, 0).unwrap_or_default(),
            // A leap second.
            DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap_or_default(),
        ] {
            assert_eq!(format_ts(t), chrono_form(t));
        }
    }
}
