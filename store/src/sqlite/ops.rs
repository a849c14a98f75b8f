// Over 600 lines: every write operation of the SQLite writer, kept together with the helpers they share.
//! SQLite write operations. Each runs on the writer's connection inside the
//! batch's transaction: events and projections change together or not at
//! all (see [`super::writer`] for how a failing operation is undone).
//!
//! There is deliberately no UPDATE or DELETE statement for `events` here.

use super::log::{WriteConn, append_leaves, check_run};
use super::read;
use crate::canonical::to_canonical_json;
use crate::chain::{GENESIS_HASH, PendingEvent, chain_hash, event_body, seal};
use crate::error::StoreError;
use crate::model::{
    AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalAnswer, ChainPosition, Event,
    ExecutionOutcome, NewRun, Run,
};
use crate::rows::{RUN_COLUMN_COUNT, RUN_COLUMNS, RunRow, seq_to_db};
use crate::run_state::{self, AnswerKind};
use crate::ts::format_ts;
use crate::workspace_events;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, ffi, params};

fn opt_ts(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(format_ts)
}

/// Turns a uniqueness violation into a [`StoreError::Conflict`].
fn unique(e: rusqlite::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            StoreError::conflict(message())
        }
        _ => e.into(),
    }
}

/// Whether `e` is a UNIQUE or PRIMARY KEY violation.
fn is_duplicate(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// An event sealed in memory, with the canonical text of its data, its
/// canonical bytes (the leaf data) and its MAC.
struct Sealed {
    event: Event,
    data: String,
    body: String,
    mac: String,
}

/// Places `pending` after the workspace's current head and hashes them,
/// without writing anything yet.
fn seal_after(
    conn: &WriteConn<'_>,
    workspace: &str,
    pending: Vec<PendingEvent>,
) -> Result<(u64, Vec<Sealed>), StoreError> {
    let (start, start_hash) = read::head_or_genesis(conn, workspace)?;
    let (mut seq, mut hash) = (start, start_hash);
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let (event, data, body) = seal(workspace, seq, &hash, p);
        seq = event.seq;
        hash.clone_from(&event.hash);
        let mac = conn.log.key.event_mac_hex(body.as_bytes());
        out.push(Sealed {
            event,
            data,
            body,
            mac,
        });
    }
    Ok((start, out))
}

/// The events insert: every column, the MAC included.
const INSERT_EVENT: &str = "INSERT INTO events \
    (workspace, seq, kind, run_id, at, data, prev_hash, hash, mac) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Writes sealed events (placed after `size_before` events), their tree
/// hashes, and moves the workspace's head to the last one.
fn write_sealed(
    conn: &WriteConn<'_>,
    workspace: &str,
    size_before: u64,
    sealed: &[Sealed],
) -> Result<(), StoreError> {
    let Some(last) = sealed.last() else {
        return Ok(());
    };
    let mut stmt = conn.prepare_cached(INSERT_EVENT)?;
    for Sealed {
        event, data, mac, ..
    } in sealed
    {
        stmt.execute(params![
            workspace,
            seq_to_db(event.seq)?,
            event.kind.as_str(),
            event.run_id,
            format_ts(event.at),
            data,
            event.prev_hash,
            event.hash,
            mac,
        ])?;
    }
    append_leaves(
        conn,
        workspace,
        size_before,
        sealed.iter().map(|s| s.body.as_str()),
    )?;
    conn.prepare_cached(
        "INSERT INTO chain_heads (workspace, seq, hash) VALUES (?1, ?2, ?3) \
         ON CONFLICT (workspace) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![
        workspace,
        seq_to_db(last.event.seq)?,
        last.event.hash
    ])?;
    Ok(())
}

/// Appends events to a workspace's chain and moves its head.
pub(crate) fn append(
    conn: &WriteConn<'_>,
    workspace: &str,
    pending: Vec<PendingEvent>,
) -> Result<Vec<Event>, StoreError> {
    let (size_before, sealed) = seal_after(conn, workspace, pending)?;
    write_sealed(conn, workspace, size_before, &sealed)?;
    Ok(sealed.into_iter().map(|s| s.event).collect())
}

fn append_for_run(
    conn: &WriteConn<'_>,
    run: &mut Run,
    pending: Vec<PendingEvent>,
) -> Result<(), StoreError> {
    let events = append(conn, &run.proposal.workspace, pending)?;
    if let Some(last) = events.last() {
        run.chain = ChainPosition {
            seq: last.seq,
            hash: last.hash.clone(),
        };
    }
    Ok(())
}

