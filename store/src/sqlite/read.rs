//! SQLite queries that only read. They take a plain `&Connection`, so the
//! writer (inside its transaction) and the read-only connections share them.

use crate::chain::{GENESIS_HASH, RawEvent};
use crate::cursor;
use crate::error::StoreError;
use crate::model::{
    ApiKeyRecord, ApprovalAnswer, ApprovalToken, Delivery, Event, EventKind, Run, RunFilter,
    RunPage,
};
use crate::projection::DeliveryFact;
use crate::rows::{self, RUN_COLUMNS, ReadRow, RunRow, seq_from_db, seq_to_db};
use crate::ts::{format_ts, parse_ts};
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

fn opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(parse_ts).transpose()
}

/// SQLite keeps timestamps as [`crate::ts::format_ts`] text.
impl ReadRow for Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }

    fn ts(&self, i: usize) -> Result<DateTime<Utc>, StoreError> {
        parse_ts(&self.get::<_, String>(i)?)
    }

    fn opt_ts(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        opt_ts(self.get(i)?)
    }
}

fn load_approvals(
    conn: &Connection,
    workspace: &str,
    run_id: &str,
) -> Result<Vec<ApprovalAnswer>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT approver_id, decision, channel, comment, client_addr, user_agent, answered_at, \
         counted FROM approvals WHERE workspace = ?1 AND run_id = ?2 ORDER BY answer_no",
    )?;
    let mut rows = stmt.query(params![workspace, run_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(ApprovalAnswer {
            approver_id: row.get(0)?,
            decision: rows::answer_decision(&row.get::<_, String>(1)?)?,
            channel: row.get(2)?,
            comment: row.get(3)?,
            client_addr: row.get(4)?,
            user_agent: row.get(5)?,
            answered_at: parse_ts(&row.get::<_, String>(6)?)?,
            counted: row.get(7)?,
        });
    }
    Ok(out)
}

fn complete(conn: &Connection, row: RunRow) -> Result<Run, StoreError> {
    let approvals = load_approvals(conn, &row.workspace, &row.run_id)?;
    row.into_run(approvals)
}

/// The run `run_id` of `workspace`, if any.
pub(crate) fn load_run(
    conn: &Connection,
    workspace: &str,
    run_id: &str,
) -> Result<Option<Run>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE workspace = ?1 AND run_id = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![workspace, run_id])?;
    match rows.next()? {
        Some(row) => {
            let row = RunRow::decode(row)?;
            Ok(Some(complete(conn, row)?))
        }
        None => Ok(None),
    }
}

/// Every run of `workspace`, with its approvals (for the audit).
pub(crate) fn all_runs(conn: &Connection, workspace: &str) -> Result<Vec<Run>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE workspace = ?1 ORDER BY run_id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![workspace])?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next()? {
        decoded.push(RunRow::decode(row)?);
    }
    drop(rows);
    decoded.into_iter().map(|row| complete(conn, row)).collect()
}

/// Every delivery row of `workspace`: its run and the columns the audit
/// checks against the log.
pub(crate) fn all_deliveries(
    conn: &Connection,
    workspace: &str,
) -> Result<Vec<(String, DeliveryFact)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT run_id, delivery_id, approver_id, channel, token_hash FROM deliveries \
         WHERE workspace = ?1 ORDER BY run_id, delivery_id",
    )?;
    let mut rows = stmt.query(params![workspace])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push((
            row.get(0)?,
            DeliveryFact {
                delivery_id: row.get(1)?,
                approver_id: row.get(2)?,
                channel: row.get(3)?,
                token_hash: row.get(4)?,
            },
        ));
    }
    Ok(out)
}

