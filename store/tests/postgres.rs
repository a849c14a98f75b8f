//! The generic store suite against PostgreSQL: each test gets a fresh
//! schema, dropped afterwards.
//!
//! Server: `COUNTERSIGN_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`. When it is unreachable the
//! tests print `SKIPPED: ...` and pass, unless `COUNTERSIGN_REQUIRE_POSTGRES=1`,
//! which makes them fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use async_trait::async_trait;
use common::Backend;
use countersign_store::{LogKey, PostgresStore, SqliteStore, Store};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::NoTls;

fn url() -> String {
    std::env::var("COUNTERSIGN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A raw connection, outside the store.
async fn raw_client(schema: Option<&str>) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(&url(), NoTls),
    )
    .await
    .map_err(|_| "timed out".to_owned())?
    .map_err(|e| {
        // The top-level message is only "error connecting to server".
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        format!("{e}: {}", cause.unwrap_or_default())
    })?;
    tokio::spawn(connection);
    if let Some(schema) = schema {
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(client)
}

fn fresh_schema() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "cs_test_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

struct Postgres {
    store: Arc<PostgresStore>,
    schema: String,
}

impl Drop for Postgres {
    /// Drops the test's schema, even when the test failed.
    fn drop(&mut self) {
        let schema = self.schema.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(client) = raw_client(None).await {
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

#[async_trait]
impl Backend for Postgres {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store) as Arc<dyn Store>
    }

    async fn raw_execute(&self, sql: &str) -> Result<(), String> {
        let client = raw_client(Some(&self.schema)).await?;
        client.batch_execute(sql).await.map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |db| db.message().to_owned())
        })
    }

    async fn drop_append_only_triggers(&self) {
        self.raw_execute(
            "DROP TRIGGER events_append_only ON events; \
             DROP TRIGGER tree_hashes_append_only ON tree_hashes; \
             DROP TRIGGER checkpoints_append_only ON checkpoints;",
        )
        .await
        .unwrap();
    }

    fn blob_literal(&self, bytes: &[u8]) -> String {
        format!("'\\x{}'::bytea", hex::encode(bytes))
    }

    async fn reopen(&self, key: LogKey) -> Arc<dyn Store> {
        Arc::new(
            PostgresStore::connect_with_schema(&url(), &self.schema, key)
                .await
                .unwrap(),
        )
    }

    fn batches(&self) -> bool {
        false
    }
}

/// Checks the server is there; `None` (skip) or a panic when it is not.
async fn reachable() -> Option<()> {
    match raw_client(None).await {
        Ok(_) => Some(()),
        Err(e) => {
            let message = format!("PostgreSQL not reachable at {}: {e}", url());
            if std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("{message} (COUNTERSIGN_REQUIRE_POSTGRES=1)");
            }
            // Straight to stderr: the test harness captures print macros.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
            None
        }
    }
}

async fn postgres() -> Option<Postgres> {
    reachable().await?;
    let schema = fresh_schema();
    let store = PostgresStore::connect_with_schema(&url(), &schema, common::log_key())
        .await
        .unwrap();
    Some(Postgres {
        store: Arc::new(store),
        schema,
    })
}

