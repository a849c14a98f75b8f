//! The verifiable log on SQLite: the writer's cached frontiers, the
//! upgrade of databases from before it, and its reads (tree heads, proofs,
//! checkpoints, the per-run check and the full audit).
//!
//! The writer keeps each workspace's frontier in memory, loaded from
//! `tree_hashes` the first time the workspace is appended to, so an append
//! reads nothing more than before. The cache is checked against the chain
//! head's seq (read by every append anyway) and dropped whenever a batch or
//! a command is rolled back, so it never runs ahead of what is committed.

use super::read;
use crate::audit::{AUDIT_PAGE, Auditor};
use crate::chain::{ChainVerifier, RawEvent, event_body};
use crate::error::StoreError;
use crate::extension::ExtensionCheck;
use crate::log_key::LogKey;
use crate::model::{
    AnswerInput, ApiKeyRecord, ApprovalToken, Run, StoredCheckpoint, TreeExtension, TreeHead,
};
use crate::projection;
use crate::rows::{seq_from_db, seq_to_db};
use crate::tlog::{self, Hash};
use crate::tree::{Frontier, hash_from_db, index_to_db, tree_error};
use crate::ts::{format_ts, parse_ts};
use rusqlite::{Connection, params};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// The writer's view of the log: the key and the cached frontiers.
pub(crate) struct LogState {
    pub key: Arc<LogKey>,
    trees: RefCell<HashMap<String, Frontier>>,
}

impl LogState {
    pub(crate) fn new(key: Arc<LogKey>) -> Self {
        Self {
            key,
            trees: RefCell::new(HashMap::new()),
        }
    }

    /// Drops every cached frontier (after a rollback).
    pub(crate) fn forget_trees(&self) {
        self.trees.borrow_mut().clear();
    }
}

/// The writer's connection, with the log state its appends need.
pub(crate) struct WriteConn<'a> {
    pub conn: &'a Connection,
    pub log: &'a LogState,
}

impl std::ops::Deref for WriteConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Reads the stored hashes at `indexes` (in that order, repeats allowed)
/// with one query.
fn read_hashes(
    conn: &Connection,
    workspace: &str,
    indexes: &[u64],
) -> Result<Vec<Hash>, StoreError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    // The indexes are numbers this process computed: safe to inline.
    let list: Vec<String> = indexes.iter().map(u64::to_string).collect();
    let sql = format!(
        "SELECT idx, hash FROM tree_hashes WHERE workspace = ?1 AND idx IN ({})",
        list.join(",")
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params![workspace])?;
    let mut found = HashMap::with_capacity(indexes.len());
    while let Some(row) = rows.next()? {
        let idx: i64 = row.get(0)?;
        let hash: Vec<u8> = row.get(1)?;
        found.insert(idx, hash_from_db(&hash)?);
    }
    indexes
        .iter()
        .map(|i| {
            let idx = index_to_db(*i)?;
            found.get(&idx).copied().ok_or_else(|| {
                StoreError::corrupt(format!(
                    "stored tree hash {i} of workspace `{workspace}` is missing"
                ))
            })
        })
        .collect()
}

fn load_frontier(conn: &Connection, workspace: &str, size: u64) -> Result<Frontier, StoreError> {
    let hashes = read_hashes(conn, workspace, &Frontier::indexes(size)?)?;
    Frontier::from_hashes(size, &hashes)
}

/// Appends the leaves `bodies` (events `size_before + 1 ...`) to the
/// workspace's tree and stores the new hashes.
pub(crate) fn append_leaves<'b>(
    conn: &WriteConn<'_>,
    workspace: &str,
    size_before: u64,
    bodies: impl IntoIterator<Item = &'b str>,
) -> Result<(), StoreError> {
    let mut trees = conn.log.trees.borrow_mut();
    let cached = trees
        .get(workspace)
        .is_some_and(|f| f.size() == size_before);
    if !cached {
        let loaded = load_frontier(conn, workspace, size_before)?;
        trees.insert(workspace.to_owned(), loaded);
    }
    let frontier = trees
        .get_mut(workspace)
        .ok_or_else(|| StoreError::corrupt("frontier cache lost an entry"))?;
    let mut insert =
        conn.prepare_cached("INSERT INTO tree_hashes (workspace, idx, hash) VALUES (?1, ?2, ?3)")?;
    for body in bodies {
        let new = frontier.append(body.as_bytes())?;
        for (k, hash) in (new.first_index..).zip(&new.hashes) {
            insert.execute(params![workspace, index_to_db(k)?, &hash[..]])?;
        }
    }
    Ok(())
}

