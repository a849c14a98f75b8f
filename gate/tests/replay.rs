//! `countersign replay` over histories a real gate recorded: runs decided
//! by an older policy version, replayed with a new one, on SQLite and on
//! PostgreSQL, with known transitions (decision changes, an
//! approval-requirement-only change, a removed action, a condition that
//! now fails), deterministic output and the exit codes CI gates on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, StoreUrl, WorkspaceConfig};
use countersign_gate::server;
use countersign_store::{Role, Store};
use serde_json::{Value, json};

const OLD: &str = r#"version: 1
approvers:
  leads:
    members: [{ id: alice }, { id: bob }]
  cfo-office:
    members: [{ id: carol }, { id: dave }, { id: erin }]
actions:
  refund:
    approvers: leads
    rules:
      - name: large-refund
        when: payload.amount > 1000
        decision: require_approval
      - name: default
        decision: allow
  wire:
    approvers: leads
    rules:
      - name: wires-need-a-lead
        decision: require_approval
  export:
    rules:
      - name: ok
        decision: allow
  ping:
    rules:
      - name: ok
        decision: allow
"#;

/// The change under review: a lower refund threshold, wires go to the CFO
/// office with quorum 2, `export` is gone, and `ping` gains a rule whose
/// condition fails on the payloads agents really send.
const NEW: &str = r#"version: 1
approvers:
  leads:
    members: [{ id: alice }, { id: bob }]
  cfo-office:
    members: [{ id: carol }, { id: dave }, { id: erin }]
actions:
  refund:
    approvers: leads
    rules:
      - name: large-refund
        when: payload.amount > 500
        decision: require_approval
      - name: default
        decision: allow
  wire:
    approvers: cfo-office
    rules:
      - name: wires-need-the-cfo-office
        decision: require_approval
        quorum: 2
  ping:
    rules:
      - name: eu-only
        when: payload.region == "eu"
        decision: block
      - name: ok
        decision: allow
"#;

/// The same meaning as OLD, reformatted.
const OLD_REFORMATTED: &str = r#"# reformatted
version: 1
actions:
  ping: { rules: [ { name: ok, decision: allow } ] }
  export: { rules: [ { name: ok, decision: allow } ] }
  wire:
    approvers: leads
    rules: [ { name: wires-need-a-lead, decision: require_approval } ]
  refund:
    approvers: leads
    rules:
      - { name: large-refund, when: "payload.amount > 1000.00", decision: require_approval }
      - { name: default, decision: allow }
approvers:
  cfo-office: { members: [ { id: carol }, { id: dave }, { id: erin } ] }
  leads: { members: [ { id: alice }, { id: bob } ] }
"#;

fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 26, 9, 0, 0).unwrap()
}

/// The requests the agents sent, one minute apart.
fn traffic() -> Vec<Value> {
    vec![
        json!({"action": "refund", "payload": {"amount": 100}, "actor": "agent-1"}),
        json!({"action": "refund", "payload": {"amount": 600}, "actor": "agent-1"}),
        json!({"action": "refund", "payload": {"amount": 700}, "actor": "agent-2"}),
        json!({"action": "refund", "payload": {"amount": 2000}, "actor": "agent-2"}),
        json!({"action": "wire", "payload": {"amount": 5}, "actor": "agent-1"}),
        json!({"action": "wire", "payload": {"amount": 6}, "actor": "agent-1"}),
        json!({"action": "export", "payload": {"rows": 10}, "actor": "agent-3"}),
        json!({"action": "ping", "payload": {}, "actor": "agent-3"}),
        json!({"action": "undeclared_thing", "payload": {}, "actor": "agent-3"}),
    ]
}

/// Sends the traffic through the gate's HTTP API and returns the run ids.
async fn record(gate: &support::Gate) -> Vec<String> {
    let key = gate.key(Role::Agent).await;
    let mut ids = Vec::new();
    for (i, body) in traffic().into_iter().enumerate() {
        gate.clock
            .set(start_time() + chrono::Duration::minutes(i64::try_from(i).unwrap()));
        let (status, run) = gate.post_json("/v1/intercept", Some(&key), &body).await;
        assert_eq!(status, 201, "{run}");
        ids.push(run["run_id"].as_str().unwrap().to_owned());
    }
    ids
}

fn policies(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("policy.yaml"), text).unwrap();
    p
}

