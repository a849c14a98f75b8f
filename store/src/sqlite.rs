// Over 600 lines: the Backend impl is one short delegation per Store method.
//! The embedded SQLite backend.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit is on disk
//! when it returns. Throughput: one writer thread group-commits whatever is
//! queued (see [`writer`]), so concurrent requests share one fsync. Reads use
//! separate read-only connections on tokio's blocking pool and never wait for
//! the writer.

mod access;
mod aggregates;
mod checkpoint;
mod log;
mod ops;
mod outbox;
mod read;
mod writer;

use crate::aggregates::{AggregateQuery, DecideRun, SeriesReport, SeriesSpec};
use crate::backend::Backend;
use crate::chain::PendingEvent;
use crate::checked::Checked;
use crate::error::StoreError;
use crate::log_key::LogKey;
use crate::model::{
    AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalToken, BatchStats, ChainPosition,
    ChainReport, CreateRunOutcome, Delivery, Event, ExecutionOutcome, Grant, GrantKind,
    GrantOutcome, NewGrant, NewRun, Run, RunFilter, RunPage, StatsRow, TokenAnswer, TokenOutcome,
};
use crate::model::{AuditReport, StoredCheckpoint, TreeExtension, TreeHead};
use crate::tlog::Hash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use writer::Writer;

/// Embedded migrations: (version, SQL). Append only; never edit a shipped one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_access.sql")),
    (3, include_str!("../migrations/sqlite/0003_deliveries.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_verifiable_log.sql"),
    ),
    (5, include_str!("../migrations/sqlite/0005_key_actor.sql")),
    (6, include_str!("../migrations/sqlite/0006_key_events.sql")),
    (7, include_str!("../migrations/sqlite/0007_run_context.sql")),
    (8, include_str!("../migrations/sqlite/0008_aggregates.sql")),
];

/// The version whose migration authenticates the events already stored.
const VERIFIABLE_LOG_VERSION: i64 = 4;

/// How long a connection waits on a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections kept open between reads.
const IDLE_READERS: usize = 16;

/// Prepared statements each connection keeps (rusqlite's default is 16;
/// the writer alone uses more than that on its hot path).
const STATEMENT_CACHE: usize = 64;

/// The SQLite store: the SQLite backend behind the argument checks every
/// store shares. Cheap to share: wrap it in an `Arc`.
pub type SqliteStore = Checked<SqliteBackend>;