backend_tests!(postgres;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_operations_hash_identically_on_sqlite_and_postgres() {
    let Some(pg) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(dir.path().join("cs.db"), common::log_key()).unwrap();
    let stores: [&dyn Store; 2] = [&*pg.store, &lite];
    for s in stores {
        let mut r = common::pending("ws", "r", &["a", "b"], 2, common::t(100));
        r.proposal.created_at += chrono::Duration::nanoseconds(123_456_789);
        s.create_run(r).await.unwrap();
        s.record_answer(
            "ws",
            "r",
            common::answer("a", countersign_store::AnswerDecision::Approve),
            common::t(1),
        )
        .await
        .unwrap();
        s.create_key(
            "ws",
            "k",
            "h",
            countersign_store::Role::Admin,
            None,
            common::t(2),
        )
        .await
        .unwrap();
        s.expire_due(common::t(100)).await.unwrap();
    }
    let a = pg.store.events("ws", 0, 0).await.unwrap();
    let b = lite.events("ws", 0, 0).await.unwrap();
    assert_eq!(a.len(), 6);
    assert_eq!(a, b, "both backends store and hash the same events");
}

#[tokio::test]
async fn two_stores_on_one_schema_share_the_chain() {
    // Two gate instances: appends from both interleave into one gapless chain.
    let Some(pg) = postgres().await else { return };
    let other = PostgresStore::connect_with_schema(&url(), &pg.schema, common::log_key())
        .await
        .unwrap();
    for i in 0..5 {
        let store: &dyn Store = if i % 2 == 0 { &*pg.store } else { &other };
        store
            .create_run(common::run(
                "ws",
                &format!("r{i}"),
                countersign_store::GovernanceStatus::Allowed,
            ))
            .await
            .unwrap();
    }
    assert_eq!(other.verify_chain("ws").await.unwrap().events, 10);
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    let r = PostgresStore::connect_with_schema(&url(), "x; DROP TABLE y", common::log_key()).await;
    assert!(matches!(
        r,
        Err(countersign_store::StoreError::InvalidInput { .. })
    ));
}

/// Gates sharing one database claim deliveries: a claimed delivery goes to
/// no other caller until it is recorded or its lease ends, concurrent
/// claims never overlap, and a sent delivery is never claimed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_claims_are_exclusive_until_their_lease_ends() {
    use countersign_store::NewDelivery;
    let Some(pg) = postgres().await else { return };
    let s = &pg.store;
    let lease = Duration::from_secs(60);
    let mut r = common::pending("ws", "r", &["a", "b", "c"], 1, common::t(10_000));
    r.deliveries = (0..11)
        .map(|i| NewDelivery {
            delivery_id: format!("dlv_{i:02}"),
            approver_id: ["a", "b", "c"][i % 3].into(),
            channel: "email".into(),
            token_hash: None,
            next_attempt_at: common::t(10),
        })
        .collect();
    s.create_run(r).await.unwrap();
    let ids = |v: Vec<countersign_store::Delivery>| -> Vec<String> {
        v.into_iter().map(|d| d.delivery_id).collect()
    };

    // Eight callers at once, one delivery each: eight different ones.
    let claims = (0..8).map(|_| {
        let s = Arc::clone(s);
        tokio::spawn(async move { s.claim_due_deliveries(common::t(20), 1, lease).await })
    });
    let mut seen: Vec<String> = Vec::new();
    for c in claims {
        seen.extend(ids(c.await.unwrap().unwrap()));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "{seen:?}");
    // The other three go to the next caller; then nothing is left.
    let rest = ids(s
        .claim_due_deliveries(common::t(21), 10, lease)
        .await
        .unwrap());
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert!(rest.iter().all(|id| !seen.contains(id)), "{rest:?}");
    assert!(
        s.claim_due_deliveries(common::t(22), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    // Reading what is due is not claiming: nothing is due while leased.
    assert!(
        s.due_deliveries(common::t(22), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // One is sent; when the leases end, the ten unrecorded ones are due
    // again (at least once), the sent one never.
    s.mark_delivery_sent(&seen[0], common::t(30)).await.unwrap();
    let again = ids(s
        .claim_due_deliveries(common::t(90), 20, lease)
        .await
        .unwrap());
    assert_eq!(again.len(), 10, "{again:?}");
    assert!(!again.contains(&seen[0]), "{again:?}");
}

/// A claim skips deliveries another gate is claiming at that moment
/// instead of waiting for that gate's transaction to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_skips_rows_another_claim_holds() {
    use countersign_store::NewDelivery;
    let Some(pg) = postgres().await else { return };
    let s = &pg.store;
    let mut r = common::pending("ws", "r", &["a", "b"], 1, common::t(10_000));
    r.deliveries = ["dlv_1", "dlv_2"]
        .iter()
        .map(|id| NewDelivery {
            delivery_id: (*id).into(),
            approver_id: "a".into(),
            channel: "email".into(),
            token_hash: None,
            next_attempt_at: common::t(10),
        })
        .collect();
    s.create_run(r).await.unwrap();
    // Another gate's claim, still in progress: dlv_1's row is locked.
    let mut other = raw_client(Some(&pg.schema)).await.unwrap();
    let tx = other.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM deliveries WHERE delivery_id = 'dlv_1' FOR UPDATE",
        &[],
    )
    .await
    .unwrap();
    let claimed = tokio::time::timeout(
        Duration::from_secs(10),
        s.claim_due_deliveries(common::t(20), 10, Duration::from_secs(60)),
    )
    .await
    .expect("the claim waited for the other transaction instead of skipping its row")
    .unwrap();
    let ids: Vec<String> = claimed.into_iter().map(|d| d.delivery_id).collect();
    assert_eq!(ids, ["dlv_2"]);
    tx.rollback().await.unwrap();
    // Released, dlv_1 is the next caller's.
    let next = s
        .claim_due_deliveries(common::t(21), 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].delivery_id, "dlv_1");
}

/// A schema from before the verifiable log (version 3) gets, on the first
/// connection, the MACs and the tree that fresh appends would have built.
#[tokio::test]
async fn an_upgraded_schema_gets_the_tree_fresh_appends_build() {
    let Some(donor) = postgres().await else {
        return;
    };
    common::suite::upgrade_workload(&*donor.store).await;
    let Some(old) = postgres_upto(3).await else {
        return;
    };
    old.raw_execute(&format!(
        "INSERT INTO runs SELECT workspace, run_id, action, actor, source_json, reasoning, payload_json, payload_hash, payload_summary, idempotency_key, request_hash, decision_status, decision_rule, decision_reason, policy_version, risk, decision_details, approval_group, approval_quorum, expires_at, approvers_json, governance_status, execution_status, execution_json, created_at, updated_at, head_seq, head_hash
                 FROM {d}.runs;
         INSERT INTO approvals SELECT * FROM {d}.approvals;
         INSERT INTO api_keys SELECT workspace, key_id, key_hash, role, label, created_at, revoked_at
             FROM {d}.api_keys;
         INSERT INTO chain_heads SELECT * FROM {d}.chain_heads;
         INSERT INTO events SELECT workspace, seq, kind, run_id, at, data, prev_hash, hash
             FROM {d}.events;",
        d = donor.schema
    ))
    .await
    .unwrap();
    old.raw_execute(&common::suite::legacy_key_sql())
        .await
        .unwrap();
    let upgraded = PostgresStore::connect_with_schema(&url(), &old.schema, common::log_key())
        .await
        .unwrap();
    common::suite::upgraded_equals_fresh(&upgraded, &*donor.store).await;
    common::suite::legacy_keys_keep_working(&upgraded).await;
}

/// A store on a fresh schema migrated only up to `upto`.
async fn postgres_upto(upto: i64) -> Option<Postgres> {
    reachable().await?;
    let schema = fresh_schema();
    let options = countersign_store::PostgresOptions {
        schema: Some(schema.clone()),
        pool_size: None,
    };
    let store = PostgresStore::connect_upto(&url(), options, common::log_key(), upto)
        .await
        .unwrap();
    Some(Postgres {
        store: Arc::new(store),
        schema,
    })
}
