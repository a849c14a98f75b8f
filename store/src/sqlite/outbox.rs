//! SQLite writes of the approval outbox: deliveries marked sent or failed,
//! single-use approval tokens spent. Like [`super::ops`], each runs on the
//! writer's connection inside the batch's transaction.

use super::read;
use crate::error::StoreError;
use crate::model::TokenOutcome;
use crate::ts::format_ts;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

fn delivery_not_found(delivery_id: &str) -> StoreError {
    StoreError::NotFound {
        entity: "delivery",
        id: delivery_id.to_owned(),
    }
}

/// Marks a delivery sent.
pub(crate) fn mark_delivery_sent(
    conn: &Connection,
    delivery_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE deliveries SET sent_at = ?2, next_attempt_at = NULL WHERE delivery_id = ?1",
        )?
        .execute(params![delivery_id, format_ts(now)])?;
    if n == 0 {
        return Err(delivery_not_found(delivery_id));
    }
    Ok(())
}

/// Records a failed delivery attempt.
pub(crate) fn mark_delivery_failed(
    conn: &Connection,
    delivery_id: &str,
    next_attempt_at: Option<DateTime<Utc>>,
    error: &str,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 \
             WHERE delivery_id = ?1 AND sent_at IS NULL",
        )?
        .execute(params![delivery_id, error, next_attempt_at.map(format_ts)])?;
    if n == 0 {
        return Err(delivery_not_found(delivery_id));
    }
    Ok(())
}

/// Uses a single-use approval token.
pub(crate) fn consume_token(
    conn: &Connection,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<TokenOutcome, StoreError> {
    let Some((mut token, home)) = read::find_token_home(conn, token_hash)? else {
        return Ok(TokenOutcome::Unknown);
    };
    if token.used_at.is_some() {
        return Ok(TokenOutcome::AlreadyUsed(token));
    }
    if now >= token.expires_at {
        return Ok(TokenOutcome::Expired(token));
    }
    let spent = match home {
        read::TokenHome::Delivery(delivery_id) => conn
            .prepare_cached(
                "UPDATE deliveries SET token_used_at = ?2 \
                 WHERE delivery_id = ?1 AND token_used_at IS NULL",
            )?
            .execute(params![delivery_id, format_ts(now)])?,
        read::TokenHome::Table => conn
            .prepare_cached(
                "UPDATE approval_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
            )?
            .execute(params![token_hash, format_ts(now)])?,
    };
    // The writer runs commands one at a time, so the token read above is
    // still unspent; should that ever change, no second spend slips by.
    if spent == 0 {
        return Ok(TokenOutcome::AlreadyUsed(token));
    }
    token.used_at = Some(now);
    Ok(TokenOutcome::Consumed(token))
}