/// The `INSERT` of a run row, built once.
static INSERT_RUN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=RUN_COLUMN_COUNT).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO runs ({RUN_COLUMNS}) VALUES ({})",
        placeholders.join(", ")
    )
});

/// Inserts a run row whose chain head is (`head_seq`, `head_hash`);
/// `Ok(false)` if its id or idempotency key is taken (then nothing was
/// written).
fn insert_run(
    conn: &Connection,
    r: &PreparedRow,
    head_seq: u64,
    head_hash: &str,
) -> Result<bool, StoreError> {
    let inserted = conn.prepare_cached(&INSERT_RUN)?.execute(params![
        r.row.workspace,
        r.row.run_id,
        r.row.action,
        r.row.actor,
        r.row.source_json,
        r.row.reasoning,
        r.row.payload_json,
        r.row.payload_hash,
        r.row.payload_summary,
        r.row.idempotency_key,
        r.row.request_hash,
        r.row.decision_status,
        r.row.decision_rule,
        r.row.decision_reason,
        r.row.policy_version,
        r.row.risk,
        r.row.decision_details,
        r.row.approval_group,
        r.row.approval_quorum,
        r.expires_at,
        r.row.approvers_json,
        r.row.governance_status,
        r.row.execution_status,
        r.row.execution_json,
        r.created_at,
        r.updated_at,
        seq_to_db(head_seq)?,
        head_hash,
        r.row.context_json,
    ]);
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_duplicate(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A run row with its timestamps already in their stored form.
struct PreparedRow {
    row: RunRow,
    created_at: String,
    updated_at: String,
    expires_at: Option<String>,
}

/// An event whose data is already canonical JSON: only its place in the
/// chain (and so its hash) is left to the writer.
struct PreparedEvent {
    kind: &'static str,
    at: String,
    data: String,
}

/// Everything of a new run that does not depend on the chain's head,
/// computed before the run reaches the writer thread, so the single
/// writer only orders, hashes and inserts.
pub(crate) struct PreparedRun {
    new: NewRun,
    run: Run,
    row: PreparedRow,
    events: Vec<PreparedEvent>,
}

impl PreparedRun {
    /// Prepares `new` (already validated by [`crate::validate::validate_new_run`], in [`crate::Checked`]).
    pub(crate) fn new(new: NewRun) -> Result<Self, StoreError> {
        let (run, pending) = run_state::initial_run(&new.proposal, &new.deliveries);
        let row = RunRow::from_run(&run)?;
        let events = pending
            .into_iter()
            .map(|p| PreparedEvent {
                kind: p.kind.as_str(),
                at: format_ts(p.at),
                data: to_canonical_json(&p.data),
            })
            .collect();
        Ok(Self {
            row: PreparedRow {
                created_at: format_ts(row.created_at),
                updated_at: format_ts(row.updated_at),
                expires_at: opt_ts(row.expires_at),
                row,
            },
            new,
            run,
            events,
        })
    }

    /// The created run, placed at `chain` in its workspace's chain.
    pub(crate) fn into_run(self, chain: ChainPosition) -> Run {
        let mut run = self.run;
        run.chain = chain;
        run
    }

    /// The created run, when the prepared value is shared.
    pub(crate) fn run_at(&self, chain: ChainPosition) -> Run {
        let mut run = self.run.clone();
        run.chain = chain;
        run
    }
}

/// What the writer did with a [`PreparedRun`].
pub(crate) enum PreparedOutcome {
    /// Inserted at this chain position.
    Created(ChainPosition),
    /// An earlier run with the same idempotency key and request.
    Existing(Box<Run>),
}

/// Writes the mutable part of a run's projection.
fn save_state(conn: &Connection, run: &Run) -> Result<(), StoreError> {
    let execution_json = run
        .execution
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    conn.prepare_cached(
        "UPDATE runs SET governance_status = ?3, execution_status = ?4, execution_json = ?5, \
         updated_at = ?6, head_seq = ?7, head_hash = ?8 WHERE workspace = ?1 AND run_id = ?2",
    )?
    .execute(params![
        run.proposal.workspace,
        run.proposal.run_id,
        run.governance_status.as_str(),
        run.execution_status.as_str(),
        execution_json,
        format_ts(run.updated_at),
        seq_to_db(run.chain.seq)?,
        run.chain.hash,
    ])?;
    Ok(())
}

fn insert_answer(
    conn: &Connection,
    run: &Run,
    answer_no: usize,
    a: &ApprovalAnswer,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO approvals (workspace, run_id, answer_no, approver_id, decision, channel, \
         comment, client_addr, user_agent, answered_at, counted) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        run.proposal.workspace,
        run.proposal.run_id,
        i64::try_from(answer_no).unwrap_or(i64::MAX),
        a.approver_id,
        a.decision.as_str(),
        a.channel,
        a.comment,
        a.client_addr,
        a.user_agent,
        format_ts(a.answered_at),
        a.counted,
    ])?;
    Ok(())
}

