//! The generic store suite against SQLite (a fresh database file per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use async_trait::async_trait;
use common::Backend;
use countersign_store::{LogKey, SqliteStore, Store};
use std::path::PathBuf;
use std::sync::Arc;

struct Sqlite {
    store: Arc<SqliteStore>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

#[async_trait]
impl Backend for Sqlite {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store) as Arc<dyn Store>
    }

    async fn raw_execute(&self, sql: &str) -> Result<(), String> {
        let conn = rusqlite::Connection::open(&self.path).map_err(|e| e.to_string())?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        conn.execute_batch(sql).map_err(|e| e.to_string())
    }

    async fn drop_append_only_triggers(&self) {
        self.raw_execute(
            "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; \
             DROP TRIGGER tree_hashes_no_update; DROP TRIGGER tree_hashes_no_delete; \
             DROP TRIGGER checkpoints_no_update; DROP TRIGGER checkpoints_no_delete;",
        )
        .await
        .unwrap();
    }

    fn blob_literal(&self, bytes: &[u8]) -> String {
        format!("X'{}'", hex::encode(bytes))
    }

    async fn reopen(&self, key: LogKey) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.path, key).unwrap())
    }

    fn batches(&self) -> bool {
        true
    }
}

async fn sqlite() -> Option<Sqlite> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("countersign.db");
    let store = Arc::new(SqliteStore::open(&path, common::log_key()).unwrap());
    Some(Sqlite {
        store,
        path,
        _dir: dir,
    })
}

backend_tests!(sqlite;
    create_and_get,
    context_is_kept,
    list_filters_and_pagination,
    default_and_max_page_size,
    idempotency,
    report_execution_rules,
    quorum_of_two,
    self_approval_and_non_approver,
    self_approval_by_lookalike_actor,
    escalation_members_answer_only_from_their_time,
    reject_and_already_decided,
    expiry,
    tenant_isolation,
    keys_lifecycle,
    keys_bound_to_an_actor,
    policy_reload_and_events_paging,
    chain_verifies_after_many_operations,
    tampering_is_detected,
    concurrent_creates,
    concurrent_answers_reach_quorum_once,
    deliveries_and_tokens,
    deliveries_marked_sent_together,
    tokens_named_after_their_delivery,
    answer_with_token_is_all_or_nothing,
    health,
    sign_in_grants_are_single_use_and_expire,
    grants_reject_bad_input_and_duplicates,
    share_links_are_audited_and_scoped,
    run_events_head_and_stats,
    proofs_verify_at_many_sizes,
    checkpoints_are_kept_and_checked,
    forged_approval_is_detected_and_refused,
    rewritten_history_is_detected,
    forged_events_without_the_key_are_detected,
    deleted_and_truncated_logs_are_detected,
    edited_tree_approval_and_key_rows_are_detected,
    another_log_key_fails_every_event,
    forged_key_rows_are_refused,
    forged_key_events_do_not_authenticate_a_key,
    rows_agree_with_the_log_for_fine_times_and_spelled_numbers,
    edited_delivery_state_is_detected_and_refused,
    respelled_event_data_still_verifies,
);

#[tokio::test]
async fn reopening_keeps_data_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cs.db");
    {
        let store = SqliteStore::open(&path, common::log_key()).unwrap();
        store
            .create_run(common::run(
                "ws",
                "r",
                countersign_store::GovernanceStatus::Allowed,
            ))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path, common::log_key()).unwrap();
    assert!(store.get_run("ws", "r").await.unwrap().is_some());
    assert_eq!(store.verify_chain("ws").await.unwrap().events, 2);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (versions, distinct): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(versions, distinct, "each migration ran once");
    assert_eq!(versions, 8, "every migration applied");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_failing_command_does_not_sink_its_batch() {
    // Many commands queued together, half of them failing: the others commit.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("cs.db"), common::log_key()).unwrap());
    store
        .create_run(common::run(
            "ws",
            "taken",
            countersign_store::GovernanceStatus::Allowed,
        ))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let id = if i % 2 == 0 {
                "taken".to_owned()
            } else {
                format!("r{i}")
            };
            store
                .create_run(common::run(
                    "ws",
                    &id,
                    countersign_store::GovernanceStatus::Allowed,
                ))
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(countersign_store::StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 30);
    assert_eq!(store.verify_chain("ws").await.unwrap().events, 62);
}

