//! PostgreSQL write operations. Each runs inside the caller's transaction
//! and starts by locking its workspace's chain head, which serializes the
//! workspace's appends; the transaction commits events and projections
//! together.
//!
//! There is deliberately no UPDATE or DELETE statement for `events` here.

use super::log::{append_leaves, check_run};
use super::read;
use crate::chain::{GENESIS_HASH, PendingEvent, seal};
use crate::error::StoreError;
use crate::log_key::LogKey;
use crate::model::{
    AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalAnswer, ChainPosition, CreateRunOutcome,
    Delivery, Event, ExecutionOutcome, NewRun, Run, TokenOutcome,
};
use crate::rows::{RUN_COLUMN_COUNT, RUN_COLUMNS, RunRow, seq_from_db, seq_to_db};
use crate::run_state::{self, AnswerKind};
use crate::workspace_events;
use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;

/// Turns a uniqueness violation into a [`StoreError::Conflict`].
fn unique(e: tokio_postgres::Error, message: impl FnOnce() -> String) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::conflict(message())
    } else {
        e.into()
    }
}

/// Locks the chain head of `workspace` (creating it at seq 0) and returns it.
pub(crate) async fn lock_head(
    tx: &Transaction<'_>,
    workspace: &str,
) -> Result<(u64, String), StoreError> {
    tx.execute(
        "INSERT INTO chain_heads (workspace, seq, hash) VALUES ($1, 0, $2) \
         ON CONFLICT (workspace) DO NOTHING",
        &[&workspace, &GENESIS_HASH],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT seq, hash FROM chain_heads WHERE workspace = $1 FOR UPDATE",
            &[&workspace],
        )
        .await?;
    Ok((seq_from_db(row.try_get(0)?)?, row.try_get(1)?))
}

/// Appends events after `head` (which the caller has locked), with their
/// MACs and tree hashes, and moves the head.
async fn append(
    tx: &Transaction<'_>,
    key: &LogKey,
    workspace: &str,
    head: (u64, String),
    pending: Vec<PendingEvent>,
) -> Result<Vec<Event>, StoreError> {
    let size_before = head.0;
    let (mut seq, mut hash) = head;
    let insert = tx
        .prepare(
            "INSERT INTO events (workspace, seq, kind, run_id, at, data, prev_hash, hash, mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    let mut out = Vec::with_capacity(pending.len());
    let mut bodies = Vec::with_capacity(pending.len());
    for p in pending {
        let (event, data, body) = seal(workspace, seq, &hash, p);
        let mac = key.event_mac_hex(body.as_bytes());
        tx.execute(
            &insert,
            &[
                &workspace,
                &seq_to_db(event.seq)?,
                &event.kind.as_str(),
                &event.run_id,
                &event.at,
                &data,
                &event.prev_hash,
                &event.hash,
                &mac,
            ],
        )
        .await?;
        seq = event.seq;
        hash.clone_from(&event.hash);
        out.push(event);
        bodies.push(body);
    }
    append_leaves(tx, workspace, size_before, &bodies).await?;
    tx.execute(
        "UPDATE chain_heads SET seq = $2, hash = $3 WHERE workspace = $1",
        &[&workspace, &seq_to_db(seq)?, &hash],
    )
    .await?;
    Ok(out)
}

async fn append_for_run(
    tx: &Transaction<'_>,
    key: &LogKey,
    head: (u64, String),
    run: &mut Run,
    pending: Vec<PendingEvent>,
) -> Result<(), StoreError> {
    let events = append(tx, key, &run.proposal.workspace, head, pending).await?;
    if let Some(last) = events.last() {
        run.chain = ChainPosition {
            seq: last.seq,
            hash: last.hash.clone(),
        };
    }
    Ok(())
}

async fn insert_run(tx: &Transaction<'_>, run: &Run) -> Result<(), StoreError> {
    let r = RunRow::from_run(run)?;
    let placeholders: Vec<String> = (1..=RUN_COLUMN_COUNT).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO runs ({RUN_COLUMNS}) VALUES ({})",
        placeholders.join(", ")
    );
    tx.execute(
        &sql,
        &[
            &r.workspace,
            &r.run_id,
            &r.action,
            &r.actor,
            &r.source_json,
            &r.reasoning,
            &r.payload_json,
            &r.payload_hash,
            &r.payload_summary,
            &r.idempotency_key,
            &r.request_hash,
            &r.decision_status,
            &r.decision_rule,
            &r.decision_reason,
            &r.policy_version,
            &r.risk,
            &r.decision_details,
            &r.approval_group,
            &r.approval_quorum,
            &r.expires_at,
            &r.approvers_json,
            &r.governance_status,
            &r.execution_status,
            &r.execution_json,
            &r.created_at,
            &r.updated_at,
            &r.head_seq,
            &r.head_hash,
            &r.context_json,
        ],
    )
    .await?;
    Ok(())
}

