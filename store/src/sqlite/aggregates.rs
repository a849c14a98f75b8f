//! The aggregate index on SQLite (see [`crate::aggregates`]): entries
//! written with each run, queries answered inside the writer's batch (so
//! the commands of one group commit see each other's runs), series built
//! from history in chunks, and the audit's recomputation.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::aggregates::{
    AggregateQuery, AggregateResult, BACKFILL_CHUNK, RunFields, SeriesSpec, total, window_start,
};
use crate::error::StoreError;
use crate::ts::format_ts;

/// Writes the entries of a new run in every series of its action (its
/// payload is read only when there is one).
pub(crate) fn record_entries(
    conn: &Connection,
    proposal: &crate::model::Proposal,
    created_at: &str,
) -> Result<(), StoreError> {
    let workspace = proposal.workspace.as_str();
    let run_id = proposal.run_id.as_str();
    let mut stmt = conn.prepare_cached(
        "SELECT series, spec FROM aggregate_series WHERE workspace = ?1 AND action = ?2",
    )?;
    let series: Vec<(String, String)> = stmt
        .query_map(params![workspace, proposal.action], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    if series.is_empty() {
        return Ok(());
    }
    let fields = RunFields::from_proposal(proposal);
    let fields = &fields;
    for (id, spec) in series {
        let spec = SeriesSpec::parse(&spec)?;
        if let Some(entry) = spec.entry(fields) {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO aggregate_entries \
                 (workspace, series, group_key, created_at, run_id, amount) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                workspace,
                id,
                entry.group_key,
                created_at,
                run_id,
                entry.amount
            ])?;
        }
    }
    Ok(())
}

/// Answers `queries` at `now` from the entries (and the runs' states).
pub(crate) fn answer(
    conn: &Connection,
    workspace: &str,
    now: DateTime<Utc>,
    queries: &[AggregateQuery],
) -> Result<Vec<AggregateResult>, StoreError> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let id = q.series.id();
        let built: Option<bool> = conn
            .prepare_cached(
                "SELECT built FROM aggregate_series WHERE workspace = ?1 AND series = ?2",
            )?
            .query_row(params![workspace, id], |r| r.get(0))
            .optional()?;
        if built != Some(true) {
            out.push(Err(
                "the index this aggregate is read from is not built yet".to_owned(),
            ));
            continue;
        }
        let key = crate::aggregates::group_key(&q.group_values);
        let since = format_ts(window_start(now, q.within)?);
        let until = format_ts(now);
        let mut stmt = conn.prepare_cached(
            "SELECT e.amount, r.governance_status, r.execution_status \
             FROM aggregate_entries e \
             JOIN runs r ON r.workspace = e.workspace AND r.run_id = e.run_id \
             WHERE e.workspace = ?1 AND e.series = ?2 AND e.group_key = ?3 \
               AND e.created_at > ?4 AND e.created_at <= ?5",
        )?;
        let rows: Vec<(Option<String>, String, String)> = stmt
            .query_map(params![workspace, id, key, since, until], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        out.push(total(
            q,
            rows.iter()
                .map(|(a, g, e)| (a.as_deref(), g.as_str(), e.as_str())),
        ));
    }
    Ok(out)
}

/// Registers a series; whether it was new (or registered but not built).
pub(crate) fn register(
    conn: &Connection,
    workspace: &str,
    spec: &SeriesSpec,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO aggregate_series (workspace, series, action, spec, built) \
         VALUES (?1, ?2, ?3, ?4, 0)",
    )?
    .execute(params![workspace, spec.id(), spec.action, spec.canonical()])?;
    let built: bool = conn
        .prepare_cached("SELECT built FROM aggregate_series WHERE workspace = ?1 AND series = ?2")?
        .query_row(params![workspace, spec.id()], |r| r.get(0))?;
    Ok(!built)
}

/// The position in the runs of a workspace a backfill has reached.
pub(crate) type Cursor = Option<(String, String)>;

