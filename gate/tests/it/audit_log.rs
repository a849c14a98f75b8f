//! The verifiable audit log through the gate: signed checkpoints, proofs,
//! receipts that carry their proof, the witness, and the database writer's
//! forged approval refused (SQLite and PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::Utc;
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, StoreUrl, WorkspaceConfig};
use countersign_gate::{keys, server};
use countersign_store::{Role, Store};
use serde_json::{Value, json};

use crate::support::api::{Gate, Key, POLICY, error_code};

/// Where the gate's database is, for editing it behind the gate's back.
enum Db {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Db {
    async fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Db::Postgres { url, schema } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("SET search_path TO {schema}; {sql}"))
                    .await
                    .unwrap();
            }
        }
    }

    async fn drop_schema(&self) {
        if let Db::Postgres { schema, .. } = self {
            self.execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
        }
    }
}

fn fast_checkpoints(config: &mut Config) {
    config.audit.checkpoint_interval = Duration::from_millis(100);
}

/// A gate on SQLite, or on PostgreSQL (`None` when it is not reachable and
/// not required).
async fn start(postgres: bool) -> Option<(Gate, Db)> {
    if !postgres {
        let gate = Gate::start(&["default"], fast_checkpoints).await;
        let db = Db::Sqlite(gate.dir.path().join("data/countersign.db"));
        return Some((gate, db));
    }
    let url = std::env::var("COUNTERSIGN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut b = [0u8; 8];
    keys::random_bytes(&mut b).unwrap();
    let schema = format!("cs_audit_{}", hex::encode(b));
    let store: Arc<dyn Store> = match countersign_store::PostgresStore::connect_with_schema(
        &url,
        &schema,
        countersign_store::LogKey::from_bytes([9; 32]),
    )
    .await
    {
        Ok(s) => Arc::new(s),
        Err(e) => {
            assert!(
                std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL is required but not reachable at {url}: {e}"
            );
            eprintln!("SKIPPED: PostgreSQL not reachable at {url}: {e}");
            return None;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policies");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("finance.yaml"), POLICY).unwrap();
    let mut config = Config::defaults();
    config.data_dir = dir.path().join("data");
    config.store = StoreUrl::Postgres(url.clone());
    config.workspaces = vec![WorkspaceConfig::new("default", p)];
    fast_checkpoints(&mut config);
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let state = server::build_state_with_store(config, store, clock.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server::serve_on(listener, state.clone()));
    let gate = Gate {
        base,
        http: reqwest::Client::new(),
        state,
        clock,
        dir,
    };
    Some((gate, Db::Postgres { url, schema }))
}

async fn pending_run(gate: &Gate, agent: &Key) -> String {
    let (s, run) = gate
        .intercept(
            agent,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 900}}),
        )
        .await;
    assert_eq!(
        (s, run["governance_status"].as_str()),
        (201, Some("pending_approval")),
        "{run}"
    );
    run["run_id"].as_str().unwrap().to_owned()
}

async fn allowed_run(gate: &Gate, agent: &Key) -> String {
    let (s, run) = gate
        .intercept(
            agent,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 10}}),
        )
        .await;
    assert_eq!(s, 201, "{run}");
    run["run_id"].as_str().unwrap().to_owned()
}

async fn forged_approval_is_refused(postgres: bool) {
    let Some((gate, db)) = start(postgres).await else {
        return;
    };
    let agent = gate.key("default", Role::Agent).await;
    let id = pending_run(&gate, &agent).await;
    db.execute(&format!(
        "UPDATE runs SET governance_status = 'approved', execution_status = 'awaiting_execution' \
         WHERE workspace = 'default' AND run_id = '{id}'; \
         INSERT INTO approvals (workspace, run_id, answer_no, approver_id, decision, channel, \
         answered_at, counted) VALUES ('default', '{id}', 0, 'alice', 'approve', 'email', \
         '2026-05-23T13:32:00.000000Z', TRUE);"
    ))
    .await;
    let (s, v) = gate
        .post(
            &format!("/v1/runs/{id}/executed"),
            &agent,
            json!({"execution_result": "sent"}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (500, "audit_mismatch"), "{v}");
    let (s, v) = gate.get(&format!("/v1/runs/{id}/receipt"), &agent).await;
    assert_eq!((s, error_code(&v)), (500, "audit_mismatch"), "{v}");
    // An untouched run still gets its receipt.
    let other = allowed_run(&gate, &agent).await;
    let (s, v) = gate.get(&format!("/v1/runs/{other}/receipt"), &agent).await;
    assert_eq!(s, 200, "{v}");
    db.drop_schema().await;
}

#[tokio::test]
async fn a_forged_approval_gets_no_execution_report_and_no_receipt_sqlite() {
    forged_approval_is_refused(false).await;
}

#[tokio::test]
async fn a_forged_approval_gets_no_execution_report_and_no_receipt_postgres() {
    forged_approval_is_refused(true).await;
}

async fn checkpoint_text(gate: &Gate, key: Option<&Key>) -> (u16, String) {
    let path = if key.is_some() {
        "/v1/audit/checkpoint"
    } else {
        "/v1/audit/default/checkpoint"
    };
    let (s, v) = gate.send(reqwest::Method::GET, path, key, None).await;
    (
        s,
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string()),
    )
}