#[tokio::test]
async fn a_command_failing_after_it_wrote_leaves_nothing_and_sinks_nothing() {
    // A run whose delivery id is taken fails only after its run row and
    // events went in: that forces the writer's rollback-and-retry path. The
    // failing runs must leave no trace, the others must all commit, and the
    // chain must still verify.
    use countersign_store::{GovernanceStatus, NewDelivery, StoreError};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("cs.db"), common::log_key()).unwrap());
    let delivery = |id: &str| NewDelivery {
        delivery_id: id.into(),
        approver_id: "a".into(),
        channel: "email".into(),
        token_hash: None,
        next_attempt_at: common::t(10),
    };
    let mut first = common::run("ws", "first", GovernanceStatus::PendingApproval);
    first.deliveries = vec![delivery("taken")];
    store.create_run(first).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = Arc::clone(&store);
        let mut run = common::run("ws", &format!("r{i}"), GovernanceStatus::PendingApproval);
        let id = if i % 3 == 0 {
            "taken".to_owned()
        } else {
            format!("d{i}")
        };
        run.deliveries = vec![delivery(&id)];
        tasks.push(tokio::spawn(
            async move { (i, store.create_run(run).await) },
        ));
    }
    for task in tasks {
        let (i, result) = task.await.unwrap();
        match result {
            Ok(_) => assert!(i % 3 != 0, "r{i} should have failed"),
            Err(StoreError::Conflict { .. }) => assert!(i % 3 == 0, "r{i} should have committed"),
            Err(e) => panic!("unexpected {e:?}"),
        }
        let stored = store.get_run("ws", &format!("r{i}")).await.unwrap();
        assert_eq!(stored.is_some(), i % 3 != 0, "r{i}");
    }
    // 3 events per pending run: the first one and the 40 that committed.
    assert_eq!(store.verify_chain("ws").await.unwrap().events, 41 * 3);
}

/// The repository's `.cargo/config.toml` builds the bundled SQLite without
/// the process-wide shared page cache and without memory statistics (two
/// global mutexes on the writer's hot path). This fails if that setting is
/// lost.
#[test]
fn bundled_sqlite_is_built_without_the_shared_page_cache_mutexes() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
    let options: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
}

/// Tokens of the `DELIVERY_ID.…` form live in their delivery's row: no
/// `approval_tokens` row is written for them (other keys still get one).
#[tokio::test]
async fn delivery_form_tokens_add_no_token_row() {
    use countersign_store::{NewDelivery, TokenOutcome};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cs.db");
    let store = SqliteStore::open(&path, common::log_key()).unwrap();
    let mut run = common::pending("ws", "r", &["a", "b"], 1, common::t(1000));
    run.deliveries = vec![
        NewDelivery {
            delivery_id: "dlv_a".into(),
            approver_id: "a".into(),
            channel: "email".into(),
            token_hash: Some("dlv_a.h".into()),
            next_attempt_at: common::t(10),
        },
        NewDelivery {
            delivery_id: "dlv_b".into(),
            approver_id: "b".into(),
            channel: "email".into(),
            token_hash: Some("other-form".into()),
            next_attempt_at: common::t(10),
        },
    ];
    store.create_run(run).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let keys: Vec<String> = conn
        .prepare("SELECT token_hash FROM approval_tokens")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys, ["other-form"]);
    assert!(matches!(
        store.consume_token("dlv_a.h", common::t(20)).await.unwrap(),
        TokenOutcome::Consumed(_)
    ));
    let used: Option<String> = conn
        .query_row(
            "SELECT token_used_at FROM deliveries WHERE delivery_id = 'dlv_a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(used.is_some(), "spent in the delivery's row");
}

/// A database written by schema version 2 (deliveries with a rowid, every
/// token in `approval_tokens`) is migrated in place: its deliveries are
/// still due and listed, its unspent tokens, of either key form, still
/// work, and a token spent before the upgrade stays spent.
#[tokio::test]
async fn a_version_2_database_keeps_its_deliveries_and_tokens() {
    use countersign_store::TokenOutcome;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cs.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite/0001_init.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite/0002_access.sql"))
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1), (2);",
        )
        .unwrap();
    }
    // The run goes in through a version-3 store on another file, and is
    // copied row by row into the version-2 one, with the rows the previous
    // release wrote for its deliveries.
    let donor_path = dir.path().join("donor.db");
    let donor = SqliteStore::open(&donor_path, common::log_key()).unwrap();
    // Its log lists the deliveries the rows below hold (an older log
    // would not list them, and its rows would go unchecked).
    let mut r = common::pending("ws", "r", &["a", "b"], 1, common::t(1000));
    r.deliveries = [("dlv_a", "a", "dlv_a.h"), ("dlv_b", "b", "legacy-hash")]
        .into_iter()
        .map(|(id, who, token)| countersign_store::NewDelivery {
            delivery_id: id.into(),
            approver_id: who.into(),
            channel: "email".into(),
            token_hash: Some(token.into()),
            next_attempt_at: common::t(10),
        })
        .collect();
    donor.create_run(r).await.unwrap();
    drop(donor);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "ATTACH DATABASE ?1 AS donor",
            [donor_path.to_str().unwrap()],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO runs SELECT workspace, run_id, action, actor, source_json, reasoning, payload_json, payload_hash, payload_summary, idempotency_key, request_hash, decision_status, decision_rule, decision_reason, policy_version, risk, decision_details, approval_group, approval_quorum, expires_at, approvers_json, governance_status, execution_status, execution_json, created_at, updated_at, head_seq, head_hash
                 FROM donor.runs;
             INSERT INTO events SELECT workspace, seq, kind, run_id, at, data, prev_hash, hash
                 FROM donor.events;
             INSERT INTO chain_heads SELECT * FROM donor.chain_heads;
             INSERT INTO deliveries (delivery_id, workspace, run_id, approver_id, channel,
                 attempts, next_attempt_at, token_hash, created_at) VALUES
               ('dlv_a', 'ws', 'r', 'a', 'email', 0, '2030-01-01T00:00:10.000000Z',
                'dlv_a.h', '2030-01-01T00:00:00.000000Z'),
               ('dlv_b', 'ws', 'r', 'b', 'email', 0, '2030-01-01T00:00:10.000000Z',
                'legacy-hash', '2030-01-01T00:00:00.000000Z');
             INSERT INTO approval_tokens (token_hash, workspace, run_id, approver_id, expires_at,
                 used_at)
               VALUES ('dlv_a.h', 'ws', 'r', 'a', '2030-01-01T00:16:40.000000Z',
                       '2030-01-01T00:00:15.000000Z'),
                      ('legacy-hash', 'ws', 'r', 'b', '2030-01-01T00:16:40.000000Z', NULL);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, common::log_key()).unwrap();
    let due: Vec<String> = store
        .due_deliveries(common::t(10), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.delivery_id)
        .collect();
    assert_eq!(due, ["dlv_a", "dlv_b"]);
    assert_eq!(store.deliveries_for_run("ws", "r").await.unwrap().len(), 2);
    // Spent before the upgrade: still spent, although its key now names
    // a delivery whose row has no record of it.
    assert!(matches!(
        store.consume_token("dlv_a.h", common::t(20)).await.unwrap(),
        TokenOutcome::AlreadyUsed(tok) if tok.used_at == Some(common::t(15))
    ));
    assert!(matches!(
        store
            .consume_token("legacy-hash", common::t(20))
            .await
            .unwrap(),
        TokenOutcome::Consumed(_)
    ));
    assert!(matches!(
        store
            .consume_token("legacy-hash", common::t(21))
            .await
            .unwrap(),
        TokenOutcome::AlreadyUsed(_)
    ));
    store
        .mark_deliveries_sent(&["dlv_a".to_owned(), "dlv_b".to_owned()], common::t(30))
        .await
        .unwrap();
    assert!(
        store
            .due_deliveries(common::t(40), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 8);
    // The events from before the upgrade were authenticated and given
    // their tree when the store opened.
    let report = store.audit("ws").await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.tree.size, 3);
}

