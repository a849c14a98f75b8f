//! The aggregate index on PostgreSQL (see [`crate::aggregates`]). Queries
//! run after the workspace's chain head is locked, in READ COMMITTED, so
//! each sees every run committed before, by this gate or another: two
//! decisions of one workspace cannot both slip under a limit.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use crate::aggregates::{
    AggregateQuery, AggregateResult, BACKFILL_CHUNK, RunFields, SeriesSpec, total, window_start,
};
use crate::error::StoreError;
use crate::model::Proposal;

/// Writes the entries of a new run in every series of its action (its
/// payload is read only when there is one).
pub(crate) async fn record_entries<C: GenericClient>(
    c: &C,
    proposal: &Proposal,
) -> Result<(), StoreError> {
    let rows = c
        .query(
            "SELECT series, spec FROM aggregate_series WHERE workspace = $1 AND action = $2",
            &[&proposal.workspace, &proposal.action],
        )
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let fields = RunFields::from_proposal(proposal);
    for row in rows {
        let id: String = row.try_get(0)?;
        let spec = SeriesSpec::parse(row.try_get(1)?)?;
        if let Some(entry) = spec.entry(&fields) {
            c.execute(
                "INSERT INTO aggregate_entries \
                 (workspace, series, group_key, created_at, run_id, amount) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &proposal.workspace,
                    &id,
                    &entry.group_key,
                    &proposal.created_at,
                    &proposal.run_id,
                    &entry.amount,
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// Answers `queries` at `now` (the caller holds the workspace's head lock).
pub(crate) async fn answer<C: GenericClient>(
    c: &C,
    workspace: &str,
    now: DateTime<Utc>,
    queries: &[AggregateQuery],
) -> Result<Vec<AggregateResult>, StoreError> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let id = q.series.id();
        let built = c
            .query_opt(
                "SELECT built FROM aggregate_series WHERE workspace = $1 AND series = $2",
                &[&workspace, &id],
            )
            .await?
            .map(|r| r.try_get::<_, bool>(0))
            .transpose()?;
        if built != Some(true) {
            out.push(Err(
                "the index this aggregate is read from is not built yet".to_owned(),
            ));
            continue;
        }
        let key = crate::aggregates::group_key(&q.group_values);
        let since = window_start(now, q.within)?;
        let rows = c
            .query(
                "SELECT e.amount, r.governance_status, r.execution_status \
                 FROM aggregate_entries e \
                 JOIN runs r ON r.workspace = e.workspace AND r.run_id = e.run_id \
                 WHERE e.workspace = $1 AND e.series = $2 AND e.group_key = $3 \
                   AND e.created_at > $4 AND e.created_at <= $5",
                &[&workspace, &id, &key, &since, &now],
            )
            .await?;
        let mut values: Vec<(Option<String>, String, String)> = Vec::with_capacity(rows.len());
        for r in rows {
            values.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
        }
        out.push(total(
            q,
            values
                .iter()
                .map(|(a, g, e)| (a.as_deref(), g.as_str(), e.as_str())),
        ));
    }
    Ok(out)
}

/// Registers a series (the caller holds the workspace's head lock, so no
/// run is being created meanwhile); whether it still needs building.
pub(crate) async fn register<C: GenericClient>(
    c: &C,
    workspace: &str,
    spec: &SeriesSpec,
) -> Result<bool, StoreError> {
    let id = spec.id();
    c.execute(
        "INSERT INTO aggregate_series (workspace, series, action, spec, built) \
         VALUES ($1, $2, $3, $4, FALSE) ON CONFLICT DO NOTHING",
        &[&workspace, &id, &spec.action, &spec.canonical()],
    )
    .await?;
    let built: bool = c
        .query_one(
            "SELECT built FROM aggregate_series WHERE workspace = $1 AND series = $2",
            &[&workspace, &id],
        )
        .await?
        .try_get(0)?;
    Ok(!built)
}

/// Where a backfill has reached: the last run read.
pub(crate) type Cursor = Option<(DateTime<Utc>, String)>;

/// Writes the entries of the next chunk of runs after `cursor`; returns
/// the new cursor (`None` when done) and the number of runs read.
pub(crate) async fn backfill_chunk<C: GenericClient>(
    c: &C,
    workspace: &str,
    spec: &SeriesSpec,
    cursor: &Cursor,
) -> Result<(Cursor, u64), StoreError> {
    let (after_at, after_id) = cursor.clone().unwrap_or_else(|| {
        // Before any run: the store keeps years 1 to 9999.
        let start = DateTime::<Utc>::from_timestamp(-62_135_596_800, 0)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        (start, String::new())
    });
    let limit = i64::from(BACKFILL_CHUNK);
    let rows = c
        .query(
            "SELECT run_id, actor, payload_json, source_json, created_at FROM runs \
             WHERE workspace = $1 AND action = $2 AND (created_at, run_id) > ($3, $4) \
             ORDER BY created_at, run_id LIMIT $5",
            &[&workspace, &spec.action, &after_at, &after_id, &limit],
        )
        .await?;
    let id = spec.id();
    let mut last = None;
    let read = rows.len() as u64;
    for r in rows {
        let run_id: String = r.try_get(0)?;
        let actor: Option<String> = r.try_get(1)?;
        let payload: String = r.try_get(2)?;
        let source: Option<String> = r.try_get(3)?;
        let created_at: DateTime<Utc> = r.try_get(4)?;
        let fields =
            RunFields::from_row(&spec.action, actor.as_deref(), &payload, source.as_deref());
        if let Some(entry) = spec.entry(&fields) {
            c.execute(
                "INSERT INTO aggregate_entries \
                 (workspace, series, group_key, created_at, run_id, amount) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &workspace,
                    &id,
                    &entry.group_key,
                    &created_at,
                    &run_id,
                    &entry.amount,
                ],
            )
            .await?;
        }
        last = Some((created_at, run_id));
    }
    let next = if read == u64::from(BACKFILL_CHUNK) {
        last
    } else {
        None
    };
    Ok((next, read))
}

/// Marks a series built.
pub(crate) async fn mark_built<C: GenericClient>(
    c: &C,
    workspace: &str,
    spec: &SeriesSpec,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE aggregate_series SET built = TRUE WHERE workspace = $1 AND series = $2",
        &[&workspace, &spec.id()],
    )
    .await?;
    Ok(())
}