/// The run created with `idempotency_key` in `workspace`, if any.
pub(crate) fn load_run_by_idempotency_key(
    conn: &Connection,
    workspace: &str,
    idempotency_key: &str,
) -> Result<Option<Run>, StoreError> {
    let run_id: Option<String> = conn
        .prepare_cached("SELECT run_id FROM runs WHERE workspace = ?1 AND idempotency_key = ?2")?
        .query_row(params![workspace, idempotency_key], |row| row.get(0))
        .optional()?;
    match run_id {
        Some(run_id) => load_run(conn, workspace, &run_id),
        None => Ok(None),
    }
}

/// Due pending runs, oldest expiry first: (workspace, run_id).
pub(crate) fn due_runs(
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT workspace, run_id FROM runs \
         WHERE governance_status = 'pending_approval' AND expires_at <= ?1 \
         ORDER BY expires_at, workspace, run_id",
    )?;
    let rows = stmt.query_map(params![format_ts(now)], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// One page of runs, newest first.
pub(crate) fn list_runs(
    conn: &Connection,
    workspace: &str,
    filter: &RunFilter,
) -> Result<RunPage, StoreError> {
    let limit = filter.effective_limit();
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE workspace = ?1");
    let mut args: Vec<SqlValue> = vec![SqlValue::Text(workspace.to_owned())];
    let mut push = |sql: &mut String, clause: &str, value: SqlValue| {
        args.push(value);
        sql.push_str(&clause.replace('#', &format!("?{}", args.len())));
    };
    if let Some(status) = filter.governance_status {
        push(
            &mut sql,
            " AND governance_status = #",
            SqlValue::Text(status.as_str().into()),
        );
    }
    if let Some(status) = filter.execution_status {
        push(
            &mut sql,
            " AND execution_status = #",
            SqlValue::Text(status.as_str().into()),
        );
    }
    if let Some(action) = &filter.action {
        push(&mut sql, " AND action = #", SqlValue::Text(action.clone()));
    }
    if let Some(actor) = &filter.actor {
        push(&mut sql, " AND actor = #", SqlValue::Text(actor.clone()));
    }
    if let Some(text) = &filter.cursor {
        let c = cursor::decode(text)?;
        push(
            &mut sql,
            " AND (created_at, run_id) < (#",
            SqlValue::Text(format_ts(c.created_at)),
        );
        push(&mut sql, ", #)", SqlValue::Text(c.run_id));
    }
    // One extra row tells whether there is a next page.
    push(
        &mut sql,
        " ORDER BY created_at DESC, run_id DESC LIMIT #",
        SqlValue::Integer(i64::from(limit) + 1),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next()? {
        decoded.push(RunRow::decode(row)?);
    }
    drop(rows);
    let has_more = decoded.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    decoded.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if has_more {
        decoded
            .last()
            .map(|last| cursor::encode(last.created_at, &last.run_id))
    } else {
        None
    };
    let runs = decoded
        .into_iter()
        .map(|row| complete(conn, row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunPage { runs, next_cursor })
}

fn decode_raw_event(row: &Row<'_>) -> Result<RawEvent, StoreError> {
    Ok(RawEvent {
        seq: seq_from_db(row.get(0)?)?,
        kind: row.get(1)?,
        run_id: row.get(2)?,
        at: row.get(3)?,
        data: row.get(4)?,
        prev_hash: row.get(5)?,
        hash: row.get(6)?,
        mac: None,
    })
}

pub(crate) const EVENT_COLUMNS: &str = "seq, kind, run_id, at, data, prev_hash, hash";

/// Events of `workspace` after `after_seq`, in order.
pub(crate) fn events(
    conn: &Connection,
    workspace: &str,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE workspace = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![workspace, seq_to_db(after_seq)?, i64::from(limit)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_event(workspace, row)?);
    }
    Ok(out)
}

/// Decodes a row of [`EVENT_COLUMNS`] into an event of `workspace`.
pub(crate) fn decode_event(workspace: &str, row: &Row<'_>) -> Result<Event, StoreError> {
    let raw = decode_raw_event(row)?;
    Ok(Event {
        workspace: workspace.to_owned(),
        seq: raw.seq,
        kind: EventKind::parse(&raw.kind)
            .ok_or_else(|| StoreError::corrupt(format!("unknown event kind `{}`", raw.kind)))?,
        run_id: raw.run_id,
        at: parse_ts(&raw.at)?,
        data: serde_json::from_str(&raw.data)?,
        prev_hash: raw.prev_hash,
        hash: raw.hash,
    })
}

/// The recorded head (seq, hash) of a workspace's chain.
pub(crate) fn chain_head(
    conn: &Connection,
    workspace: &str,
) -> Result<Option<(u64, String)>, StoreError> {
    let head: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM chain_heads WHERE workspace = ?1")?
        .query_row(params![workspace], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    head.map(|(seq, hash)| Ok((seq_from_db(seq)?, hash)))
        .transpose()
}

/// Workspaces that have events, a head or checkpoints.
pub(crate) fn workspaces(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT workspace FROM chain_heads WHERE seq > 0 UNION \
         SELECT DISTINCT workspace FROM events UNION \
         SELECT DISTINCT workspace FROM checkpoints ORDER BY 1",
    )?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The head hash to chain after, GENESIS for a new workspace.
pub(crate) fn head_or_genesis(
    conn: &Connection,
    workspace: &str,
) -> Result<(u64, String), StoreError> {
    Ok(chain_head(conn, workspace)?.unwrap_or((0, GENESIS_HASH.to_owned())))
}

const KEY_COLUMNS: &str = "workspace, key_id, role, label, created_at, revoked_at, actor, key_hash";

fn decode_key(row: &Row<'_>) -> Result<(ApiKeyRecord, String), StoreError> {
    let key = ApiKeyRecord {
        workspace: row.get(0)?,
        key_id: row.get(1)?,
        role: rows::role(&row.get::<_, String>(2)?)?,
        label: row.get(3)?,
        created_at: parse_ts(&row.get::<_, String>(4)?)?,
        revoked_at: opt_ts(row.get(5)?)?,
        actor: row.get(6)?,
    };
    Ok((key, row.get(7)?))
}

/// Key rows with their `key_hash`.
fn query_keys(
    conn: &Connection,
    condition: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<(ApiKeyRecord, String)>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE {condition}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_key(row)?);
    }
    Ok(out)
}

/// The key row with this hash, unchecked (see `log::verified_key`).
pub(crate) fn find_key_row(
    conn: &Connection,
    key_hash: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    Ok(query_keys(conn, "key_hash = ?1", params![key_hash])?
        .into_iter()
        .next()
        .map(|(key, _)| key))
}

/// The key `key_id` of `workspace`.
pub(crate) fn load_key(
    conn: &Connection,
    workspace: &str,
    key_id: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    Ok(query_keys(
        conn,
        "workspace = ?1 AND key_id = ?2",
        params![workspace, key_id],
    )?
    .into_iter()
    .next()
    .map(|(key, _)| key))
}

/// Keys of a workspace with their hashes, oldest first.
pub(crate) fn list_keys_with_hash(
    conn: &Connection,
    workspace: &str,
) -> Result<Vec<(ApiKeyRecord, String)>, StoreError> {
    query_keys(
        conn,
        "workspace = ?1 ORDER BY created_at, key_id",
        params![workspace],
    )
}

/// Keys of a workspace, oldest first.
pub(crate) fn list_keys(
    conn: &Connection,
    workspace: &str,
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    Ok(list_keys_with_hash(conn, workspace)?
        .into_iter()
        .map(|(key, _)| key)
        .collect())
}

/// Deliveries due at `now` for runs still pending.
pub(crate) fn due_deliveries(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.delivery_id, d.workspace, d.run_id, d.approver_id, d.channel, d.attempts, \
         d.next_attempt_at, d.last_error, d.sent_at, d.token_hash \
         FROM deliveries d JOIN runs r ON r.workspace = d.workspace AND r.run_id = d.run_id \
         WHERE d.sent_at IS NULL AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1 \
         AND r.governance_status = 'pending_approval' \
         ORDER BY d.next_attempt_at, d.delivery_id LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![format_ts(now), i64::from(limit)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(delivery_from_row(row)?);
    }
    Ok(out)
}

/// A `deliveries` row, selected in the column order of the queries above.
fn delivery_from_row(row: &rusqlite::Row<'_>) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        delivery_id: row.get(0)?,
        workspace: row.get(1)?,
        run_id: row.get(2)?,
        approver_id: row.get(3)?,
        channel: row.get(4)?,
        attempts: row.get(5)?,
        next_attempt_at: opt_ts(row.get(6)?)?,
        last_error: row.get(7)?,
        sent_at: opt_ts(row.get(8)?)?,
        token_hash: row.get(9)?,
    })
}