/// Reading a run's deliveries (every `GET /v1/runs/{id}`) goes through an
/// index, not a scan of every delivery ever planned.
#[test]
fn a_runs_deliveries_are_read_through_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cs.db");
    drop(SqliteStore::open(&path, common::log_key()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT delivery_id FROM deliveries \
             WHERE workspace = 'ws' AND run_id = 'r' ORDER BY created_at, delivery_id",
        )
        .unwrap()
        .query_map([], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX deliveries_by_run")),
        "{plan:?}"
    );
}

/// A database from before the verifiable log (schema version 3) gets, on
/// its first open, the MACs and the tree that fresh appends would have
/// built.
#[tokio::test]
async fn an_upgraded_database_gets_the_tree_fresh_appends_build() {
    let dir = tempfile::tempdir().unwrap();
    let (path, donor_path) = (dir.path().join("old.db"), dir.path().join("donor.db"));
    let donor = SqliteStore::open(&donor_path, common::log_key()).unwrap();
    common::suite::upgrade_workload(&donor).await;
    drop(SqliteStore::open_upto(&path, common::log_key(), 3).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "ATTACH DATABASE ?1 AS donor",
            [donor_path.to_str().unwrap()],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO runs SELECT workspace, run_id, action, actor, source_json, reasoning, payload_json, payload_hash, payload_summary, idempotency_key, request_hash, decision_status, decision_rule, decision_reason, policy_version, risk, decision_details, approval_group, approval_quorum, expires_at, approvers_json, governance_status, execution_status, execution_json, created_at, updated_at, head_seq, head_hash
                 FROM donor.runs;
             INSERT INTO approvals SELECT * FROM donor.approvals;
             INSERT INTO api_keys SELECT workspace, key_id, key_hash, role, label, created_at, revoked_at
                 FROM donor.api_keys;
             INSERT INTO chain_heads SELECT * FROM donor.chain_heads;
             INSERT INTO events SELECT workspace, seq, kind, run_id, at, data, prev_hash, hash
                 FROM donor.events;",
        )
        .unwrap();
        conn.execute_batch(&common::suite::legacy_key_sql())
            .unwrap();
    }
    let upgraded = SqliteStore::open(&path, common::log_key()).unwrap();
    common::suite::upgraded_equals_fresh(&upgraded, &donor).await;
    common::suite::legacy_keys_keep_working(&upgraded).await;
}

/// The check of a key against its events at authentication reads them
/// through the key-event index, not a scan of the workspace's log (the
/// store's query names the index; this checks the index serves it).
#[test]
fn a_keys_events_are_read_through_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cs.db");
    drop(SqliteStore::open(&path, common::log_key()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT seq FROM events INDEXED BY events_by_key WHERE workspace = 'ws' \
             AND kind IN ('key_created', 'key_revoked') \
             AND json_extract(data, '$.key_id') = 'k1' ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX events_by_key")),
        "{plan:?}"
    );
}