/// The SQLite backend; reachable only through [`SqliteStore`], which checks
/// every argument before it gets here.
pub struct SqliteBackend {
    key: Arc<LogKey>,
    writer: Writer,
    readers: Arc<ReadPool>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.readers.path)
            .finish_non_exhaustive()
    }
}

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn take(&self) -> Result<Connection, StoreError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_reader(&self.path),
        }
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn open_writer(path: &Path, key: &LogKey, upto: i64) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable {
            message: format!("sqlite refused WAL mode (journal_mode is {mode})"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    migrate(&mut conn, key, upto)?;
    Ok(conn)
}

/// Migrates the schema up to version `upto`; the step to the verifiable
/// log also authenticates existing events (see [`log::backfill`]).
fn migrate(conn: &mut Connection, key: &LogKey, upto: i64) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |row| row.get(0),
    )?;
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > latest {
        return Err(StoreError::Unavailable {
            message: format!(
                "database schema version {current} is newer than this build knows ({latest})"
            ),
        });
    }
    for (version, sql) in MIGRATIONS {
        if *version > current && *version <= upto {
            tx.execute_batch(sql)?;
            if *version == VERIFIABLE_LOG_VERSION {
                log::backfill(&tx, key)?;
            }
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`;
    /// every event is authenticated with `key` (see [`LogKey`]). The first
    /// open after an upgrade authenticates the events already stored and
    /// builds their Merkle trees, logging its progress (`tracing`).
    ///
    /// Blocking: call it at start-up, or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>, key: LogKey) -> Result<Self, StoreError> {
        Self::open_upto(path, key, i64::MAX)
    }

    /// Opens, migrating only up to schema version `upto` (tests of the upgrade).
    #[doc(hidden)]
    pub fn open_upto(path: impl AsRef<Path>, key: LogKey, upto: i64) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = open_writer(&path, &key, upto)?;
        let key = Arc::new(key);
        let writer = Writer::start(conn, &path, log::LogState::new(Arc::clone(&key)))?;
        Ok(Checked::new(SqliteBackend {
            key,
            writer,
            readers: Arc::new(ReadPool {
                path,
                idle: Mutex::new(Vec::new()),
            }),
        }))
    }
}

impl SqliteBackend {
    async fn run_audit(
        &self,
        workspace: &str,
    ) -> Result<(Option<StoreError>, AuditReport), StoreError> {
        let workspace = workspace.to_owned();
        let key = Arc::clone(&self.key);
        self.read(move |conn| {
            let (first_break, mut report) = log::audit(conn, &key, &workspace)?;
            let room = crate::audit::MAX_AUDIT_PROBLEMS.saturating_sub(report.problems.len());
            for message in aggregates::check(conn, &workspace, room.max(1))? {
                crate::aggregates::add_problem(&mut report, message);
            }
            Ok((first_break, report))
        })
        .await
    }

    /// Runs `f` on a read-only connection, inside one read transaction so
    /// multi-query reads see a single snapshot.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            // BEGIN and ROLLBACK through the statement cache: no re-parse per read.
            conn.prepare_cached("BEGIN")?.execute([])?;
            let result = f(&conn);
            // Read-only: ending the transaction either way is the same.
            let ended = conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
            // A connection still inside a transaction would serve an old
            // snapshot to the next read: drop it rather than pool it.
            if ended.is_ok() && conn.is_autocommit() {
                pool.give(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable {
            message: format!("sqlite read task failed: {e}"),
        })?
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn health(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .await?;
        self.writer
            .submit(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .await?;
        Ok(())
    }

    async fn create_run(&self, run: NewRun) -> Result<CreateRunOutcome, StoreError> {
        // Everything that does not depend on the chain's head is computed
        // here, on the caller's thread, not on the single writer's.
        let prepared = Arc::new(ops::PreparedRun::new(run)?);
        let shared = Arc::clone(&prepared);
        let outcome = self
            .writer
            .submit(move |conn| ops::create_run(conn, &shared))
            .await?;
        Ok(match outcome {
            ops::PreparedOutcome::Created(chain) => {
                CreateRunOutcome::Created(match Arc::try_unwrap(prepared) {
                    Ok(p) => p.into_run(chain),
                    Err(p) => p.run_at(chain),
                })
            }
            ops::PreparedOutcome::Existing(run) => CreateRunOutcome::Existing(*run),
        })
    }

    async fn create_run_deciding(
        &self,
        workspace: &str,
        now: DateTime<Utc>,
        queries: Vec<AggregateQuery>,
        decide: DecideRun,
    ) -> Result<CreateRunOutcome, StoreError> {
        let workspace = workspace.to_owned();
        // Inside the writer's batch: the runs of earlier commands of the
        // same group commit are counted.
        self.writer
            .submit(move |conn| {
                let values = aggregates::answer(conn, &workspace, now, &queries)?;
                let mut new = decide(&values)?;
                crate::aggregates::check_decided(&new, &workspace)?;
                crate::validate::validate_new_run(&mut new)?;
                let prepared = ops::PreparedRun::new(new)?;
                Ok(match ops::create_run(conn, &prepared)? {
                    ops::PreparedOutcome::Created(chain) => {
                        CreateRunOutcome::Created(prepared.run_at(chain))
                    }
                    ops::PreparedOutcome::Existing(run) => CreateRunOutcome::Existing(*run),
                })
            })
            .await
    }

    async fn prepare_series(
        &self,
        workspace: &str,
        series: Vec<SeriesSpec>,
    ) -> Result<SeriesReport, StoreError> {
        let mut report = SeriesReport::default();
        for spec in series {
            let (ws, sp) = (workspace.to_owned(), spec.clone());
            let fresh = self
                .writer
                .submit(move |conn| aggregates::register(conn, &ws, &sp))
                .await?;
            if !fresh {
                continue;
            }
            tracing::info!(workspace, action = %spec.action, series = %spec.id(), "building an aggregate index from history");
            let mut cursor: aggregates::Cursor = None;
            loop {
                let (ws, sp, c) = (workspace.to_owned(), spec.clone(), cursor.clone());
                let (next, read) = self
                    .writer
                    .submit(move |conn| aggregates::backfill_chunk(conn, &ws, &sp, &c))
                    .await?;
                report.runs_read += read;
                tracing::info!(workspace, series = %spec.id(), runs_read = report.runs_read, "aggregate index progress");
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            let (ws, sp) = (workspace.to_owned(), spec.clone());
            self.writer
                .submit(move |conn| aggregates::mark_built(conn, &ws, &sp))
                .await?;
            report.built += 1;
        }
        Ok(report)
    }

    async fn get_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        let (workspace, run_id) = (workspace.to_owned(), run_id.to_owned());
        self.read(move |conn| read::load_run(conn, &workspace, &run_id))
            .await
    }

    async fn list_runs(&self, workspace: &str, filter: RunFilter) -> Result<RunPage, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| read::list_runs(conn, &workspace, &filter))
            .await
    }

    async fn report_execution(
        &self,
        workspace: &str,
        run_id: &str,
        outcome: ExecutionOutcome,
        now: DateTime<Utc>,
    ) -> Result<Run, StoreError> {
        let (workspace, run_id) = (workspace.to_owned(), run_id.to_owned());
        self.writer
            .submit(move |conn| {
                ops::report_execution(conn, &workspace, &run_id, outcome.clone(), now)
            })
            .await
    }

    async fn record_answer(
        &self,
        workspace: &str,
        run_id: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<AnswerOutcome, StoreError> {
        let (workspace, run_id) = (workspace.to_owned(), run_id.to_owned());
        self.writer
            .submit(move |conn| ops::record_answer(conn, &workspace, &run_id, answer.clone(), now))
            .await
    }

    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
        self.writer
            .submit(move |conn| ops::expire_due(conn, now))
            .await
    }

    async fn create_key(
        &self,
        key: ApiKeyRecord,
        key_hash: &str,
    ) -> Result<ApiKeyRecord, StoreError> {
        let key_hash = key_hash.to_owned();
        self.writer
            .submit(move |conn| ops::create_key(conn, &key, &key_hash))
            .await
    }

    async fn revoke_key(
        &self,
        workspace: &str,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError> {
        let (workspace, key_id) = (workspace.to_owned(), key_id.to_owned());
        self.writer
            .submit(move |conn| ops::revoke_key(conn, &workspace, &key_id, now))
            .await
    }

    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let key_hash = key_hash.to_owned();
        let key = Arc::clone(&self.key);
        self.read(move |conn| log::verified_key(conn, &key, &key_hash))
            .await
    }

    async fn list_keys(&self, workspace: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| read::list_keys(conn, &workspace))
            .await
    }

    async fn append_workspace_event(
        &self,
        workspace: &str,
        event: PendingEvent,
    ) -> Result<Event, StoreError> {
        let workspace = workspace.to_owned();
        self.writer
            .submit(move |conn| ops::append_one(conn, &workspace, event.clone()))
            .await
    }

    async fn events(
        &self,
        workspace: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| read::events(conn, &workspace, after_seq, limit))
            .await
    }

    async fn verify_chain(&self, workspace: &str) -> Result<ChainReport, StoreError> {
        let (first_break, report) = self.run_audit(workspace).await?;
        crate::audit::verdict(first_break, report)
    }

    async fn audit(&self, workspace: &str) -> Result<AuditReport, StoreError> {
        Ok(self.run_audit(workspace).await?.1)
    }

    async fn tree_head(&self, workspace: &str) -> Result<TreeHead, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| log::tree_head(conn, &workspace, None))
            .await
    }

    async fn tree_head_at(&self, workspace: &str, size: u64) -> Result<TreeHead, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| log::tree_head(conn, &workspace, Some(size)))
            .await
    }

    async fn inclusion_proof(
        &self,
        workspace: &str,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| log::inclusion_proof(conn, &workspace, index, size))
            .await
    }

    async fn consistency_proof(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| log::consistency_proof(conn, &workspace, from, to))
            .await
    }

    async fn verify_extension(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<TreeExtension, StoreError> {
        let workspace = workspace.to_owned();
        let key = Arc::clone(&self.key);
        self.read(move |conn| log::verify_extension(conn, &key, &workspace, from, to))
            .await
    }

    async fn save_checkpoint(&self, checkpoint: StoredCheckpoint) -> Result<(), StoreError> {
        self.writer
            .submit(move |conn| log::save_checkpoint(conn, &checkpoint))
            .await
    }

    async fn find_checkpoint(
        &self,
        workspace: &str,
        size: Option<u64>,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| log::find_checkpoint(conn, &workspace, size))
            .await
    }

    async fn verified_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        let (workspace, run_id) = (workspace.to_owned(), run_id.to_owned());
        let key = Arc::clone(&self.key);
        self.read(move |conn| log::verified_run(conn, &key, &workspace, &run_id))
            .await
    }

    async fn workspaces(&self) -> Result<Vec<String>, StoreError> {
        self.read(read::workspaces).await
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |conn| read::due_deliveries(conn, now, limit))
            .await
    }

    async fn deliveries_for_run(
        &self,
        workspace: &str,
        run_id: &str,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (workspace, run_id) = (workspace.to_owned(), run_id.to_owned());
        self.read(move |conn| read::deliveries_for_run(conn, &workspace, &run_id))
            .await
    }

    async fn mark_delivery_sent(
        &self,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let delivery_id = delivery_id.to_owned();
        self.writer
            .submit(move |conn| outbox::mark_delivery_sent(conn, &delivery_id, now))
            .await
    }

    async fn mark_deliveries_sent(
        &self,
        delivery_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let ids = delivery_ids.to_vec();
        // One writer command for the lot. An unknown id fails the command
        // after earlier ids were updated, so the writer undoes it whole.
        self.writer
            .submit(move |conn| {
                ids.iter()
                    .try_for_each(|id| outbox::mark_delivery_sent(conn, id, now))
            })
            .await
    }

    async fn mark_delivery_failed(
        &self,
        delivery_id: &str,
        next_attempt_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StoreError> {
        let next = next_attempt_at;
        let (delivery_id, error) = (delivery_id.to_owned(), error.to_owned());
        self.writer
            .submit(move |conn| outbox::mark_delivery_failed(conn, &delivery_id, next, &error))
            .await
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<ApprovalToken>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| read::find_token(conn, &token_hash))
            .await
    }

    async fn consume_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenOutcome, StoreError> {
        let token_hash = token_hash.to_owned();
        self.writer
            .submit(move |conn| outbox::consume_token(conn, &token_hash, now))
            .await
    }

    async fn answer_with_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError> {
        let token_hash = token_hash.to_owned();
        // One writer command: should recording fail, the writer undoes the
        // whole command, the token's spending included.
        self.writer
            .submit(
                move |conn| match outbox::consume_token(conn, &token_hash, now)? {
                    TokenOutcome::Consumed(t) => {
                        log::check_token(conn, &conn.log.key, &t, &token_hash, &answer)?;
                        ops::record_answer(conn, &t.workspace, &t.run_id, answer.clone(), now)
                            .map(|o| TokenAnswer::Answered(Box::new(o)))
                    }
                    refused => Ok(TokenAnswer::Refused(refused)),
                },
            )
            .await
    }

    async fn answer_with_shared_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError> {
        let token_hash = token_hash.to_owned();
        self.writer
            .submit(move |conn| {
                let Some((token, _)) = read::find_token_home(conn, &token_hash)? else {
                    return Ok(TokenAnswer::Refused(TokenOutcome::Unknown));
                };
                if now >= token.expires_at {
                    return Ok(TokenAnswer::Refused(TokenOutcome::Expired(token)));
                }
                log::check_token(conn, &conn.log.key, &token, &token_hash, &answer)?;
                ops::record_answer(conn, &token.workspace, &token.run_id, answer.clone(), now)
                    .map(|o| TokenAnswer::Answered(Box::new(o)))
            })
            .await
    }

    async fn chain_head(&self, workspace: &str) -> Result<ChainPosition, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| access::chain_head(conn, &workspace))
            .await
    }

    async fn run_events(&self, workspace: &str, run_id: &str) -> Result<Vec<Event>, StoreError> {
        let (workspace, run_id) = (workspace.to_owned(), run_id.to_owned());
        self.read(move |conn| access::run_events(conn, &workspace, &run_id))
            .await
    }

    async fn run_stats(
        &self,
        workspace: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<StatsRow>, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| access::run_stats(conn, &workspace, since, until))
            .await
    }

    async fn create_grant(&self, grant: NewGrant, record: Grant) -> Result<Grant, StoreError> {
        self.writer
            .submit(move |conn| access::create_grant(conn, &grant, record.clone()))
            .await
    }

    async fn find_grant(&self, token_hash: &str) -> Result<Option<Grant>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| access::find_grant(conn, &token_hash))
            .await
    }

    async fn consume_grant(
        &self,
        token_hash: &str,
        kind: GrantKind,
        now: DateTime<Utc>,
    ) -> Result<GrantOutcome, StoreError> {
        let token_hash = token_hash.to_owned();
        self.writer
            .submit(move |conn| access::consume_grant(conn, &token_hash, kind, now))
            .await
    }

    async fn revoke_grant(&self, grant_id: &str, now: DateTime<Utc>) -> Result<Grant, StoreError> {
        let grant_id = grant_id.to_owned();
        self.writer
            .submit(move |conn| access::revoke_grant(conn, &grant_id, now))
            .await
    }

    async fn prune_grants(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| access::prune_grants(conn, before))
            .await
    }

    async fn list_grants(
        &self,
        workspace: &str,
        kind: GrantKind,
    ) -> Result<Vec<Grant>, StoreError> {
        let workspace = workspace.to_owned();
        self.read(move |conn| access::list_grants(conn, &workspace, kind))
            .await
    }

    fn batch_stats(&self) -> Option<BatchStats> {
        Some(self.writer.stats.snapshot())
    }
}
