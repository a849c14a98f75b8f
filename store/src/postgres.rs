// Over 600 lines: the Backend impl is one short delegation per Store method.
//! The PostgreSQL backend, for several gate instances sharing one database.
//!
//! Every write is one transaction that first locks its workspace's row in
//! `chain_heads` (`SELECT ... FOR UPDATE`): appends to a workspace's chain
//! are serialized across all connections and processes, and seqs stay
//! gapless. Multi-query reads run in a read-only REPEATABLE READ
//! transaction, so they see one snapshot.

mod access;
mod aggregates;
mod log;
pub(crate) mod notify;
mod ops;
mod read;
pub mod tls;

use crate::aggregates::{AggregateQuery, DecideRun, SeriesReport, SeriesSpec};
use crate::backend::Backend;
use crate::chain::PendingEvent;
use crate::checked::Checked;
use crate::error::StoreError;
use crate::log_key::LogKey;
use crate::model::{
    AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalToken, ChainPosition, ChainReport,
    CreateRunOutcome, Delivery, Event, ExecutionOutcome, Grant, GrantKind, GrantOutcome, NewGrant,
    NewRun, Run, RunFilter, RunPage, StatsRow, TokenAnswer, TokenOutcome,
};
use crate::model::{AuditReport, StoredCheckpoint, TreeExtension, TreeHead};
use crate::tlog::Hash;
use crate::ts::normalize;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use tokio_postgres::{Client, IsolationLevel};

/// Embedded migrations: (version, SQL). Append only; never edit a shipped one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_access.sql")),
    (
        3,
        include_str!("../migrations/postgres/0003_deliveries.sql"),
    ),
    (
        4,
        include_str!("../migrations/postgres/0004_verifiable_log.sql"),
    ),
    (5, include_str!("../migrations/postgres/0005_key_actor.sql")),
    (
        6,
        include_str!("../migrations/postgres/0006_key_events.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_run_context.sql"),
    ),
    (
        8,
        include_str!("../migrations/postgres/0008_aggregates.sql"),
    ),
];

/// The version whose migration authenticates the events already stored.
const VERIFIABLE_LOG_VERSION: i64 = 4;

/// Connections in the pool when none is given.
const DEFAULT_POOL_SIZE: usize = 16;

/// How to connect.
#[derive(Debug, Clone, Default)]
pub struct PostgresOptions {
    /// Schema to keep the tables in; created if missing and made the only
    /// entry of every connection's `search_path`. `None` keeps the URL's
    /// search_path (usually `public`).
    pub schema: Option<String>,
    /// Most pooled connections (default 16).
    pub pool_size: Option<usize>,
}

/// The PostgreSQL store: the PostgreSQL backend behind the argument checks
/// every store shares. Cheap to share: wrap it in an `Arc`.
pub type PostgresStore = Checked<PostgresBackend>;

/// The PostgreSQL backend; reachable only through [`PostgresStore`], which
/// checks every argument before it gets here.
pub struct PostgresBackend {
    pool: Pool,
    key: Arc<LogKey>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

fn unavailable(message: String) -> StoreError {
    StoreError::Unavailable { message }
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://user@host:5432/db`, which may
    /// carry `?options=-c%20search_path%3Dname`) and migrates the schema;
    /// every event is authenticated with `key` (see [`LogKey`]). The first
    /// connection after an upgrade authenticates the events already stored
    /// and builds their Merkle trees, logging its progress (`tracing`).
    pub async fn connect(url: &str, key: LogKey) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default(), key).await
    }

    /// Like [`PostgresStore::connect`], keeping the tables in `schema`
    /// (created if missing): `[a-z_][a-z0-9_]*`, at most 63 characters.
    pub async fn connect_with_schema(
        url: &str,
        schema: &str,
        key: LogKey,
    ) -> Result<Self, StoreError> {
        Self::connect_with(
            url,
            PostgresOptions {
                schema: Some(schema.to_owned()),
                pool_size: None,
            },
            key,
        )
        .await
    }

    /// Connects with explicit options.
    pub async fn connect_with(
        url: &str,
        options: PostgresOptions,
        key: LogKey,
    ) -> Result<Self, StoreError> {
        Self::connect_upto(url, options, key, i64::MAX).await
    }

    /// Connects, migrating only up to schema version `upto` (tests of the upgrade).
    #[doc(hidden)]
    pub async fn connect_upto(
        url: &str,
        options: PostgresOptions,
        key: LogKey,
        upto: i64,
    ) -> Result<Self, StoreError> {
        // `sslmode`/`sslrootcert` are the store's to read (see `tls`).
        let (mut config, tls) = tls::prepare(url)?;
        if let Some(schema) = &options.schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::invalid(format!(
                    "schema name `{schema}` must match [a-z_][a-z0-9_]* (at most 63 characters)"
                )));
            }
            let (client, connection) = config.connect(tls.clone()).await?;
            let driver = tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .await?;
            drop(client);
            let _ = driver.await;
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.unwrap_or(DEFAULT_POOL_SIZE).max(1))
            .build()
            .map_err(|e| unavailable(format!("postgres pool: {e}")))?;
        let backend = PostgresBackend {
            pool,
            key: Arc::new(key),
        };
        backend.migrate(upto).await?;
        Ok(Checked::new(backend))
    }
}