/// Writes the mutable part of a run's projection.
async fn save_state(tx: &Transaction<'_>, run: &Run) -> Result<(), StoreError> {
    let execution_json = run
        .execution
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    tx.execute(
        "UPDATE runs SET governance_status = $3, execution_status = $4, execution_json = $5, \
         updated_at = $6, head_seq = $7, head_hash = $8 WHERE workspace = $1 AND run_id = $2",
        &[
            &run.proposal.workspace,
            &run.proposal.run_id,
            &run.governance_status.as_str(),
            &run.execution_status.as_str(),
            &execution_json,
            &run.updated_at,
            &seq_to_db(run.chain.seq)?,
            &run.chain.hash,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_answer(
    tx: &Transaction<'_>,
    run: &Run,
    answer_no: usize,
    a: &ApprovalAnswer,
) -> Result<(), StoreError> {
    let answer_no = i32::try_from(answer_no)
        .map_err(|_| StoreError::conflict("too many answers for one run"))?;
    tx.execute(
        "INSERT INTO approvals (workspace, run_id, answer_no, approver_id, decision, channel, \
         comment, client_addr, user_agent, answered_at, counted) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &run.proposal.workspace,
            &run.proposal.run_id,
            &answer_no,
            &a.approver_id,
            &a.decision.as_str(),
            &a.channel,
            &a.comment,
            &a.client_addr,
            &a.user_agent,
            &a.answered_at,
            &a.counted,
        ],
    )
    .await?;
    Ok(())
}

async fn require_run(
    tx: &Transaction<'_>,
    workspace: &str,
    run_id: &str,
) -> Result<Run, StoreError> {
    read::load_run(tx, workspace, run_id, true)
        .await?
        .ok_or_else(|| StoreError::run_not_found(run_id))
}

/// Creates a run (already validated by [`crate::validate::validate_new_run`], in [`crate::Checked`]).
pub(crate) async fn create_run(
    tx: &Transaction<'_>,
    key: &LogKey,
    new: &NewRun,
) -> Result<CreateRunOutcome, StoreError> {
    let head = lock_head(tx, &new.proposal.workspace).await?;
    if let Some(key) = &new.proposal.idempotency_key {
        if let Some(existing) =
            read::load_run_by_idempotency_key(tx, &new.proposal.workspace, key).await?
        {
            if existing.proposal.request_hash == new.proposal.request_hash {
                return Ok(CreateRunOutcome::Existing(existing));
            }
            return Err(StoreError::IdempotencyConflict {
                idempotency_key: key.clone(),
                existing_run_id: existing.proposal.run_id,
            });
        }
    }
    if read::load_run(tx, &new.proposal.workspace, &new.proposal.run_id, false)
        .await?
        .is_some()
    {
        return Err(StoreError::conflict(format!(
            "run id `{}` already exists",
            new.proposal.run_id
        )));
    }
    let (mut run, events) = run_state::initial_run(&new.proposal, &new.deliveries);
    append_for_run(tx, key, head, &mut run, events).await?;
    insert_run(tx, &run).await?;
    super::aggregates::record_entries(tx, &run.proposal).await?;
    let expires_at = run.proposal.approval.as_ref().map(|a| a.expires_at);
    for d in &new.deliveries {
        tx.execute(
            "INSERT INTO deliveries (delivery_id, workspace, run_id, approver_id, channel, \
             attempts, next_attempt_at, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
            &[
                &d.delivery_id,
                &run.proposal.workspace,
                &run.proposal.run_id,
                &d.approver_id,
                &d.channel,
                &d.next_attempt_at,
                &d.token_hash,
                &run.proposal.created_at,
            ],
        )
        .await
        .map_err(|e| {
            unique(e, || {
                format!("delivery id `{}` already exists", d.delivery_id)
            })
        })?;
        if let (Some(token_hash), Some(expires_at)) = (&d.token_hash, expires_at) {
            tx.execute(
                "INSERT INTO approval_tokens (token_hash, workspace, run_id, approver_id, \
                 expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[
                    token_hash,
                    &run.proposal.workspace,
                    &run.proposal.run_id,
                    &d.approver_id,
                    &expires_at,
                ],
            )
            .await
            .map_err(|e| unique(e, || "approval token hash already exists".to_owned()))?;
        }
    }
    Ok(CreateRunOutcome::Created(run))
}

/// Records an execution report.
pub(crate) async fn report_execution(
    tx: &Transaction<'_>,
    key: &LogKey,
    workspace: &str,
    run_id: &str,
    outcome: ExecutionOutcome,
    now: DateTime<Utc>,
) -> Result<Run, StoreError> {
    let head = lock_head(tx, workspace).await?;
    let mut run = require_run(tx, workspace, run_id).await?;
    check_run(tx, key, &run).await?;
    let events = run_state::plan_report(&mut run, outcome, now)?;
    if events.is_empty() {
        return Ok(run);
    }
    append_for_run(tx, key, head, &mut run, events).await?;
    save_state(tx, &run).await?;
    Ok(run)
}

/// Records an approver's answer.
pub(crate) async fn record_answer(
    tx: &Transaction<'_>,
    key: &LogKey,
    workspace: &str,
    run_id: &str,
    input: AnswerInput,
    now: DateTime<Utc>,
) -> Result<AnswerOutcome, StoreError> {
    let head = lock_head(tx, workspace).await?;
    let mut run = require_run(tx, workspace, run_id).await?;
    check_run(tx, key, &run).await?;
    let (kind, events) = run_state::plan_answer(&mut run, input, now)?;
    append_for_run(tx, key, head, &mut run, events).await?;
    save_state(tx, &run).await?;
    let answer_no = run.approvals.len().saturating_sub(1);
    if let Some(answer) = run.approvals.last() {
        insert_answer(tx, &run, answer_no, answer).await?;
    }
    Ok(match kind {
        AnswerKind::Recorded => AnswerOutcome::Recorded(run),
        AnswerKind::Duplicate => AnswerOutcome::Duplicate(run),
        AnswerKind::AlreadyDecided => AnswerOutcome::AlreadyDecided(run),
    })
}

/// Expires one run if it is still due; `None` if something else decided it.
pub(crate) async fn expire_one(
    tx: &Transaction<'_>,
    key: &LogKey,
    workspace: &str,
    run_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Run>, StoreError> {
    let head = lock_head(tx, workspace).await?;
    let mut run = require_run(tx, workspace, run_id).await?;
    if !run_state::is_due(&run, now) {
        return Ok(None);
    }
    let event = run_state::plan_expire(&mut run, now);
    append_for_run(tx, key, head, &mut run, vec![event]).await?;
    save_state(tx, &run).await?;
    Ok(Some(run))
}

/// Registers an API key.
pub(crate) async fn create_key(
    tx: &Transaction<'_>,
    log_key: &LogKey,
    key: &ApiKeyRecord,
    key_hash: &str,
) -> Result<ApiKeyRecord, StoreError> {
    let head = lock_head(tx, &key.workspace).await?;
    tx.execute(
        "INSERT INTO api_keys (workspace, key_id, key_hash, role, label, created_at, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &key.workspace,
            &key.key_id,
            &key_hash,
            &key.role.as_str(),
            &key.label,
            &key.created_at,
            &key.actor,
        ],
    )
    .await
    .map_err(|e| {
        unique(e, || {
            format!("key `{}` (or its hash) already exists", key.key_id)
        })
    })?;
    append(
        tx,
        log_key,
        &key.workspace,
        head,
        vec![workspace_events::key_created_event(key, key_hash)],
    )
    .await?;
    Ok(key.clone())
}

/// Revokes a key (idempotently).
pub(crate) async fn revoke_key(
    tx: &Transaction<'_>,
    log_key: &LogKey,
    workspace: &str,
    key_id: &str,
    now: DateTime<Utc>,
) -> Result<ApiKeyRecord, StoreError> {
    let head = lock_head(tx, workspace).await?;
    let mut key = read::lock_key(tx, workspace, key_id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: "key",
            id: key_id.to_owned(),
        })?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    tx.execute(
        "UPDATE api_keys SET revoked_at = $3 WHERE workspace = $1 AND key_id = $2",
        &[&workspace, &key_id, &now],
    )
    .await?;
    append(
        tx,
        log_key,
        workspace,
        head,
        vec![workspace_events::key_revoked_event(key_id, now)],
    )
    .await?;
    key.revoked_at = Some(now);
    Ok(key)
}

