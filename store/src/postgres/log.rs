//! The verifiable log on PostgreSQL: tree appends inside the writing
//! transaction, the upgrade of databases from before it, and its reads
//! (tree heads, proofs, checkpoints, the per-run check and the full audit).
//!
//! An append reads the frontier it needs (`O(log n)` hashes, one query)
//! inside its transaction, after the workspace's chain-head row is locked:
//! that lock serializes the workspace's appends, so no two transactions
//! extend the same tree.

use super::read;
use crate::audit::{AUDIT_PAGE, Auditor};
use crate::chain::{ChainVerifier, RawEvent, event_body};
use crate::error::StoreError;
use crate::extension::ExtensionCheck;
use crate::log_key::LogKey;
use crate::model::{
    AnswerInput, ApiKeyRecord, ApprovalToken, AuditReport, Run, StoredCheckpoint, TreeExtension,
    TreeHead,
};
use crate::projection;
use crate::rows::{seq_from_db, seq_to_db};
use crate::tlog::{self, Hash};
use crate::tree::{Frontier, hash_from_db, index_to_db, tree_error};
use crate::ts::format_ts;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::GenericClient;
use tokio_postgres::{Row, Transaction};

/// Reads the stored hashes at `indexes` (in that order) with one query.
async fn read_hashes<C: GenericClient>(
    c: &C,
    workspace: &str,
    indexes: &[u64],
) -> Result<Vec<Hash>, StoreError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = indexes
        .iter()
        .map(|i| index_to_db(*i))
        .collect::<Result<Vec<i64>, _>>()?;
    let rows = c
        .query(
            "SELECT idx, hash FROM tree_hashes WHERE workspace = $1 AND idx = ANY($2)",
            &[&workspace, &wanted],
        )
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let idx: i64 = row.try_get(0)?;
        let hash: Vec<u8> = row.try_get(1)?;
        found.insert(idx, hash_from_db(&hash)?);
    }
    wanted
        .iter()
        .map(|i| {
            found.get(i).copied().ok_or_else(|| {
                StoreError::corrupt(format!(
                    "stored tree hash {i} of workspace `{workspace}` is missing"
                ))
            })
        })
        .collect()
}

/// Stores hashes computed by `frontier` appends: (index, hash) pairs.
async fn insert_hashes(
    tx: &Transaction<'_>,
    workspace: &str,
    new: &[(i64, Vec<u8>)],
) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let (idx, hashes): (Vec<i64>, Vec<Vec<u8>>) = new.iter().cloned().unzip();
    tx.execute(
        "INSERT INTO tree_hashes (workspace, idx, hash) \
         SELECT $1, i, h FROM UNNEST($2::BIGINT[], $3::BYTEA[]) AS t (i, h)",
        &[&workspace, &idx, &hashes],
    )
    .await?;
    Ok(())
}

/// Appends the leaves `bodies` (events `size_before + 1 ...`) to the
/// workspace's tree (whose head the caller has locked).
pub(crate) async fn append_leaves(
    tx: &Transaction<'_>,
    workspace: &str,
    size_before: u64,
    bodies: &[String],
) -> Result<(), StoreError> {
    let indexes = Frontier::indexes(size_before)?;
    let hashes = read_hashes(tx, workspace, &indexes).await?;
    let mut frontier = Frontier::from_hashes(size_before, &hashes)?;
    let mut new = Vec::with_capacity(bodies.len() * 2);
    for body in bodies {
        let added = frontier.append(body.as_bytes())?;
        for (k, hash) in (added.first_index..).zip(added.hashes) {
            new.push((index_to_db(k)?, hash.to_vec()));
        }
    }
    insert_hashes(tx, workspace, &new).await
}

const RAW_COLUMNS: &str = "seq, kind, run_id, at, data, prev_hash, hash, mac";

fn decode_raw(row: &Row) -> Result<RawEvent, StoreError> {
    let at: DateTime<Utc> = row.try_get(3)?;
    Ok(RawEvent {
        seq: seq_from_db(row.try_get(0)?)?,
        kind: row.try_get(1)?,
        run_id: row.try_get(2)?,
        at: format_ts(at),
        data: row.try_get(4)?,
        prev_hash: row.try_get(5)?,
        hash: row.try_get(6)?,
        mac: row.try_get(7)?,
    })
}