fn replay(store: &str, policies: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .arg("replay")
        .arg("--store")
        .arg(store)
        .arg("--policies")
        .arg(policies)
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// Every assertion about the replay of the recorded traffic, the same for
/// both backends.
fn check_history(store: &str, ids: &[String], dir: &Path) {
    let new = policies(dir, "new", NEW);
    let out = replay(store, &new, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["runs_replayed"], 9, "{v:#}");
    assert_eq!(v["runs_changed"], 6, "{v:#}");
    assert_eq!(v["workspace"], "default");
    assert!(v["high_water_mark"].as_u64().unwrap() >= 9 * 2);
    // Every run was decided by one older version.
    let decided_by = v["decided_by"].as_object().unwrap();
    assert_eq!(decided_by.len(), 1);
    assert_ne!(
        decided_by.keys().next().unwrap(),
        v["policy_version"].as_str().unwrap()
    );

    let transitions = v["transitions"].as_array().unwrap();
    assert_eq!(transitions.len(), 3, "{v:#}");
    assert_eq!(
        transitions[0],
        json!({"from": "allow", "to": "require_approval", "rule": "large-refund", "cause": "rule",
               "runs": 2, "sample": [ids[1], ids[2]]})
    );
    // Ties are broken by their key: allow → block (error) before (undeclared).
    assert_eq!(
        transitions[1],
        json!({"from": "allow", "to": "block", "rule": "eu-only", "cause": "error",
               "runs": 1, "sample": [ids[7]]})
    );
    assert_eq!(
        transitions[2],
        json!({"from": "allow", "to": "block", "rule": null, "cause": "undeclared",
               "runs": 1, "sample": [ids[6]]})
    );
    assert_eq!(
        v["approval_changes"],
        json!([{"from": {"group": "leads", "quorum": 1}, "to": {"group": "cfo-office", "quorum": 2},
                "rule": "wires-need-the-cfo-office", "runs": 2, "sample": [ids[4], ids[5]]}])
    );
    let errors = v["new_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["rule"], "eu-only");
    assert_eq!(errors[0]["action"], "ping");
    assert_eq!(errors[0]["sample"], json!([ids[7]]));
    assert!(
        errors[0]["message"].as_str().unwrap().contains("region"),
        "{v:#}"
    );
    assert_eq!(
        v["removed_actions"],
        json!([{"action": "export", "runs": 1, "sample": [ids[6]]}])
    );

    // Deterministic: byte-identical, in every format.
    for format in ["json", "text", "markdown"] {
        let a = replay(store, &new, &["--format", format]);
        let b = replay(store, &new, &["--format", format]);
        assert_eq!(a.stdout, b.stdout, "{format}");
        assert_eq!(a.status.code(), Some(1));
    }
    let text = String::from_utf8(replay(store, &new, &[]).stdout).unwrap();
    assert!(
        text.contains("6 runs would be decided differently"),
        "{text}"
    );
    assert!(
        text.contains("allow → require_approval: 2 runs, rule large-refund"),
        "{text}"
    );
    assert!(
        text.contains(
            "require_approval (leads, quorum 1) → require_approval (cfo-office, quorum 2): 2 runs, rule wires-need-the-cfo-office"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("e.g. {}, {}", ids[1], ids[2])),
        "{text}"
    );
    let md = String::from_utf8(replay(store, &new, &["--format", "markdown"]).stdout).unwrap();
    assert!(
        md.starts_with("### Countersign replay: 6 of 9 runs would change"),
        "{md}"
    );
    assert!(
        md.contains("| allow | require_approval | rule large-refund | 2 |"),
        "{md}"
    );
    assert!(
        md.contains("#### Actions no longer declared (now blocked)"),
        "{md}"
    );

    // The policies that decided, even reformatted: nothing changes, exit 0.
    let same = policies(dir, "same", OLD_REFORMATTED);
    let out = replay(store, &same, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json_of(&out);
    assert_eq!(
        (v["runs_replayed"].as_u64(), v["runs_changed"].as_u64()),
        (Some(9), Some(0))
    );
    let out = replay(store, &same, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no run would be decided differently"));

    // Filters: one action; a time window (runs 1 and 2 are minutes 1 and 2).
    let v = json_of(&replay(
        store,
        &new,
        &["--format", "json", "--action", "wire"],
    ));
    assert_eq!(
        (v["runs_replayed"].as_u64(), v["runs_changed"].as_u64()),
        (Some(2), Some(2))
    );
    let v = json_of(&replay(
        store,
        &new,
        &[
            "--format",
            "json",
            "--from",
            "2026-05-26T09:01:00Z",
            "--to",
            "2026-05-26T09:03:00Z",
        ],
    ));
    assert_eq!(v["runs_replayed"], 2);
    assert_eq!(v["transitions"][0]["sample"], json!([ids[1], ids[2]]));
    // --since counts back from now: the 2026 history is all inside 100000d.
    let v = json_of(&replay(
        store,
        &new,
        &["--format", "json", "--since", "100000d"],
    ));
    assert_eq!(v["runs_replayed"], 9);
    // Another workspace has no history.
    let v = json_of(&replay(
        store,
        &new,
        &["--format", "json", "--workspace", "other"],
    ));
    assert_eq!(v["runs_replayed"], 0);
    assert_eq!(v["high_water_mark"], 0);

    // Bad input: exit 2.
    let broken = policies(
        dir,
        "broken",
        "version: 1\nactions:\n  a:\n    rules:\n      - name: r\n        decision: alow\n",
    );
    assert_eq!(replay(store, &broken, &[]).status.code(), Some(2));
    assert_eq!(
        replay(store, &new, &["--from", "yesterday"]).status.code(),
        Some(2)
    );
    assert_eq!(
        replay(
            store,
            &new,
            &[
                "--from",
                "2026-05-27T00:00:00Z",
                "--to",
                "2026-05-26T00:00:00Z"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        replay(store, &new, &["--since", "soon"]).status.code(),
        Some(2)
    );
}

fn file_state(path: &Path) -> Vec<(String, Option<(u64, std::time::SystemTime)>)> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            let meta = std::fs::metadata(&p).ok();
            (
                suffix.to_string(),
                meta.map(|m| (m.len(), m.modified().unwrap())),
            )
        })
        .collect()
}

#[tokio::test]
async fn replay_over_a_sqlite_history() {
    let gate = support::start_without_worker(OLD, |_, _| {}).await;
    let ids = record(&gate).await;
    let db = gate.dir.path().join("data/countersign.db");
    let store = format!("sqlite://{}", db.display());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let ids2 = ids.clone();
    let store2 = store.clone();
    tokio::task::spawn_blocking(move || check_history(&store2, &ids2, &d))
        .await
        .unwrap();
    // The gate still writes while replay has read (no lock held).
    let key = gate.key(Role::Agent).await;
    let (status, _) = gate
        .post_json(
            "/v1/intercept",
            Some(&key),
            &json!({"action": "ping", "payload": {}}),
        )
        .await;
    assert_eq!(status, 201);
    // A plain file path works too; a missing file is bad input, never created.
    let new = policies(dir.path(), "new2", NEW);
    let out = replay(&db.display().to_string(), &new, &["--format", "json"]);
    assert_eq!(json_of(&out)["runs_replayed"], 10);
    let missing = dir.path().join("nope.db");
    let out = replay(&missing.display().to_string(), &new, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no SQLite store"));
    assert!(!missing.exists());
}

/// A snapshot made with `VACUUM INTO` (what the README tells CI to use)
/// replays the same as the live file, and replay leaves it byte for byte
/// as it was, creating no journal beside it.
#[tokio::test]
async fn replay_over_a_vacuum_into_snapshot_matches_the_live_store() {
    let gate = support::start_without_worker(OLD, |_, _| {}).await;
    record(&gate).await;
    let db = gate.dir.path().join("data/countersign.db");
    let snap = gate.dir.path().join("snapshot.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("VACUUM INTO ?1", [snap.display().to_string()])
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let new = policies(dir.path(), "new", NEW);
    let before = file_state(&snap);
    let bytes = std::fs::read(&snap).unwrap();
    let live = replay(&db.display().to_string(), &new, &["--format", "json"]);
    let copy = replay(&snap.display().to_string(), &new, &["--format", "json"]);
    let (mut a, mut b) = (json_of(&live), json_of(&copy));
    a["store"] = Value::Null;
    b["store"] = Value::Null;
    assert_eq!(a, b);
    assert_eq!(a["runs_changed"], 6);
    assert_eq!(file_state(&snap), before);
    assert_eq!(std::fs::read(&snap).unwrap(), bytes);
    assert!(
        before.iter().skip(1).all(|(_, m)| m.is_none()),
        "{before:?}"
    );
}

fn pg_url() -> String {
    std::env::var("COUNTERSIGN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test]
async fn replay_over_a_postgres_history() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("cs_replay_{}_{nanos}", std::process::id());
    let store: Arc<dyn Store> = match countersign_store::PostgresStore::connect_with_schema(
        &pg_url(),
        &schema,
        countersign_store::LogKey::from_bytes([7; 32]),
    )
    .await
    {
        Ok(s) => Arc::new(s),
        Err(e) => {
            assert!(
                std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL is required but not reachable at {}: {e}",
                pg_url()
            );
            eprintln!("SKIPPED: PostgreSQL not reachable at {}: {e}", pg_url());
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let p = policies(dir.path(), "old", OLD);
    let mut config = Config::defaults();
    config.data_dir = dir.path().join("data");
    config.store = StoreUrl::Postgres(pg_url());
    config.workspaces = vec![WorkspaceConfig::new("default", p)];
    config.policy_poll_interval = Duration::from_secs(3600);
    config.console = false;
    let clock = Arc::new(ManualClock::new(start_time()));
    let state = server::build_state_with_store(config, store, clock.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = countersign_gate::app(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let gate = support::Gate {
        base,
        http: reqwest::Client::new(),
        state,
        clock,
        dir: tempfile::tempdir().unwrap(),
    };
    let ids = record(&gate).await;
    let sep = if pg_url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20search_path%3D{schema}", pg_url());
    let d = dir.path().to_owned();
    let url2 = url.clone();
    tokio::task::spawn_blocking(move || check_history(&url2, &ids, &d))
        .await
        .unwrap();
    // The store's password never shows; the report names the store.
    let new = policies(dir.path(), "new3", NEW);
    let v = json_of(&replay(&url, &new, &["--format", "json"]));
    assert!(v["store"].as_str().unwrap().starts_with("postgres"));
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