/// Recomputes every built series of the workspace from its runs and
/// compares with the stored entries (see the SQLite twin).
pub(crate) async fn check<C: GenericClient>(
    c: &C,
    workspace: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let series = c
        .query(
            "SELECT series, spec FROM aggregate_series WHERE workspace = $1 AND built",
            &[&workspace],
        )
        .await?;
    let mut problems = Vec::new();
    for row in series {
        let id: String = row.try_get(0)?;
        let spec = SeriesSpec::parse(row.try_get(1)?)?;
        let mut expected = BTreeSet::new();
        for r in c
            .query(
                "SELECT run_id, actor, payload_json, source_json, created_at FROM runs \
                 WHERE workspace = $1 AND action = $2",
                &[&workspace, &spec.action],
            )
            .await?
        {
            let run_id: String = r.try_get(0)?;
            let actor: Option<String> = r.try_get(1)?;
            let payload: String = r.try_get(2)?;
            let source: Option<String> = r.try_get(3)?;
            let created_at: DateTime<Utc> = r.try_get(4)?;
            let fields =
                RunFields::from_row(&spec.action, actor.as_deref(), &payload, source.as_deref());
            if let Some(e) = spec.entry(&fields) {
                expected.insert((e.group_key, created_at, run_id, e.amount));
            }
        }
        let mut stored = BTreeSet::new();
        for r in c
            .query(
                "SELECT group_key, created_at, run_id, amount FROM aggregate_entries \
                 WHERE workspace = $1 AND series = $2",
                &[&workspace, &id],
            )
            .await?
        {
            let key: String = r.try_get(0)?;
            let at: DateTime<Utc> = r.try_get(1)?;
            let run_id: String = r.try_get(2)?;
            let amount: Option<String> = r.try_get(3)?;
            stored.insert((key, at, run_id, amount));
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