fn require_run(conn: &Connection, workspace: &str, run_id: &str) -> Result<Run, StoreError> {
    read::load_run(conn, workspace, run_id)?.ok_or_else(|| StoreError::run_not_found(run_id))
}

/// Why a run could not be inserted: an earlier run with the same
/// idempotency key (returned when the request is the same), or its id.
fn existing_run(conn: &Connection, new: &NewRun) -> Result<Run, StoreError> {
    if let Some(key) = &new.proposal.idempotency_key {
        if let Some(existing) =
            read::load_run_by_idempotency_key(conn, &new.proposal.workspace, key)?
        {
            if existing.proposal.request_hash == new.proposal.request_hash {
                return Ok(existing);
            }
            return Err(StoreError::IdempotencyConflict {
                idempotency_key: key.clone(),
                existing_run_id: existing.proposal.run_id,
            });
        }
    }
    Err(StoreError::conflict(format!(
        "run id `{}` already exists",
        new.proposal.run_id
    )))
}

/// Creates a prepared run (see [`PreparedRun`]).
///
/// The run row goes in before anything else, so a taken idempotency key or
/// run id (caught by the table's unique indexes, not looked up beforehand)
/// fails before the command has written a row.
pub(crate) fn create_run(
    conn: &WriteConn<'_>,
    prepared: &PreparedRun,
) -> Result<PreparedOutcome, StoreError> {
    let new = &prepared.new;
    let workspace = new.proposal.workspace.as_str();
    let (start_seq, start_hash) = read::head_or_genesis(conn, workspace)?;
    // hashes[0] is the head before the run; hashes[i] the hash of event i,
    // bodies[i - 1] its canonical bytes.
    let mut hashes = Vec::with_capacity(prepared.events.len() + 1);
    let mut bodies = Vec::with_capacity(prepared.events.len());
    hashes.push(start_hash);
    let mut seq = start_seq;
    for e in &prepared.events {
        seq += 1;
        let prev = hashes.last().map_or(GENESIS_HASH, String::as_str);
        let body = event_body(
            workspace,
            seq,
            e.kind,
            Some(&new.proposal.run_id),
            &e.at,
            &e.data,
            prev,
        );
        hashes.push(chain_hash(prev, &body));
        bodies.push(body);
    }
    let hash = hashes
        .last()
        .map_or(GENESIS_HASH, String::as_str)
        .to_owned();
    if !insert_run(conn, &prepared.row, seq, &hash)? {
        return existing_run(conn, new).map(|run| PreparedOutcome::Existing(Box::new(run)));
    }
    super::aggregates::record_entries(conn, &new.proposal, &prepared.row.created_at)?;
    let mut stmt = conn.prepare_cached(INSERT_EVENT)?;
    let mut event_seq = start_seq;
    for ((e, link), body) in prepared.events.iter().zip(hashes.windows(2)).zip(&bodies) {
        event_seq += 1;
        stmt.execute(params![
            workspace,
            seq_to_db(event_seq)?,
            e.kind,
            new.proposal.run_id,
            e.at,
            e.data,
            link[0],
            link[1],
            conn.log.key.event_mac_hex(body.as_bytes()),
        ])?;
    }
    drop(stmt);
    append_leaves(
        conn,
        workspace,
        start_seq,
        bodies.iter().map(String::as_str),
    )?;
    conn.prepare_cached(
        "INSERT INTO chain_heads (workspace, seq, hash) VALUES (?1, ?2, ?3) \
         ON CONFLICT (workspace) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![workspace, seq_to_db(seq)?, hash])?;
    let expires_at = prepared.row.expires_at.as_deref();
    for d in &new.deliveries {
        conn.prepare_cached(
            "INSERT INTO deliveries (delivery_id, workspace, run_id, approver_id, channel, \
             attempts, next_attempt_at, token_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8)",
        )?
        .execute(params![
            d.delivery_id,
            workspace,
            new.proposal.run_id,
            d.approver_id,
            d.channel,
            format_ts(d.next_attempt_at),
            d.token_hash,
            prepared.row.created_at,
        ])
        .map_err(|e| {
            unique(e, || {
                format!("delivery id `{}` already exists", d.delivery_id)
            })
        })?;
        // A `DELIVERY_ID.…` key is found through the row just written.
        let in_row =
            d.token_hash.as_deref().and_then(read::token_delivery) == Some(d.delivery_id.as_str());
        if let Some(token_hash) = d.token_hash.as_ref().filter(|_| !in_row) {
            conn.prepare_cached(
                "INSERT INTO approval_tokens (token_hash, workspace, run_id, approver_id, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                token_hash,
                workspace,
                new.proposal.run_id,
                d.approver_id,
                expires_at
            ])
            .map_err(|e| unique(e, || "approval token hash already exists".to_owned()))?;
        }
    }
    Ok(PreparedOutcome::Created(ChainPosition { seq, hash }))
}

