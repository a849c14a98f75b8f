//! Reading the decision history read-only, for `countersign replay`.
//!
//! [`HistoryReader`] opens the store without migrating it, without a log
//! key and without any right to write: SQLite read-only with
//! `query_only`, PostgreSQL with every transaction of the session read-only.
//! It reads the runs in the order of their `run_proposed` event (the
//! workspace's log order), in windows of at most [`HISTORY_PAGE_EVENTS`]
//! events, each window one short statement (one short read transaction),
//! so a live gate's writer is never held back; the caller stops at a
//! high-water mark taken once at the start ([`HistoryReader::high_water_mark`]),
//! which makes the runs read, and so the replay, the same however much is
//! written meanwhile. Events are append-only and a run's request and
//! decision columns never change after creation, so a window read later
//! returns what it would have returned at the start.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::StoreError;
use crate::ts::{format_ts, parse_ts};

/// The number of log positions (events) one read covers.
pub const HISTORY_PAGE_EVENTS: u64 = 20_000;

/// Which runs to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The workspace.
    pub workspace: String,
    /// Only runs created at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only runs created before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Only runs of this action.
    pub action: Option<String>,
}

/// One stored run as it was decided: the request and the recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRun {
    /// Seq of the run's `run_proposed` event (its place in the log).
    pub seq: u64,
    /// The run id.
    pub run_id: String,
    /// The action.
    pub action: String,
    /// The actor, if any.
    pub actor: Option<String>,
    /// The source as JSON text, if any.
    pub source_json: Option<String>,
    /// The payload as stored (JSON text).
    pub payload_json: String,
    /// When the run was created and decided (the decision's `now`).
    pub created_at: DateTime<Utc>,
    /// The recorded decision: `allowed`, `pending_approval` or `blocked`.
    pub decision_status: String,
    /// The deciding rule, if any.
    pub rule: Option<String>,
    /// The action's risk (none when no policy declared the action).
    pub risk: Option<String>,
    /// The approver group asked, for a pending decision.
    pub approval_group: Option<String>,
    /// The quorum asked, for a pending decision.
    pub approval_quorum: Option<i64>,
    /// Matched, shadow and error details as recorded (JSON text). When
    /// limits over time exist, the aggregate values the decision used are
    /// recorded here too, and replay reads them from this field.
    pub details_json: String,
    /// The policy version that decided.
    pub policy_version: String,
    /// The request's `context` object as JSON text, if it had one.
    pub context_json: Option<String>,
}

/// A read-only connection to a store's history.
pub enum HistoryReader {
    /// An SQLite file opened read-only.
    Sqlite(Connection),
    /// A PostgreSQL session whose transactions are all read-only.
    Postgres {
        /// The client.
        client: tokio_postgres::Client,
        /// The connection's driver task.
        driver: tokio::task::JoinHandle<()>,
    },
}

impl std::fmt::Debug for HistoryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite(_) => "HistoryReader::Sqlite",
            Self::Postgres { .. } => "HistoryReader::Postgres",
        })
    }
}

impl Drop for HistoryReader {
    fn drop(&mut self) {
        if let Self::Postgres { driver, .. } = self {
            driver.abort();
        }
    }
}

const COLUMNS: &str = "e.seq, r.run_id, r.action, r.actor, r.source_json, r.payload_json, \
     r.created_at, r.decision_status, r.decision_rule, r.risk, r.approval_group, \
     r.approval_quorum, r.decision_details, r.policy_version, r.context_json";

fn not_a_store(what: &str) -> StoreError {
    StoreError::Unavailable {
        message: format!(
            "{what} is not a Countersign store (no runs, events or chain_heads table)"
        ),
    }
}