impl PostgresBackend {
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    async fn migrate(&self, upto: i64) -> Result<(), StoreError> {
        let mut obj = self.client().await?;
        let client: &mut Client = &mut obj;
        let tx = client.transaction().await?;
        // Several gate instances may start at once: one migrates, the others wait.
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(hashtext('countersign-migrate:' || current_schema())); \
             CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
        )
        .await?;
        let row = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .await?;
        let current: i64 = row.try_get(0)?;
        let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if current > latest {
            return Err(unavailable(format!(
                "database schema version {current} is newer than this build knows ({latest})"
            )));
        }
        for (version, sql) in MIGRATIONS {
            if *version > current && *version <= upto {
                tx.batch_execute(sql).await?;
                if *version == VERIFIABLE_LOG_VERSION {
                    log::backfill(&tx, &self.key).await?;
                }
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[version],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Runs `$body` (an expression using `$tx`) in a read-write transaction
/// and commits it if it succeeded.
macro_rules! in_tx {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut obj = $self.client().await?;
        let client: &mut Client = &mut obj;
        let $tx = client.transaction().await?;
        let out = $body.await?;
        $tx.commit().await?;
        Ok(out)
    }};
}

/// Runs `$body` in a read-only REPEATABLE READ transaction.
macro_rules! in_snapshot {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut obj = $self.client().await?;
        let client: &mut Client = &mut obj;
        let $tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let out = $body.await?;
        $tx.commit().await?;
        Ok(out)
    }};
}