/// Records an execution report.
pub(crate) fn report_execution(
    conn: &WriteConn<'_>,
    workspace: &str,
    run_id: &str,
    outcome: ExecutionOutcome,
    now: DateTime<Utc>,
) -> Result<Run, StoreError> {
    let mut run = require_run(conn, workspace, run_id)?;
    check_run(conn, &conn.log.key, &run)?;
    let events = run_state::plan_report(&mut run, outcome, now)?;
    if events.is_empty() {
        return Ok(run);
    }
    append_for_run(conn, &mut run, events)?;
    save_state(conn, &run)?;
    Ok(run)
}

/// Records an approver's answer.
pub(crate) fn record_answer(
    conn: &WriteConn<'_>,
    workspace: &str,
    run_id: &str,
    input: AnswerInput,
    now: DateTime<Utc>,
) -> Result<AnswerOutcome, StoreError> {
    let mut run = require_run(conn, workspace, run_id)?;
    check_run(conn, &conn.log.key, &run)?;
    let (kind, events) = run_state::plan_answer(&mut run, input, now)?;
    append_for_run(conn, &mut run, events)?;
    save_state(conn, &run)?;
    let answer_no = run.approvals.len().saturating_sub(1);
    if let Some(answer) = run.approvals.last() {
        insert_answer(conn, &run, answer_no, answer)?;
    }
    Ok(match kind {
        AnswerKind::Recorded => AnswerOutcome::Recorded(run),
        AnswerKind::Duplicate => AnswerOutcome::Duplicate(run),
        AnswerKind::AlreadyDecided => AnswerOutcome::AlreadyDecided(run),
    })
}

/// Expires every due pending run.
pub(crate) fn expire_due(conn: &WriteConn<'_>, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
    let mut expired = Vec::new();
    for (workspace, run_id) in read::due_runs(conn, now)? {
        let mut run = require_run(conn, &workspace, &run_id)?;
        if !run_state::is_due(&run, now) {
            continue;
        }
        let event = run_state::plan_expire(&mut run, now);
        append_for_run(conn, &mut run, vec![event])?;
        save_state(conn, &run)?;
        expired.push(run);
    }
    Ok(expired)
}

/// Registers an API key.
pub(crate) fn create_key(
    conn: &WriteConn<'_>,
    key: &ApiKeyRecord,
    key_hash: &str,
) -> Result<ApiKeyRecord, StoreError> {
    conn.prepare_cached(
        "INSERT INTO api_keys (workspace, key_id, key_hash, role, label, created_at, actor) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        key.workspace,
        key.key_id,
        key_hash,
        key.role.as_str(),
        key.label,
        format_ts(key.created_at),
        key.actor,
    ])
    .map_err(|e| {
        unique(e, || {
            format!("key `{}` (or its hash) already exists", key.key_id)
        })
    })?;
    append(
        conn,
        &key.workspace,
        vec![workspace_events::key_created_event(key, key_hash)],
    )?;
    Ok(key.clone())
}

/// Revokes a key (idempotently).
pub(crate) fn revoke_key(
    conn: &WriteConn<'_>,
    workspace: &str,
    key_id: &str,
    now: DateTime<Utc>,
) -> Result<ApiKeyRecord, StoreError> {
    let mut key = read::load_key(conn, workspace, key_id)?.ok_or_else(|| StoreError::NotFound {
        entity: "key",
        id: key_id.to_owned(),
    })?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    conn.prepare_cached(
        "UPDATE api_keys SET revoked_at = ?3 WHERE workspace = ?1 AND key_id = ?2",
    )?
    .execute(params![workspace, key_id, format_ts(now)])?;
    append(
        conn,
        workspace,
        vec![workspace_events::key_revoked_event(key_id, now)],
    )?;
    key.revoked_at = Some(now);
    Ok(key)
}

/// Appends a single event that concerns no run.
pub(crate) fn append_one(
    conn: &WriteConn<'_>,
    workspace: &str,
    event: PendingEvent,
) -> Result<Event, StoreError> {
    append(conn, workspace, vec![event])?
        .pop()
        .ok_or_else(|| StoreError::corrupt("append returned no event"))
}
