//! Shared setup for the log benchmarks: a SQLite (or PostgreSQL) store
//! whose workspace holds a given number of events, built once and cached.

pub mod clock;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use countersign_store::{
    DecisionRecord, GovernanceStatus, LogKey, NewRun, Proposal, SqliteStore, Store,
};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

/// The workspace every benchmark store fills.
pub const WORKSPACE: &str = "bench";

/// Runs kept in flight while filling a store, so that the SQLite writer's
/// group commit puts many of them in one transaction.
pub const IN_FLIGHT: usize = 512;

/// The key every benchmark store is opened with.
pub fn log_key() -> LogKey {
    LogKey::from_bytes([7; 32])
}

/// An allowed run: two events (run_proposed, policy_decided), shaped like
/// what one intercept writes.
pub fn allowed_run(i: u64) -> NewRun {
    let base = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single();
    let created_at = base.unwrap_or_default() + chrono::Duration::milliseconds(i as i64);
    NewRun {
        proposal: Proposal {
            workspace: WORKSPACE.into(),
            run_id: format!("run_{i:08}"),
            action: "payments.refund".into(),
            actor: Some("agent-billing".into()),
            source: Some(json!({"agent": "billing-bot", "session": i % 97})),
            reasoning: Some("customer asked for a refund of a duplicate charge".into()),
            payload_json: format!(
                r#"{{"amount": {}.50, "currency": "EUR", "order": "ord-{i}"}}"#,
                i % 500
            ),
            payload_hash: format!("{:064x}", i),
            payload_summary: "refund".into(),
            idempotency_key: None,
            request_hash: format!("rh-{i}"),
            decision: DecisionRecord {
                governance_status: GovernanceStatus::Allowed,
                rule: Some("small-refunds".into()),
                reason: "refund under the limit".into(),
                policy_version: "v1".into(),
                risk: Some("low".into()),
                details: json!({"matched": ["small-refunds"], "shadow": [], "errors": []}),
            },
            approval: None,
            created_at,
        },
        deliveries: Vec::new(),
    }
}

/// Appends allowed runs until the workspace holds `events` events,
/// `IN_FLIGHT` runs at a time. Prints the rate.
pub fn fill(rt: &Runtime, store: Arc<dyn Store>, events: u64) {
    let started = Instant::now();
    rt.block_on(async move {
        let have = store
            .tree_head(WORKSPACE)
            .await
            .map(|h| h.size)
            .unwrap_or(0);
        let limit = Arc::new(Semaphore::new(IN_FLIGHT));
        for i in have / 2..events / 2 {
            let permit = Arc::clone(&limit)
                .acquire_owned()
                .await
                .unwrap_or_else(|e| fail(&e.to_string()));
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                if let Err(e) = store.create_run(allowed_run(i)).await {
                    fail(&format!("create_run {i}: {e}"));
                }
                drop(permit);
            });
            if i % 50_000 == 0 && i > 0 {
                eprintln!("  {} events", 2 * i);
            }
        }
        // Every permit back: every run committed.
        let _all = limit
            .acquire_many(IN_FLIGHT as u32)
            .await
            .unwrap_or_else(|e| fail(&e.to_string()));
    });
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "filled {events} events in {secs:.1} s ({:.0} events/s)",
        events as f64 / secs
    );
}

/// A SQLite store at `dir/log-<events>.db` whose workspace holds `events`
/// events; built on first use and kept (a marker file says it is complete).
pub fn sqlite_store(rt: &Runtime, dir: &Path, events: u64) -> Arc<dyn Store> {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(&format!("mkdir {dir:?}: {e}")));
    let path = dir.join(format!("log-{events}.db"));
    let done = dir.join(format!("log-{events}.done"));
    if !done.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        eprintln!("building {path:?} ({events} events, once)");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&path, log_key()).unwrap_or_else(|e| fail(&e.to_string())));
        fill(rt, Arc::clone(&store), events);
        check_size(rt, store.as_ref(), events);
        drop(store);
        std::fs::write(&done, b"").unwrap_or_else(|e| fail(&e.to_string()));
    }
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path, log_key()).unwrap_or_else(|e| fail(&e.to_string())));
    check_size(rt, store.as_ref(), events);
    store
}

/// Fails unless the workspace's tree has `events` leaves.
pub fn check_size(rt: &Runtime, store: &dyn Store, events: u64) {
    let size = rt
        .block_on(store.tree_head(WORKSPACE))
        .unwrap_or_else(|e| fail(&e.to_string()))
        .size;
    if size != events {
        fail(&format!("store holds {size} events, expected {events}"));
    }
}

/// Prints `message` and exits (setup errors are not measurements).
pub fn fail(message: &str) -> ! {
    eprintln!("log bench setup: {message}");
    std::process::exit(2)
}

/// A small deterministic generator (xorshift64*) for the random indexes.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is replaced).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// Uniform in `0..n` (n > 0; the modulo bias is negligible here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A PostgreSQL store in schema `log_bench_<events>` of `url` whose
/// workspace holds `events` events: reused when it already holds exactly
/// that many, else dropped and filled again.
pub fn postgres_store(rt: &Runtime, url: &str, events: u64) -> Arc<dyn Store> {
    let schema = pg_schema(events);
    let open = || -> Arc<dyn Store> {
        Arc::new(
            rt.block_on(countersign_store::PostgresStore::connect_with_schema(
                url,
                &schema,
                log_key(),
            ))
            .unwrap_or_else(|e| fail(&e.to_string())),
        )
    };
    let store = open();
    let size = rt
        .block_on(store.tree_head(WORKSPACE))
        .unwrap_or_else(|e| fail(&e.to_string()))
        .size;
    if size == events {
        return store;
    }
    drop(store);
    drop_pg_schema(rt, url, events);
    eprintln!("building postgres schema {schema} ({events} events)");
    let store = open();
    fill(rt, Arc::clone(&store), events);
    check_size(rt, store.as_ref(), events);
    store
}

/// The schema [`postgres_store`] uses for `events`.
pub fn pg_schema(events: u64) -> String {
    format!("log_bench_{events}")
}

/// Drops the schema [`postgres_store`] made for `events`.
pub fn drop_pg_schema(rt: &Runtime, url: &str, events: u64) {
    let schema = pg_schema(events);
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| fail(&e.to_string()));
        let driver = tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .unwrap_or_else(|e| fail(&e.to_string()));
        drop(client);
        let _ = driver.await;
    });
}