/// Appends a single event that concerns no run.
pub(crate) async fn append_one(
    tx: &Transaction<'_>,
    key: &LogKey,
    workspace: &str,
    event: PendingEvent,
) -> Result<Event, StoreError> {
    let head = lock_head(tx, workspace).await?;
    append(tx, key, workspace, head, vec![event])
        .await?
        .pop()
        .ok_or_else(|| StoreError::corrupt("append returned no event"))
}

/// Uses a single-use approval token.
pub(crate) async fn consume_token(
    tx: &Transaction<'_>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<TokenOutcome, StoreError> {
    let Some(mut token) = read::find_token(tx, token_hash, true).await? else {
        return Ok(TokenOutcome::Unknown);
    };
    if token.used_at.is_some() {
        return Ok(TokenOutcome::AlreadyUsed(token));
    }
    if now >= token.expires_at {
        return Ok(TokenOutcome::Expired(token));
    }
    tx.execute(
        "UPDATE approval_tokens SET used_at = $2 WHERE token_hash = $1",
        &[&token_hash, &now],
    )
    .await?;
    token.used_at = Some(now);
    Ok(TokenOutcome::Consumed(token))
}

/// Claims due deliveries until `until`: rows another transaction is
/// claiming are skipped (`SKIP LOCKED`), and the claimed rows' next attempt
/// moves to the lease's end, so no other gate picks them up meanwhile.
pub(crate) async fn claim_due_deliveries(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let claim = format!("{} FOR UPDATE OF d SKIP LOCKED", read::DUE_DELIVERIES);
    let rows = tx.query(&claim, &[&now, &i64::from(limit)]).await?;
    let claimed = rows
        .iter()
        .map(read::delivery_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if !claimed.is_empty() {
        let ids: Vec<&str> = claimed.iter().map(|d| d.delivery_id.as_str()).collect();
        tx.execute(
            "UPDATE deliveries SET next_attempt_at = $2 WHERE delivery_id = ANY($1)",
            &[&ids, &until],
        )
        .await?;
    }
    Ok(claimed)
}
