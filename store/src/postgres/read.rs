//! PostgreSQL queries that only read, usable on a client or inside a
//! transaction (where the write path needs them).

use crate::chain::RawEvent;
use crate::cursor;
use crate::error::StoreError;
use crate::model::{
    ApiKeyRecord, ApprovalAnswer, ApprovalToken, Delivery, Event, EventKind, Run, RunFilter,
    RunPage,
};
use crate::projection::DeliveryFact;
use crate::rows::{self, RUN_COLUMNS, ReadRow, RunRow, seq_from_db, seq_to_db};
use crate::ts::format_ts;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

/// PostgreSQL converts each column to its Rust type itself.
impl ReadRow for Row {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }

    fn ts(&self, i: usize) -> Result<DateTime<Utc>, StoreError> {
        Ok(self.try_get(i)?)
    }

    fn opt_ts(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.try_get(i)?)
    }
}

const ANSWER_COLUMNS: &str = "run_id, approver_id, decision, channel, comment, client_addr, \
    user_agent, answered_at, counted";

fn decode_answer(row: &Row) -> Result<(String, ApprovalAnswer), StoreError> {
    Ok((
        row.try_get(0)?,
        ApprovalAnswer {
            approver_id: row.try_get(1)?,
            decision: rows::answer_decision(row.try_get(2)?)?,
            channel: row.try_get(3)?,
            comment: row.try_get(4)?,
            client_addr: row.try_get(5)?,
            user_agent: row.try_get(6)?,
            answered_at: row.try_get(7)?,
            counted: row.try_get(8)?,
        },
    ))
}

/// Rebuilds runs with their answers (one query for all of them).
async fn complete<C: GenericClient>(
    c: &C,
    workspace: &str,
    decoded: Vec<RunRow>,
) -> Result<Vec<Run>, StoreError> {
    if decoded.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = decoded.iter().map(|r| r.run_id.as_str()).collect();
    let sql = format!(
        "SELECT {ANSWER_COLUMNS} FROM approvals WHERE workspace = $1 AND run_id = ANY($2) \
         ORDER BY run_id, answer_no"
    );
    let mut by_run: HashMap<String, Vec<ApprovalAnswer>> = HashMap::new();
    for row in c.query(&sql, &[&workspace, &ids]).await? {
        let (run_id, answer) = decode_answer(&row)?;
        by_run.entry(run_id).or_default().push(answer);
    }
    decoded
        .into_iter()
        .map(|row| {
            let approvals = by_run.remove(&row.run_id).unwrap_or_default();
            row.into_run(approvals)
        })
        .collect()
}

/// The run `run_id` of `workspace`; `lock` takes its row lock.
pub(crate) async fn load_run<C: GenericClient>(
    c: &C,
    workspace: &str,
    run_id: &str,
    lock: bool,
) -> Result<Option<Run>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE workspace = $1 AND run_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(row) = c.query_opt(&sql, &[&workspace, &run_id]).await? else {
        return Ok(None);
    };
    let decoded = RunRow::decode(&row)?;
    Ok(complete(c, workspace, vec![decoded]).await?.pop())
}

/// Every run of `workspace`, with its approvals (for the audit).
pub(crate) async fn all_runs<C: GenericClient>(
    c: &C,
    workspace: &str,
) -> Result<Vec<Run>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE workspace = $1 ORDER BY run_id");
    let decoded = c
        .query(&sql, &[&workspace])
        .await?
        .iter()
        .map(RunRow::decode)
        .collect::<Result<Vec<_>, _>>()?;
    complete(c, workspace, decoded).await
}

/// Every delivery row of `workspace`: its run and the columns the audit
/// checks against the log.
pub(crate) async fn all_deliveries<C: GenericClient>(
    c: &C,
    workspace: &str,
) -> Result<Vec<(String, DeliveryFact)>, StoreError> {
    c.query(
        "SELECT run_id, delivery_id, approver_id, channel, token_hash FROM deliveries \
         WHERE workspace = $1 ORDER BY run_id, delivery_id",
        &[&workspace],
    )
    .await?
    .iter()
    .map(|row| {
        Ok((
            row.try_get(0)?,
            DeliveryFact {
                delivery_id: row.try_get(1)?,
                approver_id: row.try_get(2)?,
                channel: row.try_get(3)?,
                token_hash: row.try_get(4)?,
            },
        ))
    })
    .collect()
}

/// The run created with `idempotency_key` in `workspace`, if any.
pub(crate) async fn load_run_by_idempotency_key<C: GenericClient>(
    c: &C,
    workspace: &str,
    idempotency_key: &str,
) -> Result<Option<Run>, StoreError> {
    let row = c
        .query_opt(
            "SELECT run_id FROM runs WHERE workspace = $1 AND idempotency_key = $2",
            &[&workspace, &idempotency_key],
        )
        .await?;
    match row {
        Some(row) => {
            let run_id: String = row.try_get(0)?;
            load_run(c, workspace, &run_id, false).await
        }
        None => Ok(None),
    }
}