impl HistoryReader {
    /// Opens an SQLite store file read-only. A missing file is an error
    /// (nothing is created), and so is a file without the store's tables.
    pub fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Unavailable {
                message: format!("no SQLite store at {}", path.display()),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", true)?;
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('runs', 'events', 'chain_heads')",
            [],
            |r| r.get(0),
        )?;
        if tables != 3 {
            return Err(not_a_store(&path.display().to_string()));
        }
        Ok(Self::Sqlite(conn))
    }

    /// Connects to PostgreSQL (the URL may carry `sslmode`, `sslrootcert`
    /// and `options=-c search_path=…`) with a read-only session.
    pub async fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        let (config, tls) = crate::postgres::tls::prepare(url)?;
        let (client, connection) = config.connect(tls).await?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            .await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() \
                 AND table_name IN ('runs', 'events', 'chain_heads')",
                &[],
            )
            .await?;
        let tables: i64 = row.try_get(0)?;
        let reader = Self::Postgres { client, driver };
        if tables != 3 {
            return Err(not_a_store("this PostgreSQL database"));
        }
        Ok(reader)
    }

    /// The workspace's last log position now (0 for an unknown workspace):
    /// replay reads up to here and no further.
    pub async fn high_water_mark(&mut self, workspace: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = match self {
            Self::Sqlite(conn) => conn
                .query_row(
                    "SELECT seq FROM chain_heads WHERE workspace = ?1",
                    [workspace],
                    |r| r.get(0),
                )
                .optional()?,
            Self::Postgres { client, .. } => client
                .query_opt(
                    "SELECT seq FROM chain_heads WHERE workspace = $1",
                    &[&workspace],
                )
                .await?
                .map(|r| r.try_get(0))
                .transpose()?,
        };
        Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    /// The runs of `query` whose `run_proposed` event has
    /// `after < seq <= upto`, in log order, read in one statement. Callers
    /// step through the log in windows of [`HISTORY_PAGE_EVENTS`].
    pub async fn window(
        &mut self,
        query: &HistoryQuery,
        after: u64,
        upto: u64,
    ) -> Result<Vec<HistoryRun>, StoreError> {
        let after = i64::try_from(after).map_err(|_| StoreError::invalid("seq out of range"))?;
        let upto = i64::try_from(upto).map_err(|_| StoreError::invalid("seq out of range"))?;
        match self {
            Self::Sqlite(conn) => sqlite_window(conn, query, after, upto),
            Self::Postgres { client, .. } => postgres_window(client, query, after, upto).await,
        }
    }
}

fn sqlite_window(
    conn: &Connection,
    q: &HistoryQuery,
    after: i64,
    upto: i64,
) -> Result<Vec<HistoryRun>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events e \
         JOIN runs r ON r.workspace = e.workspace AND r.run_id = e.run_id \
         WHERE e.workspace = ?1 AND e.seq > ?2 AND e.seq <= ?3 AND e.kind = 'run_proposed' \
         AND (?4 IS NULL OR r.action = ?4) \
         AND (?5 IS NULL OR r.created_at >= ?5) AND (?6 IS NULL OR r.created_at < ?6) \
         ORDER BY e.seq"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let from = q.from.map(format_ts);
    let to = q.to.map(format_ts);
    let mut rows = stmt.query(rusqlite::params![
        q.workspace,
        after,
        upto,
        q.action,
        from,
        to
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let created: String = r.get(6)?;
        out.push(HistoryRun {
            seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            run_id: r.get(1)?,
            action: r.get(2)?,
            actor: r.get(3)?,
            source_json: r.get(4)?,
            payload_json: r.get(5)?,
            created_at: parse_ts(&created)?,
            decision_status: r.get(7)?,
            rule: r.get(8)?,
            risk: r.get(9)?,
            approval_group: r.get(10)?,
            approval_quorum: r.get(11)?,
            details_json: r.get(12)?,
            policy_version: r.get(13)?,
            context_json: r.get(14)?,
        });
    }
    Ok(out)
}

async fn postgres_window(
    client: &tokio_postgres::Client,
    q: &HistoryQuery,
    after: i64,
    upto: i64,
) -> Result<Vec<HistoryRun>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events e \
         JOIN runs r ON r.workspace = e.workspace AND r.run_id = e.run_id \
         WHERE e.workspace = $1 AND e.seq > $2 AND e.seq <= $3 AND e.kind = 'run_proposed' \
         AND ($4::text IS NULL OR r.action = $4) \
         AND ($5::timestamptz IS NULL OR r.created_at >= $5) \
         AND ($6::timestamptz IS NULL OR r.created_at < $6) \
         ORDER BY e.seq"
    );
    let rows = client
        .query(
            &sql,
            &[&q.workspace, &after, &upto, &q.action, &q.from, &q.to],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRun {
                seq: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
                run_id: r.try_get(1)?,
                action: r.try_get(2)?,
                actor: r.try_get(3)?,
                source_json: r.try_get(4)?,
                payload_json: r.try_get(5)?,
                created_at: r.try_get(6)?,
                decision_status: r.try_get(7)?,
                rule: r.try_get(8)?,
                risk: r.try_get(9)?,
                approval_group: r.try_get(10)?,
                approval_quorum: r.try_get(11)?,
                details_json: r.try_get(12)?,
                policy_version: r.try_get(13)?,
                context_json: r.try_get(14)?,
            })
        })
        .collect()
}