/// Every delivery of a run, oldest first.
pub(crate) fn deliveries_for_run(
    conn: &Connection,
    workspace: &str,
    run_id: &str,
) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT delivery_id, workspace, run_id, approver_id, channel, attempts, \
         next_attempt_at, last_error, sent_at, token_hash \
         FROM deliveries WHERE workspace = ?1 AND run_id = ?2 \
         ORDER BY created_at, delivery_id",
    )?;
    let mut rows = stmt.query(params![workspace, run_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(delivery_from_row(row)?);
    }
    Ok(out)
}

/// Where an approval token is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenHome {
    /// In the row of this delivery (keys of the form `DELIVERY_ID.…`).
    Delivery(String),
    /// In `approval_tokens` (other keys, and tokens stored before schema
    /// version 3).
    Table,
}

/// The delivery whose row holds a token with this key, if the key names
/// one: `DELIVERY_ID.…`.
pub(crate) fn token_delivery(token_hash: &str) -> Option<&str> {
    token_hash
        .split_once('.')
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty())
}

/// The approval token with this hash, and where it is kept.
pub(crate) fn find_token_home(
    conn: &Connection,
    token_hash: &str,
) -> Result<Option<(ApprovalToken, TokenHome)>, StoreError> {
    let token = |row: &rusqlite::Row<'_>| -> Result<ApprovalToken, StoreError> {
        Ok(ApprovalToken {
            workspace: row.get(0)?,
            run_id: row.get(1)?,
            approver_id: row.get(2)?,
            expires_at: parse_ts(&row.get::<_, String>(3)?)?,
            used_at: opt_ts(row.get(4)?)?,
        })
    };
    // The table first: a token written there before schema version 3 may
    // have been spent there, whatever its key looks like.
    let mut stmt = conn.prepare_cached(
        "SELECT workspace, run_id, approver_id, expires_at, used_at FROM approval_tokens \
         WHERE token_hash = ?1",
    )?;
    let mut rows = stmt.query(params![token_hash])?;
    if let Some(row) = rows.next()? {
        return Ok(Some((token(row)?, TokenHome::Table)));
    }
    let Some(delivery_id) = token_delivery(token_hash) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT d.workspace, d.run_id, d.approver_id, r.expires_at, d.token_used_at \
         FROM deliveries d JOIN runs r ON r.workspace = d.workspace AND r.run_id = d.run_id \
         WHERE d.delivery_id = ?1 AND d.token_hash = ?2 AND r.expires_at IS NOT NULL",
    )?;
    let mut rows = stmt.query(params![delivery_id, token_hash])?;
    match rows.next()? {
        Some(row) => Ok(Some((
            token(row)?,
            TokenHome::Delivery(delivery_id.to_owned()),
        ))),
        None => Ok(None),
    }
}

/// The approval token with this hash.
pub(crate) fn find_token(
    conn: &Connection,
    token_hash: &str,
) -> Result<Option<ApprovalToken>, StoreError> {
    Ok(find_token_home(conn, token_hash)?.map(|(token, _)| token))
}
