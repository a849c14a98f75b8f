//! SQLite side of the dashboard's needs: access grants, per-run events,
//! run statistics and the chain head.

use super::log::WriteConn;
use super::ops::append;
use super::read::{self, EVENT_COLUMNS};
use crate::chain::GENESIS_HASH;
use crate::error::StoreError;
use crate::grants;
use crate::model::{
    ChainPosition, Event, ExecutionStatus, GovernanceStatus, Grant, GrantKind, GrantOutcome,
    NewGrant, StatsRow,
};
use crate::ts::{format_ts, parse_ts};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, Row, params};

const GRANT_COLUMNS: &str =
    "grant_id, kind, workspace, subject, label, created_at, expires_at, used_at, revoked_at";

fn opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.as_deref().map(parse_ts).transpose()
}

fn decode_grant(row: &Row<'_>) -> Result<Grant, StoreError> {
    let kind: String = row.get(1)?;
    Ok(Grant {
        grant_id: row.get(0)?,
        kind: GrantKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt(format!("unknown grant kind `{kind}`")))?,
        workspace: row.get(2)?,
        subject: row.get(3)?,
        label: row.get(4)?,
        created_at: parse_ts(&row.get::<_, String>(5)?)?,
        expires_at: parse_ts(&row.get::<_, String>(6)?)?,
        used_at: opt_ts(row.get(7)?)?,
        revoked_at: opt_ts(row.get(8)?)?,
    })
}

fn grant_where(conn: &Connection, clause: &str, key: &str) -> Result<Option<Grant>, StoreError> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM access_grants WHERE {clause} = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![key])?;
    rows.next()?.map(decode_grant).transpose()
}

/// The grant with this token hash.
pub(crate) fn find_grant(conn: &Connection, token_hash: &str) -> Result<Option<Grant>, StoreError> {
    grant_where(conn, "token_hash", token_hash)
}

/// Inserts a grant (and its audit event, for share links).
pub(crate) fn create_grant(
    conn: &WriteConn<'_>,
    new: &NewGrant,
    grant: Grant,
) -> Result<Grant, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO access_grants (grant_id, token_hash, kind, workspace, subject, label, \
             created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            grant.grant_id,
            new.token_hash,
            grant.kind.as_str(),
            grant.workspace,
            grant.subject,
            grant.label,
            format_ts(grant.created_at),
            format_ts(grant.expires_at),
        ]);
    match inserted {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::ConstraintViolation => {
            return Err(StoreError::conflict(format!(
                "grant `{}` or its token already exists",
                grant.grant_id
            )));
        }
        Err(e) => return Err(e.into()),
    }
    if let Some((workspace, event)) = grants::created_event(&grant) {
        append(conn, &workspace, vec![event])?;
    }
    Ok(grant)
}

/// Uses a single-use grant.
pub(crate) fn consume_grant(
    conn: &Connection,
    token_hash: &str,
    kind: GrantKind,
    now: DateTime<Utc>,
) -> Result<GrantOutcome, StoreError> {
    let Some(grant) = find_grant(conn, token_hash)?.filter(|g| g.kind == kind) else {
        return Ok(GrantOutcome::Unknown);
    };
    if let Some(outcome) = grants::refusal(&grant, now) {
        return Ok(outcome(grant));
    }
    let mut grant = grant;
    let changed = conn
        .prepare_cached(
            "UPDATE access_grants SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL \
             AND revoked_at IS NULL",
        )?
        .execute(params![token_hash, format_ts(now)])?;
    if changed != 1 {
        // The writer is the only one changing grants, so this cannot
        // happen; refuse rather than sign anyone in twice.
        return Ok(GrantOutcome::AlreadyUsed(grant));
    }
    grant.used_at = Some(now);
    Ok(GrantOutcome::Consumed(grant))
}

/// Revokes a grant (idempotent), appending the audit event for share links.
pub(crate) fn revoke_grant(
    conn: &WriteConn<'_>,
    grant_id: &str,
    now: DateTime<Utc>,
) -> Result<Grant, StoreError> {
    let mut grant =
        grant_where(conn, "grant_id", grant_id)?.ok_or_else(|| grants::not_found(grant_id))?;
    if grant.revoked_at.is_some() {
        return Ok(grant);
    }
    conn.prepare_cached("UPDATE access_grants SET revoked_at = ?2 WHERE grant_id = ?1")?
        .execute(params![grant_id, format_ts(now)])?;
    if let Some((workspace, event)) = grants::revoked_event(&grant, now) {
        append(conn, &workspace, vec![event])?;
    }
    grant.revoked_at = Some(now);
    Ok(grant)
}

/// Deletes expired sign-in links and sessions.
pub(crate) fn prune_grants(conn: &Connection, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "DELETE FROM access_grants WHERE kind IN ('sign_in', 'session') AND expires_at < ?1",
        )?
        .execute(params![format_ts(before)])?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The workspace's grants of one kind, newest first.
pub(crate) fn list_grants(
    conn: &Connection,
    workspace: &str,
    kind: GrantKind,
) -> Result<Vec<Grant>, StoreError> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM access_grants WHERE workspace = ?1 AND kind = ?2 \
         ORDER BY created_at DESC, grant_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![workspace, kind.as_str()])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_grant(row)?);
    }
    Ok(out)
}

/// The chain head, or the genesis position.
pub(crate) fn chain_head(conn: &Connection, workspace: &str) -> Result<ChainPosition, StoreError> {
    Ok(match read::chain_head(conn, workspace)? {
        Some((seq, hash)) => ChainPosition { seq, hash },
        None => ChainPosition {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        },
    })
}

/// Every event of one run, in order.
pub(crate) fn run_events(
    conn: &Connection,
    workspace: &str,
    run_id: &str,
) -> Result<Vec<Event>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE workspace = ?1 AND run_id = ?2 ORDER BY seq"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![workspace, run_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read::decode_event(workspace, row)?);
    }
    Ok(out)
}

/// Runs created in `[since, until)`, grouped by UTC day and status.
pub(crate) fn run_stats(
    conn: &Connection,
    workspace: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<StatsRow>, StoreError> {
    // Timestamps are stored as fixed-width UTC text, so the first ten
    // characters are the UTC day and text order is time order.
    let mut stmt = conn.prepare_cached(
        "SELECT substr(created_at, 1, 10) AS day, governance_status, execution_status, COUNT(*) \
         FROM runs WHERE workspace = ?1 AND created_at >= ?2 AND created_at < ?3 \
         GROUP BY day, governance_status, execution_status ORDER BY day",
    )?;
    let mut rows = stmt.query(params![workspace, format_ts(since), format_ts(until)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let governance: String = row.get(1)?;
        let execution: String = row.get(2)?;
        let count: i64 = row.get(3)?;
        out.push(StatsRow {
            day: row.get(0)?,
            governance_status: GovernanceStatus::parse(&governance).ok_or_else(|| {
                StoreError::corrupt(format!("unknown governance status `{governance}`"))
            })?,
            execution_status: ExecutionStatus::parse(&execution).ok_or_else(|| {
                StoreError::corrupt(format!("unknown execution status `{execution}`"))
            })?,
            count: u64::try_from(count).unwrap_or(0),
        });
    }
    Ok(out)
}