async fn raw_events<C: GenericClient>(
    c: &C,
    workspace: &str,
    after: u64,
    limit: u32,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!(
        "SELECT {RAW_COLUMNS} FROM events WHERE workspace = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
    let rows = c
        .query(&sql, &[&workspace, &seq_to_db(after)?, &i64::from(limit)])
        .await?;
    rows.iter().map(decode_raw).collect()
}

/// The leaf data of a stored event (its stored data text itself when it
/// is not JSON, so nothing is skipped).
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

/// Gives the events stored before version 4 their MACs and builds their
/// trees, inside the migration's transaction. The events table's trigger
/// refuses UPDATE, so it is disabled around the backfill (the migration
/// holds the migration lock and runs as the tables' owner).
pub(crate) async fn backfill(tx: &Transaction<'_>, key: &LogKey) -> Result<(), StoreError> {
    let total: i64 = tx
        .query_one("SELECT COUNT(*) FROM events", &[])
        .await?
        .try_get(0)?;
    if total == 0 {
        return Ok(());
    }
    tracing::info!(
        events = total,
        "audit log upgrade: authenticating existing events and building their Merkle trees"
    );
    tx.batch_execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .await?;
    let workspaces: Vec<String> = tx
        .query(
            "SELECT DISTINCT workspace FROM events ORDER BY workspace",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let update = tx
        .prepare("UPDATE events SET mac = $3 WHERE workspace = $1 AND seq = $2")
        .await?;
    let mut done: i64 = 0;
    for workspace in workspaces {
        let mut frontier = Frontier::empty();
        let mut chain = Some(ChainVerifier::new(&workspace));
        let mut after = 0u64;
        loop {
            let page = raw_events(tx, &workspace, after, AUDIT_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            let mut new = Vec::with_capacity(page.len() * 2);
            for raw in &page {
                if let Some(Err(e)) = chain.as_mut().map(|v| v.push(raw)) {
                    crate::audit::warn_broken(&e);
                    chain = None;
                }
                let body = leaf_body(&workspace, raw);
                tx.execute(
                    &update,
                    &[
                        &workspace,
                        &seq_to_db(raw.seq)?,
                        &key.event_mac_hex(body.as_bytes()),
                    ],
                )
                .await?;
                let added = frontier.append(body.as_bytes())?;
                for (k, hash) in (added.first_index..).zip(added.hashes) {
                    new.push((index_to_db(k)?, hash.to_vec()));
                }
            }
            insert_hashes(tx, &workspace, &new).await?;
            done += i64::try_from(page.len()).unwrap_or(0);
            tracing::info!(done, total, workspace = %workspace, "audit log upgrade: progress");
        }
        let head = tx
            .query_opt(
                "SELECT seq, hash FROM chain_heads WHERE workspace = $1 AND seq > 0",
                &[&workspace],
            )
            .await?
            .map(|row| -> Result<(u64, String), StoreError> {
                Ok((seq_from_db(row.try_get(0)?)?, row.try_get(1)?))
            })
            .transpose()?;
        if let Some(Err(e)) = chain.map(|v| v.finish(head)) {
            crate::audit::warn_broken(&e);
        }
    }
    tx.batch_execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
        .await?;
    tracing::info!(events = total, "audit log upgrade: done");
    Ok(())
}

/// A link token about to be acted on, checked against its run's events
/// (see [`projection::check_token_delivery`]).
pub(crate) async fn check_token<C: GenericClient>(
    c: &C,
    key: &LogKey,
    token: &ApprovalToken,
    token_hash: &str,
    answer: &AnswerInput,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {RAW_COLUMNS} FROM events WHERE workspace = $1 AND run_id = $2 ORDER BY seq"
    );
    let raws = c
        .query(&sql, &[&token.workspace, &token.run_id])
        .await?
        .iter()
        .map(decode_raw)
        .collect::<Result<Vec<_>, _>>()?;
    projection::check_token_delivery(key, token, token_hash, &raws, answer)
}

/// Checks a loaded run against its own events (see [`projection::check_run`]).
pub(crate) async fn check_run<C: GenericClient>(
    c: &C,
    key: &LogKey,
    run: &Run,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {RAW_COLUMNS} FROM events WHERE workspace = $1 AND run_id = $2 ORDER BY seq"
    );
    let raws = c
        .query(&sql, &[&run.proposal.workspace, &run.proposal.run_id])
        .await?
        .iter()
        .map(decode_raw)
        .collect::<Result<Vec<_>, _>>()?;
    projection::check_run(key, run, &raws)
}

/// A run, checked against its events.
pub(crate) async fn verified_run<C: GenericClient>(
    c: &C,
    key: &LogKey,
    workspace: &str,
    run_id: &str,
) -> Result<Option<Run>, StoreError> {
    let Some(run) = read::load_run(c, workspace, run_id, false).await? else {
        return Ok(None);
    };
    check_run(c, key, &run).await?;
    Ok(Some(run))
}

/// The key with this hash, checked against its own key_created and
/// key_revoked events (see [`projection::check_key`]), found through the
/// `events_by_key` index of migration 6 (the query repeats the index's
/// expression and `WHERE` term exactly). Call it inside one snapshot, so a
/// revocation committed between the two reads is not a mismatch.
pub(crate) async fn verified_key<C: GenericClient>(
    c: &C,
    key: &LogKey,
    key_hash: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let Some(record) = read::find_key_row(c, key_hash).await? else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {RAW_COLUMNS} FROM events WHERE workspace = $1 \
         AND kind IN ('key_created', 'key_revoked') \
         AND ((data::jsonb) ->> 'key_id') = $2 ORDER BY seq"
    );
    let raws = c
        .query(&sql, &[&record.workspace, &record.key_id])
        .await?
        .iter()
        .map(decode_raw)
        .collect::<Result<Vec<_>, _>>()?;
    projection::check_key(key, &record, key_hash, &raws)?;
    Ok(Some(record))
}