/// Gives the events stored before version 4 their MACs and builds their
/// trees, inside the migration's transaction. The events table refuses
/// UPDATE, so its trigger is dropped and recreated around the backfill.
pub(crate) fn backfill(conn: &Connection, key: &LogKey) -> Result<(), StoreError> {
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    if total == 0 {
        return Ok(());
    }
    tracing::info!(
        events = total,
        "audit log upgrade: authenticating existing events and building their Merkle trees"
    );
    conn.execute_batch("DROP TRIGGER events_no_update")?;
    let workspaces: Vec<String> = conn
        .prepare("SELECT DISTINCT workspace FROM events ORDER BY workspace")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut done: i64 = 0;
    for workspace in workspaces {
        let mut frontier = Frontier::empty();
        let mut chain = Some(ChainVerifier::new(&workspace));
        let mut after = 0u64;
        loop {
            let page = raw_events(conn, &workspace, after, AUDIT_PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for raw in &page {
                if let Some(Err(e)) = chain.as_mut().map(|v| v.push(raw)) {
                    crate::audit::warn_broken(&e);
                    chain = None;
                }
                let body = leaf_body(&workspace, raw);
                conn.prepare_cached(
                    "UPDATE events SET mac = ?3 WHERE workspace = ?1 AND seq = ?2",
                )?
                .execute(params![
                    workspace,
                    seq_to_db(raw.seq)?,
                    key.event_mac_hex(body.as_bytes())
                ])?;
                let new = frontier.append(body.as_bytes())?;
                let mut insert = conn.prepare_cached(
                    "INSERT INTO tree_hashes (workspace, idx, hash) VALUES (?1, ?2, ?3)",
                )?;
                for (k, hash) in (new.first_index..).zip(&new.hashes) {
                    insert.execute(params![workspace, index_to_db(k)?, &hash[..]])?;
                }
            }
            done += i64::try_from(page.len()).unwrap_or(0);
            tracing::info!(done, total, workspace = %workspace, "audit log upgrade: progress");
        }
        let head = read::chain_head(conn, &workspace)?.filter(|(seq, _)| *seq > 0);
        if let Some(Err(e)) = chain.map(|v| v.finish(head)) {
            crate::audit::warn_broken(&e);
        }
    }
    conn.execute_batch(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events \
         BEGIN SELECT RAISE(ABORT, 'countersign: events are append-only'); END;",
    )?;
    tracing::info!(events = total, "audit log upgrade: done");
    Ok(())
}

/// The leaf data of a stored event: its canonical bytes (the stored data
/// text itself when it is not JSON, so nothing is skipped).
fn leaf_body(workspace: &str, raw: &RawEvent) -> String {
    raw.body(workspace).unwrap_or_else(|| {
        event_body(
            workspace,
            raw.seq,
            &raw.kind,
            raw.run_id.as_deref(),
            &raw.at,
            &raw.data,
            &raw.prev_hash,
        )
    })
}

const RAW_COLUMNS: &str = "seq, kind, run_id, at, data, prev_hash, hash, mac";

fn decode_raw(row: &rusqlite::Row<'_>) -> Result<RawEvent, StoreError> {
    Ok(RawEvent {
        seq: seq_from_db(row.get(0)?)?,
        kind: row.get(1)?,
        run_id: row.get(2)?,
        at: row.get(3)?,
        data: row.get(4)?,
        prev_hash: row.get(5)?,
        hash: row.get(6)?,
        mac: row.get(7)?,
    })
}

fn raw_events(
    conn: &Connection,
    workspace: &str,
    after: u64,
    limit: u32,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!(
        "SELECT {RAW_COLUMNS} FROM events WHERE workspace = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![workspace, seq_to_db(after)?, i64::from(limit)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_raw(row)?);
    }
    Ok(out)
}

fn run_raw_events(
    conn: &Connection,
    workspace: &str,
    run_id: &str,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!(
        "SELECT {RAW_COLUMNS} FROM events WHERE workspace = ?1 AND run_id = ?2 ORDER BY seq"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![workspace, run_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_raw(row)?);
    }
    Ok(out)
}

/// Checks a loaded run against its own events (see [`projection::check_run`]).
pub(crate) fn check_run(conn: &Connection, key: &LogKey, run: &Run) -> Result<(), StoreError> {
    let raws = run_raw_events(conn, &run.proposal.workspace, &run.proposal.run_id)?;
    projection::check_run(key, run, &raws)
}

/// A link token about to be acted on, checked against its run's events
/// (see [`projection::check_token_delivery`]).
pub(crate) fn check_token(
    conn: &Connection,
    key: &LogKey,
    token: &ApprovalToken,
    token_hash: &str,
    answer: &AnswerInput,
) -> Result<(), StoreError> {
    let raws = run_raw_events(conn, &token.workspace, &token.run_id)?;
    projection::check_token_delivery(key, token, token_hash, &raws, answer)
}

/// A run, checked against its events.
pub(crate) fn verified_run(
    conn: &Connection,
    key: &LogKey,
    workspace: &str,
    run_id: &str,
) -> Result<Option<Run>, StoreError> {
    let Some(run) = read::load_run(conn, workspace, run_id)? else {
        return Ok(None);
    };
    check_run(conn, key, &run)?;
    Ok(Some(run))
}

/// The key events (key_created, key_revoked) of one key, in seq order,
/// through the `events_by_key` index of migration 6: the query repeats the
/// index's expression and its `WHERE` term exactly, and names the index
/// (without statistics SQLite would rather scan the workspace's events).
fn key_raw_events(
    conn: &Connection,
    workspace: &str,
    key_id: &str,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!(
        "SELECT {RAW_COLUMNS} FROM events INDEXED BY events_by_key WHERE workspace = ?1 \
         AND kind IN ('key_created', 'key_revoked') \
         AND json_extract(data, '$.key_id') = ?2 ORDER BY seq"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![workspace, key_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_raw(row)?);
    }
    Ok(out)
}

/// The key with this hash, checked against its events (see
/// [`projection::check_key`]).
pub(crate) fn verified_key(
    conn: &Connection,
    key: &LogKey,
    key_hash: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let Some(record) = read::find_key_row(conn, key_hash)? else {
        return Ok(None);
    };
    let raws = key_raw_events(conn, &record.workspace, &record.key_id)?;
    projection::check_key(key, &record, key_hash, &raws)?;
    Ok(Some(record))
}

fn tree_size(conn: &Connection, workspace: &str) -> Result<u64, StoreError> {
    Ok(read::chain_head(conn, workspace)?.map_or(0, |(seq, _)| seq))
}

fn check_within(size: u64, tree: u64) -> Result<(), StoreError> {
    if size > tree {
        return Err(StoreError::TreeRange {
            message: format!("tree size {size} is beyond the log's current size {tree}"),
        });
    }
    Ok(())
}

/// Checks the events after `from` up to `to` against the stored tree (see
/// [`crate::Store::verify_extension`]), in one read transaction.
pub(crate) fn verify_extension(
    conn: &Connection,
    key: &LogKey,
    workspace: &str,
    from: u64,
    to: u64,
) -> Result<TreeExtension, StoreError> {
    check_within(to, tree_size(conn, workspace)?)?;
    let mut check = ExtensionCheck::new(workspace, key, load_frontier(conn, workspace, from)?);
    let mut after = from;
    while after < to {
        let want = u32::try_from((to - after).min(u64::from(AUDIT_PAGE))).unwrap_or(AUDIT_PAGE);
        let page = raw_events(conn, workspace, after, want)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for raw in &page {
            check.push(raw)?;
        }
    }
    check.finish(tree_head(conn, workspace, Some(to))?)
}

/// Root hash at `size` (`None`: the current size).
pub(crate) fn tree_head(
    conn: &Connection,
    workspace: &str,
    size: Option<u64>,
) -> Result<TreeHead, StoreError> {
    let current = tree_size(conn, workspace)?;
    let size = size.unwrap_or(current);
    check_within(size, current)?;
    let plan = tlog::tree_hash_plan(size).map_err(tree_error)?;
    let hashes = read_hashes(conn, workspace, plan.indexes())?;
    let root = plan
        .finish(&hashes)
        .map_err(tree_error)?
        .first()
        .copied()
        .unwrap_or(tlog::EMPTY_TREE_HASH);
    Ok(TreeHead { size, root })
}

pub(crate) fn inclusion_proof(
    conn: &Connection,
    workspace: &str,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, StoreError> {
    check_within(size, tree_size(conn, workspace)?)?;
    let plan = tlog::inclusion_proof_plan(index, size).map_err(tree_error)?;
    let hashes = read_hashes(conn, workspace, plan.indexes())?;
    plan.finish(&hashes).map_err(tree_error)
}

pub(crate) fn consistency_proof(
    conn: &Connection,
    workspace: &str,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, StoreError> {
    check_within(to, tree_size(conn, workspace)?)?;
    let plan = tlog::consistency_proof_plan(from, to).map_err(tree_error)?;
    let hashes = read_hashes(conn, workspace, plan.indexes())?;
    plan.finish(&hashes).map_err(tree_error)
}

/// Saves a checkpoint whose root matches the tree (writer connection).
pub(crate) fn save_checkpoint(conn: &Connection, c: &StoredCheckpoint) -> Result<(), StoreError> {
    let head = tree_head(conn, &c.workspace, Some(c.size))?;
    if head.root != c.root {
        return Err(StoreError::conflict(format!(
            "checkpoint root {} is not the root of workspace `{}`'s tree at size {} ({})",
            hex::encode(c.root),
            c.workspace,
            c.size,
            hex::encode(head.root)
        )));
    }
    conn.prepare_cached(
        "INSERT INTO checkpoints (workspace, size, root, note, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (workspace, size) DO NOTHING",
    )?
    .execute(params![
        c.workspace,
        seq_to_db(c.size)?,
        &c.root[..],
        c.note,
        format_ts(c.created_at)
    ])?;
    Ok(())
}

fn decode_checkpoint(
    workspace: &str,
    row: &rusqlite::Row<'_>,
) -> Result<StoredCheckpoint, StoreError> {
    let root: Vec<u8> = row.get(1)?;
    let created: String = row.get(3)?;
    Ok(StoredCheckpoint {
        workspace: workspace.to_owned(),
        size: seq_from_db(row.get(0)?)?,
        root: hash_from_db(&root)?,
        note: row.get(2)?,
        created_at: parse_ts(&created)?,
    })
}

pub(crate) fn find_checkpoint(
    conn: &Connection,
    workspace: &str,
    size: Option<u64>,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    let max = seq_to_db(size.unwrap_or(tlog::MAX_TREE_SIZE))?;
    let mut stmt = conn.prepare_cached(
        "SELECT size, root, note, created_at FROM checkpoints \
         WHERE workspace = ?1 AND size <= ?2 ORDER BY size DESC LIMIT 1",
    )?;
    let mut rows = stmt.query(params![workspace, max])?;
    match rows.next()? {
        Some(row) => Ok(Some(decode_checkpoint(workspace, row)?)),
        None => Ok(None),
    }
}

fn all_checkpoints(
    conn: &Connection,
    workspace: &str,
) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT size, root, note, created_at FROM checkpoints WHERE workspace = ?1 ORDER BY size",
    )?;
    let mut rows = stmt.query(params![workspace])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_checkpoint(workspace, row)?);
    }
    Ok(out)
}

