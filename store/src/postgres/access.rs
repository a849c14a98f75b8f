//! PostgreSQL side of the dashboard's needs: access grants, per-run events,
//! run statistics and the chain head.

use super::ops::append_one;
use super::read::{EVENT_COLUMNS, decode_raw_event, event_from};
use crate::chain::GENESIS_HASH;
use crate::error::StoreError;
use crate::grants;
use crate::log_key::LogKey;
use crate::model::{
    ChainPosition, Event, ExecutionStatus, GovernanceStatus, Grant, GrantKind, GrantOutcome,
    NewGrant, StatsRow,
};
use crate::rows::seq_from_db;
use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::{GenericClient, Row, Transaction};

const GRANT_COLUMNS: &str =
    "grant_id, kind, workspace, subject, label, created_at, expires_at, used_at, revoked_at";

fn decode_grant(row: &Row) -> Result<Grant, StoreError> {
    let kind: String = row.try_get(1)?;
    Ok(Grant {
        grant_id: row.try_get(0)?,
        kind: GrantKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt(format!("unknown grant kind `{kind}`")))?,
        workspace: row.try_get(2)?,
        subject: row.try_get(3)?,
        label: row.try_get(4)?,
        created_at: row.try_get(5)?,
        expires_at: row.try_get(6)?,
        used_at: row.try_get(7)?,
        revoked_at: row.try_get(8)?,
    })
}

async fn grant_where<C: GenericClient>(
    c: &C,
    clause: &str,
    key: &str,
    lock: bool,
) -> Result<Option<Grant>, StoreError> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM access_grants WHERE {clause} = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    c.query_opt(&sql, &[&key])
        .await?
        .as_ref()
        .map(decode_grant)
        .transpose()
}

/// The grant with this token hash.
pub(crate) async fn find_grant<C: GenericClient>(
    c: &C,
    token_hash: &str,
) -> Result<Option<Grant>, StoreError> {
    grant_where(c, "token_hash", token_hash, false).await
}

/// Inserts a grant (and its audit event, for share links).
pub(crate) async fn create_grant(
    tx: &Transaction<'_>,
    log_key: &LogKey,
    new: &NewGrant,
    grant: Grant,
) -> Result<Grant, StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO access_grants (grant_id, token_hash, kind, workspace, subject, label, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &grant.grant_id,
                &new.token_hash,
                &grant.kind.as_str(),
                &grant.workspace,
                &grant.subject,
                &grant.label,
                &grant.created_at,
                &grant.expires_at,
            ],
        )
        .await;
    if let Err(e) = inserted {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            return Err(StoreError::conflict(format!(
                "grant `{}` or its token already exists",
                grant.grant_id
            )));
        }
        return Err(e.into());
    }
    if let Some((workspace, event)) = grants::created_event(&grant) {
        append_one(tx, log_key, &workspace, event).await?;
    }
    Ok(grant)
}

/// Uses a single-use grant.
pub(crate) async fn consume_grant(
    tx: &Transaction<'_>,
    token_hash: &str,
    kind: GrantKind,
    now: DateTime<Utc>,
) -> Result<GrantOutcome, StoreError> {
    let Some(grant) = grant_where(tx, "token_hash", token_hash, true)
        .await?
        .filter(|g| g.kind == kind)
    else {
        return Ok(GrantOutcome::Unknown);
    };
    if let Some(outcome) = grants::refusal(&grant, now) {
        return Ok(outcome(grant));
    }
    let mut grant = grant;
    // The row is locked (FOR UPDATE), so exactly one transaction gets here.
    let changed = tx
        .execute(
            "UPDATE access_grants SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
            &[&token_hash, &now],
        )
        .await?;
    if changed != 1 {
        return Ok(GrantOutcome::AlreadyUsed(grant));
    }
    grant.used_at = Some(now);
    Ok(GrantOutcome::Consumed(grant))
}

/// Revokes a grant (idempotent), appending the audit event for share links.
pub(crate) async fn revoke_grant(
    tx: &Transaction<'_>,
    log_key: &LogKey,
    grant_id: &str,
    now: DateTime<Utc>,
) -> Result<Grant, StoreError> {
    let mut grant = grant_where(tx, "grant_id", grant_id, true)
        .await?
        .ok_or_else(|| grants::not_found(grant_id))?;
    if grant.revoked_at.is_some() {
        return Ok(grant);
    }
    tx.execute(
        "UPDATE access_grants SET revoked_at = $2 WHERE grant_id = $1",
        &[&grant_id, &now],
    )
    .await?;
    if let Some((workspace, event)) = grants::revoked_event(&grant, now) {
        append_one(tx, log_key, &workspace, event).await?;
    }
    grant.revoked_at = Some(now);
    Ok(grant)
}

/// Deletes expired sign-in links and sessions.
pub(crate) async fn prune_grants<C: GenericClient>(
    c: &C,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(c.execute(
        "DELETE FROM access_grants WHERE kind IN ('sign_in', 'session') AND expires_at < $1",
        &[&before],
    )
    .await?)
}

/// The workspace's grants of one kind, newest first.
pub(crate) async fn list_grants<C: GenericClient>(
    c: &C,
    workspace: &str,
    kind: GrantKind,
) -> Result<Vec<Grant>, StoreError> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM access_grants WHERE workspace = $1 AND kind = $2 \
         ORDER BY created_at DESC, grant_id"
    );
    c.query(&sql, &[&workspace, &kind.as_str()])
        .await?
        .iter()
        .map(decode_grant)
        .collect()
}

/// The chain head, or the genesis position.
pub(crate) async fn chain_head<C: GenericClient>(
    c: &C,
    workspace: &str,
) -> Result<ChainPosition, StoreError> {
    let row = c
        .query_opt(
            "SELECT seq, hash FROM chain_heads WHERE workspace = $1",
            &[&workspace],
        )
        .await?;
    Ok(match row {
        Some(row) => ChainPosition {
            seq: seq_from_db(row.try_get(0)?)?,
            hash: row.try_get(1)?,
        },
        None => ChainPosition {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        },
    })
}

/// Every event of one run, in order.
pub(crate) async fn run_events<C: GenericClient>(
    c: &C,
    workspace: &str,
    run_id: &str,
) -> Result<Vec<Event>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE workspace = $1 AND run_id = $2 ORDER BY seq"
    );
    c.query(&sql, &[&workspace, &run_id])
        .await?
        .iter()
        .map(|row| {
            let (raw, at) = decode_raw_event(row)?;
            event_from(workspace, raw, at)
        })
        .collect()
}

/// Runs created in `[since, until)`, grouped by UTC day and status.
pub(crate) async fn run_stats<C: GenericClient>(
    c: &C,
    workspace: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<StatsRow>, StoreError> {
    let rows = c
        .query(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, \
             governance_status, execution_status, COUNT(*) \
             FROM runs WHERE workspace = $1 AND created_at >= $2 AND created_at < $3 \
             GROUP BY day, governance_status, execution_status ORDER BY day",
            &[&workspace, &since, &until],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let governance: String = row.try_get(1)?;
            let execution: String = row.try_get(2)?;
            let count: i64 = row.try_get(3)?;
            Ok(StatsRow {
                day: row.try_get(0)?,
                governance_status: GovernanceStatus::parse(&governance).ok_or_else(|| {
                    StoreError::corrupt(format!("unknown governance status `{governance}`"))
                })?,
                execution_status: ExecutionStatus::parse(&execution).ok_or_else(|| {
                    StoreError::corrupt(format!("unknown execution status `{execution}`"))
                })?,
                count: u64::try_from(count).unwrap_or(0),
            })
        })
        .collect()
}