impl PostgresBackend {
    async fn run_audit(
        &self,
        workspace: &str,
    ) -> Result<(Option<StoreError>, AuditReport), StoreError> {
        in_snapshot!(self, |tx| async {
            let (first_break, mut report) = log::audit(&tx, &self.key, workspace).await?;
            let room = crate::audit::MAX_AUDIT_PROBLEMS.saturating_sub(report.problems.len());
            for message in aggregates::check(&tx, workspace, room.max(1)).await? {
                crate::aggregates::add_problem(&mut report, message);
            }
            Ok::<_, StoreError>((first_break, report))
        })
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn health(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn create_run(&self, run: NewRun) -> Result<CreateRunOutcome, StoreError> {
        in_tx!(self, |tx| ops::create_run(&tx, &self.key, &run))
    }

    async fn create_run_deciding(
        &self,
        workspace: &str,
        now: DateTime<Utc>,
        queries: Vec<AggregateQuery>,
        decide: DecideRun,
    ) -> Result<CreateRunOutcome, StoreError> {
        in_tx!(self, |tx| async {
            // The head lock serializes the workspace's appends, across
            // gates; READ COMMITTED then shows every run committed before.
            ops::lock_head(&tx, workspace).await?;
            let values = aggregates::answer(&tx, workspace, now, &queries).await?;
            let mut new = decide(&values)?;
            crate::aggregates::check_decided(&new, workspace)?;
            crate::validate::validate_new_run(&mut new)?;
            ops::create_run(&tx, &self.key, &new).await
        })
    }

    async fn prepare_series(
        &self,
        workspace: &str,
        series: Vec<SeriesSpec>,
    ) -> Result<SeriesReport, StoreError> {
        let mut report = SeriesReport::default();
        for spec in series {
            let fresh: Result<bool, StoreError> = in_tx!(self, |tx| async {
                ops::lock_head(&tx, workspace).await?;
                aggregates::register(&tx, workspace, &spec).await
            });
            let fresh = fresh?;
            if !fresh {
                continue;
            }
            tracing::info!(workspace, action = %spec.action, series = %spec.id(), "building an aggregate index from history");
            let mut cursor: aggregates::Cursor = None;
            loop {
                let step: Result<(aggregates::Cursor, u64), StoreError> =
                    in_tx!(self, |tx| aggregates::backfill_chunk(
                        &tx, workspace, &spec, &cursor
                    ));
                let (next, read) = step?;
                report.runs_read += read;
                tracing::info!(workspace, series = %spec.id(), runs_read = report.runs_read, "aggregate index progress");
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            let marked: Result<(), StoreError> =
                in_tx!(self, |tx| aggregates::mark_built(&tx, workspace, &spec));
            marked?;
            report.built += 1;
        }
        Ok(report)
    }

    async fn get_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        in_snapshot!(self, |tx| read::load_run(&tx, workspace, run_id, false))
    }

    async fn list_runs(&self, workspace: &str, filter: RunFilter) -> Result<RunPage, StoreError> {
        in_snapshot!(self, |tx| read::list_runs(&tx, workspace, &filter))
    }

    async fn report_execution(
        &self,
        workspace: &str,
        run_id: &str,
        outcome: ExecutionOutcome,
        now: DateTime<Utc>,
    ) -> Result<Run, StoreError> {
        in_tx!(self, |tx| ops::report_execution(
            &tx, &self.key, workspace, run_id, outcome, now
        ))
    }

    async fn record_answer(
        &self,
        workspace: &str,
        run_id: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<AnswerOutcome, StoreError> {
        in_tx!(self, |tx| ops::record_answer(
            &tx, &self.key, workspace, run_id, answer, now
        ))
    }

    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
        let due = {
            let client = self.client().await?;
            read::due_runs(&**client, now).await?
        };
        let mut expired = Vec::new();
        // One transaction per run: each expiry is its own state change, and
        // no transaction ever holds two workspaces' head locks.
        for (workspace, run_id) in due {
            let run: Result<Option<Run>, StoreError> = in_tx!(self, |tx| ops::expire_one(
                &tx, &self.key, &workspace, &run_id, now
            ));
            if let Some(run) = run? {
                expired.push(run);
            }
        }
        Ok(expired)
    }

    async fn create_key(
        &self,
        key: ApiKeyRecord,
        key_hash: &str,
    ) -> Result<ApiKeyRecord, StoreError> {
        in_tx!(self, |tx| ops::create_key(&tx, &self.key, &key, key_hash))
    }

    async fn revoke_key(
        &self,
        workspace: &str,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError> {
        in_tx!(self, |tx| ops::revoke_key(
            &tx, &self.key, workspace, key_id, now
        ))
    }

    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        in_snapshot!(self, |tx| log::verified_key(&tx, &self.key, key_hash))
    }

    async fn list_keys(&self, workspace: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        read::list_keys(&**client, workspace).await
    }

    async fn append_workspace_event(
        &self,
        workspace: &str,
        event: PendingEvent,
    ) -> Result<Event, StoreError> {
        in_tx!(self, |tx| ops::append_one(&tx, &self.key, workspace, event))
    }

    async fn events(
        &self,
        workspace: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let client = self.client().await?;
        read::events(&**client, workspace, after_seq, limit).await
    }

    async fn verify_chain(&self, workspace: &str) -> Result<ChainReport, StoreError> {
        let (first_break, report) = self.run_audit(workspace).await?;
        crate::audit::verdict(first_break, report)
    }

    async fn audit(&self, workspace: &str) -> Result<AuditReport, StoreError> {
        Ok(self.run_audit(workspace).await?.1)
    }

    async fn tree_head(&self, workspace: &str) -> Result<TreeHead, StoreError> {
        in_snapshot!(self, |tx| log::tree_head(&tx, workspace, None))
    }

    async fn verify_extension(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<TreeExtension, StoreError> {
        in_snapshot!(self, |tx| log::verify_extension(
            &tx, &self.key, workspace, from, to
        ))
    }

    async fn tree_head_at(&self, workspace: &str, size: u64) -> Result<TreeHead, StoreError> {
        in_snapshot!(self, |tx| log::tree_head(&tx, workspace, Some(size)))
    }

    async fn inclusion_proof(
        &self,
        workspace: &str,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        in_snapshot!(self, |tx| log::inclusion_proof(&tx, workspace, index, size))
    }

    async fn consistency_proof(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        in_snapshot!(self, |tx| log::consistency_proof(&tx, workspace, from, to))
    }

    async fn save_checkpoint(&self, checkpoint: StoredCheckpoint) -> Result<(), StoreError> {
        in_tx!(self, |tx| async {
            // The head's lock keeps appends out while the root is compared.
            ops::lock_head(&tx, &checkpoint.workspace).await?;
            log::save_checkpoint(&tx, &checkpoint).await
        })
    }

    async fn find_checkpoint(
        &self,
        workspace: &str,
        size: Option<u64>,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        in_snapshot!(self, |tx| log::find_checkpoint(&tx, workspace, size))
    }

    async fn verified_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        in_snapshot!(self, |tx| log::verified_run(
            &tx, &self.key, workspace, run_id
        ))
    }

    async fn workspaces(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        read::workspaces(&**client).await
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        read::due_deliveries(&**client, now, limit).await
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let until = chrono::Duration::from_std(lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .ok_or_else(|| StoreError::invalid("the delivery lease is too long"))?;
        let until = normalize(until)?;
        in_tx!(self, |tx| ops::claim_due_deliveries(&tx, now, until, limit))
    }

    async fn deliveries_for_run(
        &self,
        workspace: &str,
        run_id: &str,
    ) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        read::deliveries_for_run(&**client, workspace, run_id).await
    }

    async fn mark_delivery_sent(
        &self,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE deliveries SET sent_at = $2, next_attempt_at = NULL WHERE delivery_id = $1",
                &[&delivery_id, &now],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound {
                entity: "delivery",
                id: delivery_id.to_owned(),
            });
        }
        Ok(())
    }

