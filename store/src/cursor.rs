//! Opaque pagination cursors for `list_runs`, shared by both backends.
//!
//! A cursor is the position (created_at, run_id) of the last run of a page;
//! the next page starts strictly after it in (created_at desc, run_id desc)
//! order, so pages stay stable while new runs are created.

use crate::error::StoreError;
use chrono::{DateTime, Utc};

const VERSION: &str = "r1";

/// A decoded cursor position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub created_at: DateTime<Utc>,
    pub run_id: String,
}

pub(crate) fn encode(created_at: DateTime<Utc>, run_id: &str) -> String {
    hex::encode(format!(
        "{VERSION}|{}|{run_id}",
        created_at.timestamp_micros()
    ))
}

pub(crate) fn decode(cursor: &str) -> Result<Cursor, StoreError> {
    let bytes = hex::decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let mut parts = text.splitn(3, '|');
    let (Some(VERSION), Some(micros), Some(run_id)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(StoreError::InvalidCursor);
    };
    let micros: i64 = micros.parse().map_err(|_| StoreError::InvalidCursor)?;
    let created_at = DateTime::from_timestamp_micros(micros).ok_or(StoreError::InvalidCursor)?;
    if run_id.is_empty() {
        return Err(StoreError::InvalidCursor);
    }
    Ok(Cursor {
        created_at,
        run_id: run_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let t = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap_or_default();
        let c = encode(t, "run|with|bars");
        let d = decode(&c).ok();
        assert_eq!(
            d,
            Some(Cursor {
                created_at: t,
                run_id: "run|with|bars".into()
            })
        );
        for bad in [
            "",
            "zz",
            "00",
            &hex::encode("r2|1|x"),
            &hex::encode("r1|x|y"),
        ] {
            assert!(
                matches!(decode(bad), Err(StoreError::InvalidCursor)),
                "{bad}"
            );
        }
    }
}