/// Waits until the background signer has a checkpoint of at least `size`.
async fn wait_checkpoint(gate: &Gate, size: u64) -> String {
    for _ in 0..100 {
        if let Some(c) = gate.state.store.latest_checkpoint("default").await.unwrap() {
            if c.size >= size {
                return c.note;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint of size {size} was signed");
}

fn hex_hashes(v: &Value) -> Vec<String> {
    v["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex::encode(B64.decode(h.as_str().unwrap()).unwrap()))
        .collect()
}

/// Runs store/tests/tlog_interop.py, the independent Python verifier.
fn independent_verifier(data: &Value, dir: &Path) {
    let file = dir.join("gate-tlog.json");
    std::fs::write(&file, data.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/tests/tlog_interop.py");
    assert!(
        crate::support::python_package("cryptography", "cryptography"),
        "the Python `cryptography` package is needed for the independent verifier"
    );
    let out = Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" 0 failures"),
        "independent verifier failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn checkpoints_and_proofs_verify_independently(postgres: bool) {
    let Some((gate, db)) = start(postgres).await else {
        return;
    };
    let agent = gate.key("default", Role::Agent).await;
    for _ in 0..3 {
        allowed_run(&gate, &agent).await;
    }
    let head = gate.state.store.tree_head("default").await.unwrap();
    let note = wait_checkpoint(&gate, head.size).await;
    // Served exactly as signed, with and without a key.
    let (s, served) = checkpoint_text(&gate, Some(&agent)).await;
    assert_eq!(s, 200);
    let (s, public) = checkpoint_text(&gate, None).await;
    assert_eq!((s, &public), (200, &served));
    assert!(served.starts_with("127.0.0.1:8080/default\n"), "{served}");
    let _ = note;
    let (s, keys_doc) = gate
        .send(reqwest::Method::GET, "/v1/receipt-keys", None, None)
        .await;
    assert_eq!(s, 200);
    let verifier = keys_doc["note_verifier"].as_str().unwrap().to_owned();
    assert!(verifier.starts_with("127.0.0.1:8080+"), "{verifier}");
    let size: u64 = served.lines().nth(1).unwrap().parse().unwrap();
    let events = gate.state.store.events("default", 0, 1000).await.unwrap();
    let leaves: Vec<String> = events
        .iter()
        .take(usize::try_from(size).unwrap())
        .map(|e| hex::encode(countersign_store::event_leaf_data(e)))
        .collect();
    let mut inclusion = Vec::new();
    for index in 0..size {
        let (s, v) = gate
            .get(
                &format!("/v1/audit/proofs/inclusion?index={index}&size={size}"),
                &agent,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        inclusion.push(json!({"index": index, "size": size, "proof": hex_hashes(&v)}));
    }
    let mut consistency = Vec::new();
    for old in 0..=size {
        let (s, v) = gate
            .send(
                reqwest::Method::GET,
                &format!("/v1/audit/default/proofs/consistency?from={old}&to={size}"),
                None,
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        consistency.push(json!({"old": old, "new": size, "proof": hex_hashes(&v)}));
    }
    let root_line = served.lines().nth(2).unwrap();
    let root_hex = hex::encode(B64.decode(root_line).unwrap());
    let data = json!({
        "trees": [{
            "leaves": leaves,
            "roots": { size.to_string(): root_hex },
            "inclusion": inclusion,
            "consistency": consistency,
        }],
        "checkpoints": [{
            "note": served, "verifier_key": verifier,
            "origin": "127.0.0.1:8080/default", "size": size, "extensions": [], "tree": 0,
        }],
        "bad_checkpoints": [{
            "note": served.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1),
            "verifier_key": verifier, "why": "a changed size",
        }],
    });
    independent_verifier(&data, gate.dir.path());
    // Bad ranges: 422 with the error shape; an unknown workspace: 404.
    for path in [
        format!("/v1/audit/proofs/inclusion?index={size}&size={size}"),
        format!("/v1/audit/proofs/inclusion?index=0&size={}", size + 100),
        format!("/v1/audit/proofs/consistency?from={}&to=1", size),
    ] {
        let (s, v) = gate.get(&path, &agent).await;
        assert_eq!((s, error_code(&v)), (422, "tree_range"), "{path}: {v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    let (s, _) = gate
        .send(
            reqwest::Method::GET,
            "/v1/audit/nowhere/checkpoint",
            None,
            None,
        )
        .await;
    assert_eq!(s, 404);
    db.drop_schema().await;
}

#[tokio::test]
async fn checkpoints_and_proofs_verify_independently_sqlite() {
    checkpoints_and_proofs_verify_independently(false).await;
}

#[tokio::test]
async fn checkpoints_and_proofs_verify_independently_postgres() {
    checkpoints_and_proofs_verify_independently(true).await;
}

fn countersign(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

// The CLI runs as a blocking child process: the gate needs other threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_carry_their_proof_and_verify_against_a_kept_checkpoint() {
    let (gate, _db) = start(false).await.unwrap();
    let agent = gate.key("default", Role::Agent).await;
    let id = allowed_run(&gate, &agent).await;
    let dir = gate.dir.path();
    let (_, keys_doc) = gate
        .send(reqwest::Method::GET, "/v1/receipt-keys", None, None)
        .await;
    let keys_file = dir.join("keys.json");
    std::fs::write(&keys_file, keys_doc.to_string()).unwrap();
    let (s, signed) = gate.get(&format!("/v1/runs/{id}/receipt"), &agent).await;
    assert_eq!(s, 200, "{signed}");
    assert_eq!(signed["receipt"]["version"], 2);
    let log = &signed["receipt"]["log"];
    assert!(
        log["checkpoint"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:8080/default\n")
    );
    assert_eq!(log["events"].as_array().unwrap().len(), 2, "{log}");
    // Pretty-printed, as a holder may keep it.
    let file = dir.join("receipt.json");
    std::fs::write(&file, serde_json::to_string_pretty(&signed).unwrap()).unwrap();
    let k = keys_file.to_str().unwrap();
    let f = file.to_str().unwrap();
    let (ok, out) = countersign(&["receipt", "verify", f, "--keys", k]);
    assert!(ok, "{out}");
    assert!(out.contains("audit proof: 2 event(s) included"), "{out}");

    // Keep the checkpoint as served; the log grows; the old receipt's
    // checkpoint is consistent with the newer one (proof from the gate).
    let (_, kept) = checkpoint_text(&gate, None).await;
    let kept_file = dir.join("kept.checkpoint");
    std::fs::write(&kept_file, &kept).unwrap();
    for _ in 0..3 {
        allowed_run(&gate, &agent).await;
    }
    let head = gate.state.store.tree_head("default").await.unwrap();
    wait_checkpoint(&gate, head.size).await;
    let (_, newer) = checkpoint_text(&gate, None).await;
    let newer_file = dir.join("newer.checkpoint");
    std::fs::write(&newer_file, &newer).unwrap();
    let n = newer_file.to_str().unwrap();
    let (ok, out) = countersign(&[
        "receipt",
        "verify",
        f,
        "--keys",
        k,
        "--checkpoint",
        n,
        "--gate",
        &gate.base,
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("consistent with the saved checkpoint"),
        "{out}"
    );
    let (ok, out) = countersign(&["receipt", "verify", f, "--keys", k, "--checkpoint", n]);
    assert!(!ok && out.contains("--gate"), "{out}");

    // Altered proofs and checkpoints are refused.
    let mut bad = signed.clone();
    bad["receipt"]["log"]["events"][0]["proof"][0] = json!(B64.encode([7u8; 32]));
    let resigned = gate.state.signer.sign(bad["receipt"].clone());
    let bad_file = dir.join("bad.json");
    std::fs::write(&bad_file, resigned.to_string()).unwrap();
    let (ok, out) = countersign(&["receipt", "verify", bad_file.to_str().unwrap(), "--keys", k]);
    assert!(!ok && out.contains("is not in the tree"), "{out}");
    let mut bad = signed.clone();
    let cp = bad["receipt"]["log"]["checkpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut lines: Vec<String> = cp.lines().map(str::to_owned).collect();
    lines[2] = B64.encode([1u8; 32]);
    bad["receipt"]["log"]["checkpoint"] = json!(format!("{}\n", lines.join("\n")));
    let resigned = gate.state.signer.sign(bad["receipt"].clone());
    std::fs::write(&bad_file, resigned.to_string()).unwrap();
    let (ok, out) = countersign(&["receipt", "verify", bad_file.to_str().unwrap(), "--keys", k]);
    assert!(!ok && out.contains("signature does not verify"), "{out}");
    // Changed without re-signing: the receipt's own signature fails.
    bad["receipt"]["log"]["events"][0]["index"] = json!(5);
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    let (ok, out) = countersign(&["receipt", "verify", bad_file.to_str().unwrap(), "--keys", k]);
    assert!(!ok, "{out}");

    // A receipt from before the verifiable log still verifies, as such.
    let mut old = signed["receipt"].clone();
    old.as_object_mut().unwrap().remove("log");
    old["version"] = json!(1);
    let old_file = dir.join("old.json");
    std::fs::write(&old_file, gate.state.signer.sign(old).to_string()).unwrap();
    let (ok, out) = countersign(&["receipt", "verify", old_file.to_str().unwrap(), "--keys", k]);
    assert!(ok && out.contains("no audit proof (issued before"), "{out}");
}

fn witness(gate: &str, key: &str, state: &Path) -> (bool, String) {
    countersign(&[
        "audit",
        "witness",
        "--gate",
        gate,
        "--key",
        key,
        "--state",
        state.to_str().unwrap(),
    ])
}

// The CLI runs as a blocking child process: the gate needs other threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_detects_rewrites_truncation_wrong_keys_and_an_unreachable_gate() {
    let (gate, _db) = start(false).await.unwrap();
    let agent = gate.key("default", Role::Agent).await;
    for _ in 0..4 {
        allowed_run(&gate, &agent).await;
    }
    let head = gate.state.store.tree_head("default").await.unwrap();
    wait_checkpoint(&gate, head.size).await;
    let state = gate.dir.path().join("witness");
    let (_, keys_doc) = gate
        .send(reqwest::Method::GET, "/v1/receipt-keys", None, None)
        .await;
    let keys_file = gate.dir.path().join("keys.json");
    std::fs::write(&keys_file, keys_doc.to_string()).unwrap();
    let verifier = keys_doc["note_verifier"].as_str().unwrap().to_owned();
    let (ok, out) = witness(&gate.base, keys_file.to_str().unwrap(), &state);
    assert!(ok && out.contains("first checkpoint saved"), "{out}");
    allowed_run(&gate, &agent).await;
    let head = gate.state.store.tree_head("default").await.unwrap();
    wait_checkpoint(&gate, head.size).await;
    let (ok, out) = witness(&gate.base, &verifier, &state);
    assert!(ok && out.contains("consistent"), "{out}");

    // Another key: refused.
    let other = Gate::start(&["default"], fast_checkpoints).await;
    let (_, other_keys) = other
        .send(reqwest::Method::GET, "/v1/receipt-keys", None, None)
        .await;
    let (ok, out) = witness(
        &gate.base,
        other_keys["note_verifier"].as_str().unwrap(),
        &state,
    );
    assert!(!ok && out.contains("wrong key"), "{out}");

    // The same key over another database (a writer replaced the history):
    // a longer, different log is a rewrite, a shorter one a truncation.
    let key_file = gate.dir.path().join("data/receipt-signing-key");
    let with_key = |config: &mut Config| {
        fast_checkpoints(config);
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::copy(&key_file, config.data_dir.join("receipt-signing-key")).unwrap();
    };
    let rewritten = Gate::start(&["default"], with_key).await;
    let agent2 = rewritten.key("default", Role::Agent).await;
    for _ in 0..8 {
        allowed_run(&rewritten, &agent2).await;
    }
    let head = rewritten.state.store.tree_head("default").await.unwrap();
    wait_checkpoint(&rewritten, head.size).await;
    let (ok, out) = witness(&rewritten.base, &verifier, &state);
    assert!(!ok && out.contains("rewritten history"), "{out}");
    let truncated = Gate::start(&["default"], with_key).await;
    wait_checkpoint(&truncated, 1).await;
    let (ok, out) = witness(&truncated.base, &verifier, &state);
    assert!(!ok && out.contains("truncated log"), "{out}");

    // Nobody listening.
    let port = crate::support::free_port();
    let (ok, out) = witness(&format!("http://127.0.0.1:{port}"), &verifier, &state);
    assert!(!ok && out.contains("gate unreachable"), "{out}");
    // The saved state is still the last good checkpoint.
    let (ok, out) = witness(&gate.base, &verifier, &state);
    assert!(ok, "{out}");
}

/// `countersign audit verify` names the forged row and column, a checkpoint
/// signed by another key, and a configured workspace whose log was deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_forged_rows_foreign_checkpoints_and_deleted_logs() {
    // Checkpoints are signed by hand here, so none races the edits below.
    let gate = Gate::start(&["default", "other"], |c| {
        c.audit.checkpoint_interval = Duration::from_secs(3600);
    })
    .await;
    let dir = gate.dir.path().to_owned();
    let config = dir.join("countersign.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {d}/data\nstore: sqlite://{d}/data/countersign.db\nworkspaces:\n  default: {{ policies: {d}/policies-default }}\n  other: {{ policies: {d}/policies-other }}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let agent = gate.key("default", Role::Agent).await;
    let other_agent = gate.key("other", Role::Agent).await;
    let id = pending_run(&gate, &agent).await;
    allowed_run(&gate, &other_agent).await;
    for ws in ["default", "other"] {
        let size = gate.state.store.tree_head(ws).await.unwrap().size;
        gate.state
            .checkpoints
            .covering(gate.state.store.as_ref(), ws, size, Utc::now())
            .await
            .unwrap();
    }
    let (ok, out) = countersign(&["audit", "verify", "--config", c]);
    assert!(ok, "{out}");
    assert!(
        out.contains("default: ok,") && out.contains("other: ok,"),
        "{out}"
    );

    let db = Db::Sqlite(dir.join("data/countersign.db"));
    db.execute(&format!(
        "UPDATE runs SET governance_status = 'approved', execution_status = 'awaiting_execution' \
         WHERE workspace = 'default' AND run_id = '{id}';"
    ))
    .await;
    db.execute(
        "DROP TRIGGER events_no_delete; DROP TRIGGER tree_hashes_no_delete; \
         DELETE FROM events WHERE workspace = 'other'; \
         DELETE FROM tree_hashes WHERE workspace = 'other'; \
         DELETE FROM chain_heads WHERE workspace = 'other'; \
         DELETE FROM runs WHERE workspace = 'other';",
    )
    .await;
    let (ok, out) = countersign(&["audit", "verify", "--config", c]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("run `{id}` column governance_status")),
        "{out}"
    );
    assert!(out.contains("other: FAILED"), "{out}");
    assert!(out.contains("events were deleted"), "{out}");

    // A checkpoint signed by another key (saved by a database writer).
    let foreign =
        countersign_gate::checkpoints::Checkpointer::new("127.0.0.1:8080", [3; 32]).unwrap();
    let head = gate.state.store.tree_head("default").await.unwrap();
    let note = countersign_store::tlog::sign_checkpoint(
        &countersign_store::tlog::Checkpoint::new(foreign.origin("default"), head.size, head.root),
        &[&countersign_store::tlog::SignerKey::from_seed("127.0.0.1:8080", [3; 32]).unwrap()],
    )
    .unwrap();
    db.execute(&format!(
        "DROP TRIGGER checkpoints_no_delete; \
         DELETE FROM checkpoints WHERE workspace = 'default' AND size = {}",
        head.size
    ))
    .await;
    gate.state
        .store
        .save_checkpoint(countersign_store::StoredCheckpoint {
            workspace: "default".into(),
            size: head.size,
            root: head.root,
            note,
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let (ok, out) = countersign(&["audit", "verify", "--config", c, "--workspace", "default"]);
    assert!(!ok, "{out}");
    assert!(out.contains("not signed by the deployment's key"), "{out}");
}
