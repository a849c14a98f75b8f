//! Limits over time, end to end: policies whose conditions count and sum
//! past runs (`count(…)`, `sum(…)`), decided by a real gate on a real store.
//!
//! - Many concurrent intercepts never exceed a limit of N, on SQLite (one
//!   gate, group commit) and on PostgreSQL (two gates sharing a database).
//! - The values read are recorded with each decision.
//! - A reload that introduces an aggregate builds its index from history
//!   before deciding, and `audit` recomputes the index and finds tampering.
//! - Property: the recorded values equal those of the reference model that
//!   scans the whole history (`AggregateSpec::scan`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use countersign_gate::AppState;
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, StoreUrl, WorkspaceConfig};
use countersign_store::Role;
use serde_json::{Value, json};

const LIMIT_POLICY: &str = r#"version: 1
actions:
  issue_refund:
    default: allow
    rules:
      - name: three_per_customer
        when: >-
          count(within: "24h", where: run.payload.customer == payload.customer) >= 3
        decision: block
      - name: budget
        when: >-
          sum(run.payload.amount, within: "24h") + payload.amount > 100
        decision: block
"#;

/// Intercepts `n` refunds at once through `gates` (round robin) and
/// returns the statuses the gates answered.
async fn burst(gates: &[(&AppState, &str)], n: usize, customer: &str, amount: &str) -> Vec<String> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (state, _) = gates[i % gates.len()];
        let state = state.clone();
        let customer = customer.to_owned();
        let amount = amount.to_owned();
        tasks.push(tokio::spawn(async move {
            let ws = state.workspaces.get("default").unwrap().clone();
            let payload = countersign_engine::parse_json(
                format!(r#"{{"customer": "{customer}", "amount": {amount}}}"#).as_bytes(),
            )
            .unwrap();
            let proposal = countersign_gate::intercept::ProposedAction {
                action: "issue_refund".to_owned(),
                payload,
                idempotency_key: None,
                actor: Some("agent".to_owned()),
                actor_bound: false,
                reasoning: None,
                source: None,
                context: None,
            };
            let done = countersign_gate::intercept::intercept(&state, &ws, &proposal)
                .await
                .unwrap();
            done.run.proposal.decision.governance_status.to_string()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn allowed(statuses: &[String]) -> usize {
    statuses.iter().filter(|s| *s == "allowed").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_of_three_holds_under_concurrent_intercepts_on_sqlite() {
    let gate = support::start(LIMIT_POLICY, |_, _| {}).await;
    let statuses = burst(&[(&gate.state, "default")], 40, "c1", "1").await;
    assert_eq!(allowed(&statuses), 3, "{statuses:?}");
    assert_eq!(statuses.len(), 40);
    // Another customer has its own count.
    let other = burst(&[(&gate.state, "default")], 10, "c2", "1").await;
    assert_eq!(allowed(&other), 3, "{other:?}");
    // The budget: 6 spent, so at most 94 more; 20 concurrent refunds of 10
    // for fresh customers let exactly 9 through.
    let mut all = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let state = gate.state.clone();
        tasks.push(tokio::spawn(async move {
            burst(&[(&state, "default")], 1, &format!("b{i}"), "10").await
        }));
    }
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(allowed(&all), 9, "{all:?}");
    // The values read are recorded with each decision.
    let page = gate
        .state
        .store
        .list_runs("default", countersign_store::RunFilter::default())
        .await
        .unwrap();
    let run = &page.runs[0];
    let recorded = &run.proposal.decision.details["aggregates"];
    assert!(recorded.is_object(), "{recorded}");
    assert_eq!(recorded.as_object().unwrap().len(), 2, "{recorded}");
    let audit = gate.state.store.audit("default").await.unwrap();
    assert!(audit.is_ok(), "{:?}", audit.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_builds_a_new_aggregate_from_history_and_audit_checks_it() {
    let plain = "version: 1\nactions:\n  issue_refund:\n    default: allow\n";
    let gate = support::start(plain, |_, _| {}).await;
    let admin = gate.key(Role::Admin).await;
    let agent = gate.key(Role::Agent).await;
    for _ in 0..4 {
        let (s, r) = gate
            .post_json(
                "/v1/intercept",
                Some(&agent),
                &json!({"action": "issue_refund", "payload": {"customer": "c1", "amount": 1}}),
            )
            .await;
        assert_eq!((s, r["governance_status"].as_str()), (201, Some("allowed")));
    }
    std::fs::write(gate.dir.path().join("policies/policy.yaml"), LIMIT_POLICY).unwrap();
    let (s, r) = gate
        .post_json("/v1/policies/reload", Some(&admin), &json!({}))
        .await;
    assert_eq!(s, 200, "{r}");
    // Four refunds of c1 before the policy existed: the fifth is over.
    let (s, r) = gate
        .post_json(
            "/v1/intercept",
            Some(&agent),
            &json!({"action": "issue_refund", "payload": {"customer": "c1", "amount": 1}}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(r["governance_status"], "blocked", "{r}");
    assert_eq!(r["rule"], "three_per_customer", "{r}");
    let audit = gate.state.store.audit("default").await.unwrap();
    assert!(audit.is_ok(), "{:?}", audit.problems);
    // Removing an entry behind the store's back is found.
    let db = rusqlite::Connection::open(gate.dir.path().join("data/countersign.db")).unwrap();
    let removed = db
        .execute(
            "DELETE FROM aggregate_entries WHERE rowid IN (SELECT rowid FROM aggregate_entries LIMIT 1)",
            [],
        )
        .unwrap_or_else(|_| {
            db.execute(
                "DELETE FROM aggregate_entries WHERE run_id = (SELECT run_id FROM aggregate_entries LIMIT 1)",
                [],
            )
            .unwrap()
        });
    assert!(removed >= 1);
    let audit = gate.state.store.audit("default").await.unwrap();
    assert!(
        audit
            .problems
            .iter()
            .any(|p| p.column.as_deref() == Some("aggregate_entries")),
        "{:?}",
        audit.problems
    );
}

fn pg_url() -> String {
    std::env::var("COUNTERSIGN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_holds_across_two_gates_on_postgres() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("limits_{}_{nanos}", std::process::id());
    let made = tokio::time::timeout(
        Duration::from_secs(10),
        countersign_store::PostgresStore::connect_with_schema(
            &pg_url(),
            &schema,
            countersign_store::LogKey::from_bytes([7; 32]),
        ),
    )
    .await;
    if !matches!(made, Ok(Ok(_))) {
        assert!(
            std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "PostgreSQL at {} is required",
            pg_url()
        );
        eprintln!("SKIPPED: PostgreSQL at {} is unreachable", pg_url());
        return;
    }
    let sep = if pg_url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20search_path%3D{schema}", pg_url());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policies");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("policy.yaml"), LIMIT_POLICY).unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 26, 9, 0, 0).unwrap(),
    ));
    let mut gates = Vec::new();
    for _ in 0..2 {
        let mut config = Config::defaults();
        config.public_url = "http://127.0.0.1:1".to_owned();
        config.data_dir = dir.path().join("data");
        config.store = StoreUrl::Postgres(url.clone());
        config.workspaces = vec![WorkspaceConfig::new("default", p.clone())];
        config.policy_poll_interval = Duration::from_secs(3600);
        config.console = false;
        config.audit.push_checkpoints = false;
        gates.push(
            countersign_gate::server::build_state(config, clock.clone())
                .await
                .unwrap(),
        );
    }
    let both = [(&gates[0], "a"), (&gates[1], "b")];
    let statuses = burst(&both, 40, "c1", "1").await;
    assert_eq!(allowed(&statuses), 3, "{statuses:?}");
    let budget = burst(&both, 30, "fresh", "0").await;
    // Customer `fresh`: three more allowed (amount 0 keeps the budget).
    assert_eq!(allowed(&budget), 3, "{budget:?}");
    let audit = gates[0].store.audit("default").await.unwrap();
    assert!(audit.is_ok(), "{:?}", audit.problems);
    drop(gates);
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
    let _: Value = json!(null);
}

const MODEL_POLICY: &str = r#"version: 1
actions:
  issue_refund:
    default: allow
    rules:
      - name: twice_in_six_hours
        when: >-
          count(within: "6h", where: run.payload.customer == payload.customer) >= 2
        decision: block
      - name: budget
        when: >-
          sum(run.payload.amount, within: "3h", status: ["allowed"]) + payload.amount > 150
        decision: block
"#;

/// One step of a property case: wait, then propose a refund.
#[derive(Debug, Clone)]
struct Step {
    wait_secs: i64,
    customer: u8,
    cents: u32,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    (
        prop_oneof![Just(0_i64), 1_i64..4_000, Just(10_800), Just(21_600)],
        0_u8..3,
        1_u32..9_000,
    )
        .prop_map(|(wait_secs, customer, cents)| Step {
            wait_secs,
            customer,
            cents,
        })
}

/// Runs the steps through a gate and checks each decision's recorded
/// aggregate values against the reference model scanning the history.
async fn check_against_model(steps: Vec<Step>) {
    let gate = support::start(MODEL_POLICY, |_, _| {}).await;
    let ws = gate.state.workspaces.get("default").unwrap().clone();
    let policies = ws.policies();
    let specs = policies.aggregates("issue_refund");
    assert_eq!(specs.len(), 2);
    let mut history: Vec<countersign_engine::PastRun> = Vec::new();
    for s in steps {
        gate.clock.advance(chrono::Duration::seconds(s.wait_secs));
        let now = gate.state.clock.now();
        let text = format!(
            r#"{{"customer": "c{}", "amount": {}.{:02}}}"#,
            s.customer,
            s.cents / 100,
            s.cents % 100
        );
        let payload = countersign_engine::parse_json(text.as_bytes()).unwrap();
        let proposal = countersign_gate::intercept::ProposedAction {
            action: "issue_refund".to_owned(),
            payload: payload.clone(),
            idempotency_key: None,
            actor: None,
            actor_bound: false,
            reasoning: None,
            source: None,
            context: None,
        };
        let done = countersign_gate::intercept::intercept(&gate.state, &ws, &proposal)
            .await
            .unwrap();
        let recorded = &done.run.proposal.decision.details["aggregates"];
        let null = countersign_engine::Value::Null;
        let now_value = countersign_engine::Value::Timestamp(now);
        let bindings = countersign_engine::Bindings {
            actor: &null,
            payload: &payload,
            source: &null,
            context: &null,
            now: &now_value,
        };
        for spec in &specs {
            let want = spec.scan(&bindings, now, &history).unwrap();
            let got = countersign_engine::parse_json(recorded[spec.key()].to_string().as_bytes())
                .unwrap();
            assert_eq!(got, want, "{} at {now}: {recorded}", spec.key());
        }
        let status = done.run.proposal.decision.governance_status.to_string();
        let state = countersign_engine::RunStatus::from_name(&status).unwrap();
        history.push(countersign_engine::PastRun {
            action: "issue_refund".to_owned(),
            actor: null.clone(),
            payload,
            source: null.clone(),
            created_at: now,
            statuses: vec![state],
        });
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// The gate's values (from the store's index, inside the deciding
    /// transaction) equal the reference model's (a scan of the history).
    #[test]
    fn recorded_values_equal_a_scan_of_the_history(steps in proptest::collection::vec(step(), 1..30)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(check_against_model(steps));
    }
}