async fn tree_size<C: GenericClient>(c: &C, workspace: &str) -> Result<u64, StoreError> {
    let row = c
        .query_opt(
            "SELECT seq FROM chain_heads WHERE workspace = $1",
            &[&workspace],
        )
        .await?;
    match row {
        Some(row) => seq_from_db(row.try_get(0)?),
        None => Ok(0),
    }
}

fn check_within(size: u64, tree: u64) -> Result<(), StoreError> {
    if size > tree {
        return Err(StoreError::TreeRange {
            message: format!("tree size {size} is beyond the log's current size {tree}"),
        });
    }
    Ok(())
}

/// Root hash at `size` (`None`: the current size).
/// Checks the events after `from` up to `to` against the stored tree (see
/// [`crate::Store::verify_extension`]), inside the caller's snapshot.
async fn load_frontier<C: GenericClient>(
    c: &C,
    workspace: &str,
    size: u64,
) -> Result<Frontier, StoreError> {
    let hashes = read_hashes(c, workspace, &Frontier::indexes(size)?).await?;
    Frontier::from_hashes(size, &hashes)
}

pub(crate) async fn verify_extension<C: GenericClient>(
    c: &C,
    key: &LogKey,
    workspace: &str,
    from: u64,
    to: u64,
) -> Result<TreeExtension, StoreError> {
    check_within(to, tree_size(c, workspace).await?)?;
    let frontier = load_frontier(c, workspace, from).await?;
    let mut check = ExtensionCheck::new(workspace, key, frontier);
    let mut after = from;
    while after < to {
        let want = u32::try_from((to - after).min(u64::from(AUDIT_PAGE))).unwrap_or(AUDIT_PAGE);
        let page = raw_events(c, workspace, after, want).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for raw in &page {
            check.push(raw)?;
        }
    }
    check.finish(tree_head(c, workspace, Some(to)).await?)
}

pub(crate) async fn tree_head<C: GenericClient>(
    c: &C,
    workspace: &str,
    size: Option<u64>,
) -> Result<TreeHead, StoreError> {
    let current = tree_size(c, workspace).await?;
    let size = size.unwrap_or(current);
    check_within(size, current)?;
    let plan = tlog::tree_hash_plan(size).map_err(tree_error)?;
    let hashes = read_hashes(c, workspace, plan.indexes()).await?;
    let root = plan
        .finish(&hashes)
        .map_err(tree_error)?
        .first()
        .copied()
        .unwrap_or(tlog::EMPTY_TREE_HASH);
    Ok(TreeHead { size, root })
}