    async fn mark_deliveries_sent(
        &self,
        delivery_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut obj = self.client().await?;
        let client: &mut Client = &mut obj;
        let tx = client.transaction().await?;
        let marked: Vec<String> = tx
            .query(
                "UPDATE deliveries SET sent_at = $2, next_attempt_at = NULL \
                 WHERE delivery_id = ANY($1) RETURNING delivery_id",
                &[&delivery_ids, &now],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        if let Some(missing) = delivery_ids.iter().find(|id| !marked.contains(id)) {
            // Dropping the transaction rolls it back: none is marked.
            return Err(StoreError::NotFound {
                entity: "delivery",
                id: missing.clone(),
            });
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_delivery_failed(
        &self,
        delivery_id: &str,
        next_attempt_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StoreError> {
        let next = next_attempt_at;
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, \
                 next_attempt_at = $3 WHERE delivery_id = $1 AND sent_at IS NULL",
                &[&delivery_id, &error, &next],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound {
                entity: "delivery",
                id: delivery_id.to_owned(),
            });
        }
        Ok(())
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<ApprovalToken>, StoreError> {
        let client = self.client().await?;
        read::find_token(&**client, token_hash, false).await
    }

    async fn consume_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenOutcome, StoreError> {
        in_tx!(self, |tx| ops::consume_token(&tx, token_hash, now))
    }

    async fn answer_with_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError> {
        // One transaction: an answer that fails rolls the spending back.
        in_tx!(self, |tx| async {
            match ops::consume_token(&tx, token_hash, now).await? {
                TokenOutcome::Consumed(t) => {
                    log::check_token(&tx, &self.key, &t, token_hash, &answer).await?;
                    ops::record_answer(&tx, &self.key, &t.workspace, &t.run_id, answer, now)
                        .await
                        .map(|o| TokenAnswer::Answered(Box::new(o)))
                }
                refused => Ok::<_, StoreError>(TokenAnswer::Refused(refused)),
            }
        })
    }

    async fn answer_with_shared_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError> {
        in_tx!(self, |tx| async {
            let Some(token) = read::find_token(&tx, token_hash, false).await? else {
                return Ok::<_, StoreError>(TokenAnswer::Refused(TokenOutcome::Unknown));
            };
            if now >= token.expires_at {
                return Ok(TokenAnswer::Refused(TokenOutcome::Expired(token)));
            }
            log::check_token(&tx, &self.key, &token, token_hash, &answer).await?;
            ops::record_answer(&tx, &self.key, &token.workspace, &token.run_id, answer, now)
                .await
                .map(|o| TokenAnswer::Answered(Box::new(o)))
        })
    }

    async fn chain_head(&self, workspace: &str) -> Result<ChainPosition, StoreError> {
        let client = self.client().await?;
        access::chain_head(&**client, workspace).await
    }

    async fn run_events(&self, workspace: &str, run_id: &str) -> Result<Vec<Event>, StoreError> {
        let client = self.client().await?;
        access::run_events(&**client, workspace, run_id).await
    }

    async fn run_stats(
        &self,
        workspace: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<StatsRow>, StoreError> {
        let client = self.client().await?;
        access::run_stats(&**client, workspace, since, until).await
    }

    async fn create_grant(&self, grant: NewGrant, record: Grant) -> Result<Grant, StoreError> {
        in_tx!(self, |tx| access::create_grant(
            &tx, &self.key, &grant, record
        ))
    }

    async fn find_grant(&self, token_hash: &str) -> Result<Option<Grant>, StoreError> {
        let client = self.client().await?;
        access::find_grant(&**client, token_hash).await
    }

    async fn consume_grant(
        &self,
        token_hash: &str,
        kind: GrantKind,
        now: DateTime<Utc>,
    ) -> Result<GrantOutcome, StoreError> {
        in_tx!(self, |tx| access::consume_grant(&tx, token_hash, kind, now))
    }

    async fn revoke_grant(&self, grant_id: &str, now: DateTime<Utc>) -> Result<Grant, StoreError> {
        in_tx!(self, |tx| access::revoke_grant(
            &tx, &self.key, grant_id, now
        ))
    }

    async fn prune_grants(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        access::prune_grants(&**client, before).await
    }

    async fn list_grants(
        &self,
        workspace: &str,
        kind: GrantKind,
    ) -> Result<Vec<Grant>, StoreError> {
        let client = self.client().await?;
        access::list_grants(&**client, workspace, kind).await
    }
}