/// Due pending runs, oldest expiry first: (workspace, run_id).
pub(crate) async fn due_runs<C: GenericClient>(
    c: &C,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = c
        .query(
            "SELECT workspace, run_id FROM runs \
             WHERE governance_status = 'pending_approval' AND expires_at <= $1 \
             ORDER BY expires_at, workspace, run_id",
            &[&now],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// One page of runs, newest first.
pub(crate) async fn list_runs<C: GenericClient>(
    c: &C,
    workspace: &str,
    filter: &RunFilter,
) -> Result<RunPage, StoreError> {
    let limit = filter.effective_limit();
    let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE workspace = $1");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(workspace.to_owned())];
    let mut push = |sql: &mut String, clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        args.push(value);
        sql.push_str(&clause.replace('#', &format!("${}", args.len())));
    };
    if let Some(status) = filter.governance_status {
        push(
            &mut sql,
            " AND governance_status = #",
            Box::new(status.as_str()),
        );
    }
    if let Some(status) = filter.execution_status {
        push(
            &mut sql,
            " AND execution_status = #",
            Box::new(status.as_str()),
        );
    }
    if let Some(action) = &filter.action {
        push(&mut sql, " AND action = #", Box::new(action.clone()));
    }
    if let Some(actor) = &filter.actor {
        push(&mut sql, " AND actor = #", Box::new(actor.clone()));
    }
    if let Some(text) = &filter.cursor {
        let position = cursor::decode(text)?;
        push(
            &mut sql,
            " AND (created_at, run_id) < (#",
            Box::new(position.created_at),
        );
        push(&mut sql, ", #)", Box::new(position.run_id));
    }
    // One extra row tells whether there is a next page.
    push(
        &mut sql,
        " ORDER BY created_at DESC, run_id DESC LIMIT #",
        Box::new(i64::from(limit) + 1),
    );
    let refs: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = c.query(&sql, &refs).await?;
    let mut decoded = rows
        .iter()
        .map(RunRow::decode)
        .collect::<Result<Vec<_>, _>>()?;
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = decoded.len() > max;
    decoded.truncate(max);
    let next_cursor = if has_more {
        decoded
            .last()
            .map(|last| cursor::encode(last.created_at, &last.run_id))
    } else {
        None
    };
    let runs = complete(c, workspace, decoded).await?;
    Ok(RunPage { runs, next_cursor })
}

pub(crate) const EVENT_COLUMNS: &str = "seq, kind, run_id, at, data, prev_hash, hash";

pub(crate) fn decode_raw_event(row: &Row) -> Result<(RawEvent, DateTime<Utc>), StoreError> {
    let at: DateTime<Utc> = row.try_get(3)?;
    Ok((
        RawEvent {
            seq: seq_from_db(row.try_get(0)?)?,
            kind: row.try_get(1)?,
            run_id: row.try_get(2)?,
            at: format_ts(at),
            data: row.try_get(4)?,
            prev_hash: row.try_get(5)?,
            hash: row.try_get(6)?,
            mac: None,
        },
        at,
    ))
}

async fn raw_events<C: GenericClient>(
    c: &C,
    workspace: &str,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<(RawEvent, DateTime<Utc>)>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE workspace = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
    let rows = c
        .query(
            &sql,
            &[&workspace, &seq_to_db(after_seq)?, &i64::from(limit)],
        )
        .await?;
    rows.iter().map(decode_raw_event).collect()
}

/// Events of `workspace` after `after_seq`, in order.
pub(crate) async fn events<C: GenericClient>(
    c: &C,
    workspace: &str,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    raw_events(c, workspace, after_seq, limit)
        .await?
        .into_iter()
        .map(|(raw, at)| event_from(workspace, raw, at))
        .collect()
}

/// Builds an event of `workspace` from a decoded row.
pub(crate) fn event_from(
    workspace: &str,
    raw: RawEvent,
    at: DateTime<Utc>,
) -> Result<Event, StoreError> {
    Ok(Event {
        workspace: workspace.to_owned(),
        seq: raw.seq,
        kind: EventKind::parse(&raw.kind)
            .ok_or_else(|| StoreError::corrupt(format!("unknown event kind `{}`", raw.kind)))?,
        run_id: raw.run_id,
        at,
        data: serde_json::from_str(&raw.data)?,
        prev_hash: raw.prev_hash,
        hash: raw.hash,
    })
}

/// Workspaces that have events, a head or checkpoints.
pub(crate) async fn workspaces<C: GenericClient>(c: &C) -> Result<Vec<String>, StoreError> {
    let rows = c
        .query(
            "SELECT workspace FROM chain_heads WHERE seq > 0 UNION \
             SELECT DISTINCT workspace FROM events UNION \
             SELECT DISTINCT workspace FROM checkpoints ORDER BY 1",
            &[],
        )
        .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

const KEY_COLUMNS: &str = "workspace, key_id, role, label, created_at, revoked_at, actor, key_hash";

fn decode_key(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        workspace: row.try_get(0)?,
        key_id: row.try_get(1)?,
        role: rows::role(row.try_get(2)?)?,
        label: row.try_get(3)?,
        created_at: row.try_get(4)?,
        revoked_at: row.try_get(5)?,
        actor: row.try_get(6)?,
    })
}