pub(crate) async fn inclusion_proof<C: GenericClient>(
    c: &C,
    workspace: &str,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, StoreError> {
    check_within(size, tree_size(c, workspace).await?)?;
    let plan = tlog::inclusion_proof_plan(index, size).map_err(tree_error)?;
    let hashes = read_hashes(c, workspace, plan.indexes()).await?;
    plan.finish(&hashes).map_err(tree_error)
}

pub(crate) async fn consistency_proof<C: GenericClient>(
    c: &C,
    workspace: &str,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, StoreError> {
    check_within(to, tree_size(c, workspace).await?)?;
    let plan = tlog::consistency_proof_plan(from, to).map_err(tree_error)?;
    let hashes = read_hashes(c, workspace, plan.indexes()).await?;
    plan.finish(&hashes).map_err(tree_error)
}

/// Saves a checkpoint whose root matches the tree.
pub(crate) async fn save_checkpoint(
    tx: &Transaction<'_>,
    c: &StoredCheckpoint,
) -> Result<(), StoreError> {
    let head = tree_head(tx, &c.workspace, Some(c.size)).await?;
    if head.root != c.root {
        return Err(StoreError::conflict(format!(
            "checkpoint root {} is not the root of workspace `{}`'s tree at size {} ({})",
            hex::encode(c.root),
            c.workspace,
            c.size,
            hex::encode(head.root)
        )));
    }
    tx.execute(
        "INSERT INTO checkpoints (workspace, size, root, note, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace, size) DO NOTHING",
        &[
            &c.workspace,
            &seq_to_db(c.size)?,
            &c.root.as_slice(),
            &c.note,
            &c.created_at,
        ],
    )
    .await?;
    Ok(())
}

fn decode_checkpoint(workspace: &str, row: &Row) -> Result<StoredCheckpoint, StoreError> {
    let root: Vec<u8> = row.try_get(1)?;
    Ok(StoredCheckpoint {
        workspace: workspace.to_owned(),
        size: seq_from_db(row.try_get(0)?)?,
        root: hash_from_db(&root)?,
        note: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

pub(crate) async fn find_checkpoint<C: GenericClient>(
    c: &C,
    workspace: &str,
    size: Option<u64>,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    let max = seq_to_db(size.unwrap_or(tlog::MAX_TREE_SIZE))?;
    c.query_opt(
        "SELECT size, root, note, created_at FROM checkpoints \
         WHERE workspace = $1 AND size <= $2 ORDER BY size DESC LIMIT 1",
        &[&workspace, &max],
    )
    .await?
    .map(|row| decode_checkpoint(workspace, &row))
    .transpose()
}

/// The full audit (inside one snapshot). Returns the first chain break
/// too, for `verify_chain`.
pub(crate) async fn audit<C: GenericClient>(
    c: &C,
    key: &LogKey,
    workspace: &str,
) -> Result<(Option<StoreError>, AuditReport), StoreError> {
    let checkpoints = c
        .query(
            "SELECT size, root, note, created_at FROM checkpoints WHERE workspace = $1 ORDER BY size",
            &[&workspace],
        )
        .await?
        .iter()
        .map(|row| decode_checkpoint(workspace, row))
        .collect::<Result<Vec<_>, _>>()?;
    let mut auditor = Auditor::new(workspace, key, checkpoints);
    let mut after = 0u64;
    loop {
        let page = raw_events(c, workspace, after, AUDIT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for raw in &page {
            auditor.push_event(raw)?;
        }
    }
    let head = c
        .query_opt(
            "SELECT seq, hash FROM chain_heads WHERE workspace = $1 AND seq > 0",
            &[&workspace],
        )
        .await?
        .map(|row| -> Result<(u64, String), StoreError> {
            Ok((seq_from_db(row.try_get(0)?)?, row.try_get(1)?))
        })
        .transpose()?;
    auditor.finish_events(head);
    let mut after: i64 = -1;
    loop {
        let rows = c
            .query(
                "SELECT idx, hash FROM tree_hashes WHERE workspace = $1 AND idx > $2 \
                 ORDER BY idx LIMIT $3",
                &[&workspace, &after, &i64::from(AUDIT_PAGE)],
            )
            .await?;
        if rows.is_empty() {
            break;
        }
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let idx: i64 = row.try_get(0)?;
            let hash: Vec<u8> = row.try_get(1)?;
            page.push((u64::try_from(idx).unwrap_or(u64::MAX), hash_from_db(&hash)?));
            after = idx;
        }
        auditor.push_tree_hashes(&page);
    }
    auditor.finish_tree();
    auditor.check_runs(read::all_runs(c, workspace).await?);
    auditor.check_keys(read::list_keys_with_hash(c, workspace).await?);
    auditor.check_deliveries(read::all_deliveries(c, workspace).await?);
    let first_break = auditor.first_break();
    Ok((first_break, auditor.report()))
}