/// Writes the entries of the next chunk of existing runs of the series'
/// action after `cursor` (in creation order); returns the new cursor
/// (`None` when done) and the number of runs read.
pub(crate) fn backfill_chunk(
    conn: &Connection,
    workspace: &str,
    spec: &SeriesSpec,
    cursor: &Cursor,
) -> Result<(Cursor, u64), StoreError> {
    let (after_at, after_id) = cursor.clone().unwrap_or_default();
    let mut stmt = conn.prepare_cached(
        "SELECT run_id, actor, payload_json, source_json, created_at FROM runs \
         WHERE workspace = ?1 AND action = ?2 AND (created_at, run_id) > (?3, ?4) \
         ORDER BY created_at, run_id LIMIT ?5",
    )?;
    type Row = (String, Option<String>, String, Option<String>, String);
    let rows: Vec<Row> = stmt
        .query_map(
            params![workspace, spec.action, after_at, after_id, BACKFILL_CHUNK],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?
        .collect::<Result<_, _>>()?;
    let id = spec.id();
    for (run_id, actor, payload, source, created_at) in &rows {
        let fields =
            RunFields::from_row(&spec.action, actor.as_deref(), payload, source.as_deref());
        if let Some(entry) = spec.entry(&fields) {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO aggregate_entries \
                 (workspace, series, group_key, created_at, run_id, amount) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                workspace,
                id,
                entry.group_key,
                created_at,
                run_id,
                entry.amount
            ])?;
        }
    }
    let read = rows.len() as u64;
    let next = match rows.last() {
        Some(last) if read == u64::from(BACKFILL_CHUNK) => Some((last.4.clone(), last.0.clone())),
        _ => None,
    };
    Ok((next, read))
}

/// Marks a series built.
pub(crate) fn mark_built(
    conn: &Connection,
    workspace: &str,
    spec: &SeriesSpec,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE aggregate_series SET built = 1 WHERE workspace = ?1 AND series = ?2",
    )?
    .execute(params![workspace, spec.id()])?;
    Ok(())
}

/// Recomputes every built series of the workspace from its runs and
/// compares with the stored entries; one message per difference found
/// (at most `limit`).
pub(crate) fn check(
    conn: &Connection,
    workspace: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let series: Vec<(String, String)> = conn
        .prepare("SELECT series, spec FROM aggregate_series WHERE workspace = ?1 AND built = 1")?
        .query_map(params![workspace], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut problems = Vec::new();
    for (id, spec) in series {
        let spec = SeriesSpec::parse(&spec)?;
        let mut expected = std::collections::BTreeSet::new();
        let mut stmt = conn.prepare(
            "SELECT run_id, actor, payload_json, source_json, created_at FROM runs \
             WHERE workspace = ?1 AND action = ?2",
        )?;
        let mut rows = stmt.query(params![workspace, spec.action])?;
        while let Some(r) = rows.next()? {
            let (run_id, actor, payload, source, created_at): (
                String,
                Option<String>,
                String,
                Option<String>,
                String,
            ) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let fields =
                RunFields::from_row(&spec.action, actor.as_deref(), &payload, source.as_deref());
            if let Some(e) = spec.entry(&fields) {
                expected.insert((e.group_key, created_at, run_id, e.amount));
            }
        }
        let mut stored = std::collections::BTreeSet::new();
        let mut stmt = conn.prepare(
            "SELECT group_key, created_at, run_id, amount FROM aggregate_entries \
             WHERE workspace = ?1 AND series = ?2",
        )?;
        let mut rows = stmt.query(params![workspace, id])?;
        while let Some(r) = rows.next()? {
            stored.insert((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
        }
        for missing in expected.difference(&stored) {
            problems.push(format!(
                "aggregate series {id}: run {} has no entry (or a different one)",
                missing.2
            ));
        }
        for extra in stored.difference(&expected) {
            problems.push(format!(
                "aggregate series {id}: entry for run {} does not follow from the run",
                extra.2
            ));
        }
        if problems.len() >= limit {
            problems.truncate(limit);
            break;
        }
    }
    Ok(problems)
}