fn decode_key_with_hash(row: &Row) -> Result<(ApiKeyRecord, String), StoreError> {
    Ok((decode_key(row)?, row.try_get(7)?))
}

/// The key row with this hash, unchecked (see `log::verified_key`).
pub(crate) async fn find_key_row<C: GenericClient>(
    c: &C,
    key_hash: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
    c.query_opt(&sql, &[&key_hash])
        .await?
        .as_ref()
        .map(decode_key)
        .transpose()
}

/// The key `key_id` of `workspace`, row-locked.
pub(crate) async fn lock_key<C: GenericClient>(
    c: &C,
    workspace: &str,
    key_id: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace = $1 AND key_id = $2 FOR UPDATE"
    );
    c.query_opt(&sql, &[&workspace, &key_id])
        .await?
        .as_ref()
        .map(decode_key)
        .transpose()
}

/// Keys of a workspace with their hashes, oldest first.
pub(crate) async fn list_keys_with_hash<C: GenericClient>(
    c: &C,
    workspace: &str,
) -> Result<Vec<(ApiKeyRecord, String)>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace = $1 ORDER BY created_at, key_id"
    );
    c.query(&sql, &[&workspace])
        .await?
        .iter()
        .map(decode_key_with_hash)
        .collect()
}

/// Keys of a workspace, oldest first.
pub(crate) async fn list_keys<C: GenericClient>(
    c: &C,
    workspace: &str,
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    Ok(list_keys_with_hash(c, workspace)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .collect())
}

/// Deliveries due at `now` for runs still pending.
/// Unsent deliveries due at `$1` of runs still pending, oldest due first,
/// at most `$2`.
pub(crate) const DUE_DELIVERIES: &str = "SELECT d.delivery_id, d.workspace, d.run_id, d.approver_id, d.channel, d.attempts, \
     d.next_attempt_at, d.last_error, d.sent_at, d.token_hash \
     FROM deliveries d JOIN runs r ON r.workspace = d.workspace AND r.run_id = d.run_id \
     WHERE d.sent_at IS NULL AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $1 \
     AND r.governance_status = 'pending_approval' \
     ORDER BY d.next_attempt_at, d.delivery_id LIMIT $2";

pub(crate) async fn due_deliveries<C: GenericClient>(
    c: &C,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = c.query(DUE_DELIVERIES, &[&now, &i64::from(limit)]).await?;
    rows.iter().map(delivery_from_row).collect()
}

/// A `deliveries` row, selected in the column order of the queries here.
pub(crate) fn delivery_from_row(row: &tokio_postgres::Row) -> Result<Delivery, StoreError> {
    let attempts: i32 = row.try_get(5)?;
    Ok(Delivery {
        delivery_id: row.try_get(0)?,
        workspace: row.try_get(1)?,
        run_id: row.try_get(2)?,
        approver_id: row.try_get(3)?,
        channel: row.try_get(4)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: row.try_get(6)?,
        last_error: row.try_get(7)?,
        sent_at: row.try_get(8)?,
        token_hash: row.try_get(9)?,
    })
}

/// Every delivery of a run, oldest first.
pub(crate) async fn deliveries_for_run<C: GenericClient>(
    c: &C,
    workspace: &str,
    run_id: &str,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = c
        .query(
            "SELECT delivery_id, workspace, run_id, approver_id, channel, attempts, \
             next_attempt_at, last_error, sent_at, token_hash \
             FROM deliveries WHERE workspace = $1 AND run_id = $2 \
             ORDER BY created_at, delivery_id",
            &[&workspace, &run_id],
        )
        .await?;
    rows.iter().map(delivery_from_row).collect()
}

/// The approval token with this hash; `lock` takes its row lock.
pub(crate) async fn find_token<C: GenericClient>(
    c: &C,
    token_hash: &str,
    lock: bool,
) -> Result<Option<ApprovalToken>, StoreError> {
    let sql = format!(
        "SELECT workspace, run_id, approver_id, expires_at, used_at FROM approval_tokens \
         WHERE token_hash = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(row) = c.query_opt(&sql, &[&token_hash]).await? else {
        return Ok(None);
    };
    Ok(Some(ApprovalToken {
        workspace: row.try_get(0)?,
        run_id: row.try_get(1)?,
        approver_id: row.try_get(2)?,
        expires_at: row.try_get(3)?,
        used_at: row.try_get(4)?,
    }))
}
