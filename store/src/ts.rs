//! Timestamps: every time the store keeps has microsecond precision, and is
//! written as RFC 3339 UTC with exactly six fractional digits and `Z`, so
//! SQLite text and PostgreSQL `timestamptz` hash identically.

use crate::StoreError;
use chrono::{DateTime, Datelike, Utc};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the form hashed in events).
#[must_use]
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
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
}