/// The full audit (inside one read transaction). Returns the first chain
/// break too, for `verify_chain`.
pub(crate) fn audit(
    conn: &Connection,
    key: &LogKey,
    workspace: &str,
) -> Result<(Option<StoreError>, crate::model::AuditReport), StoreError> {
    let mut auditor = Auditor::new(workspace, key, all_checkpoints(conn, workspace)?);
    let mut after = 0u64;
    loop {
        let page = raw_events(conn, workspace, after, AUDIT_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for raw in &page {
            auditor.push_event(raw)?;
        }
    }
    auditor.finish_events(read::chain_head(conn, workspace)?.filter(|(seq, _)| *seq > 0));
    let mut after: i64 = -1;
    loop {
        let mut stmt = conn.prepare_cached(
            "SELECT idx, hash FROM tree_hashes WHERE workspace = ?1 AND idx > ?2 \
             ORDER BY idx LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![workspace, after, i64::from(AUDIT_PAGE)])?;
        let mut page = Vec::new();
        while let Some(row) = rows.next()? {
            let idx: i64 = row.get(0)?;
            let hash: Vec<u8> = row.get(1)?;
            page.push((u64::try_from(idx).unwrap_or(u64::MAX), hash_from_db(&hash)?));
            after = idx;
        }
        if page.is_empty() {
            break;
        }
        auditor.push_tree_hashes(&page);
    }
    auditor.finish_tree();
    auditor.check_runs(read::all_runs(conn, workspace)?);
    auditor.check_keys(read::list_keys_with_hash(conn, workspace)?);
    auditor.check_deliveries(read::all_deliveries(conn, workspace)?);
    let first_break = auditor.first_break();
    Ok((first_break, auditor.report()))
}
