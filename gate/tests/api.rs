//! The HTTP API, driven over real HTTP against a gate serving on a loopback
//! port, with the real SQLite store (and PostgreSQL where noted).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, RateLimit, StoreUrl, WorkspaceConfig};
use countersign_gate::receipts::{self, PublicKeyInfo};
use countersign_gate::{AppState, keys, server};
use countersign_store::{Role, Store};
use serde_json::{Value, json};

const POLICY: &str = r#"version: 1
approvers:
  finance-leads:
    members:
      - { id: alice, email: alice@example.com }
      - { id: bob, email: bob@example.com }
    timeout: 24h
actions:
  send_invoice_reminder:
    risk: medium
    approvers: finance-leads
    rules:
      - name: large-amount
        when: payload.amount > 500
        decision: require_approval
        reason: Reminders above $500 need a finance lead
      - name: default
        decision: allow
  delete_customer:
    risk: critical
    rules:
      - name: never
        decision: block
        reason: Customers are never deleted by agents
"#;

struct Gate {
    base: String,
    http: reqwest::Client,
    state: AppState,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

struct Key(String);

impl Gate {
    async fn start(workspaces: &[&str], tweak: impl FnOnce(&mut Config)) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.data_dir = dir.path().join("data");
        config.store = StoreUrl::Sqlite(dir.path().join("data/countersign.db"));
        config.workspaces = workspaces
            .iter()
            .map(|w| {
                let p = dir.path().join(format!("policies-{w}"));
                std::fs::create_dir_all(&p).unwrap();
                std::fs::write(p.join("finance.yaml"), POLICY).unwrap();
                WorkspaceConfig::new(*w, p)
            })
            .collect();
        config.policy_poll_interval = Duration::from_secs(3600);
        tweak(&mut config);
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 5, 23, 13, 31, 8).unwrap(),
        ));
        let state = server::build_state(config, clock.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let s = state.clone();
        tokio::spawn(async move { server::serve_on(listener, s).await });
        Gate {
            base,
            http: reqwest::Client::new(),
            state,
            clock,
            dir,
        }
    }

    async fn key(&self, workspace: &str, role: Role) -> Key {
        let k = keys::generate().unwrap();
        self.state
            .store
            .create_key(workspace, &k.key_id, &k.hash, role, None, Utc::now())
            .await
            .unwrap();
        Key(k.secret)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&Key>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(&k.0);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, key: &Key, body: Value) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            path,
            Some(key),
            Some(body.to_string()),
        )
        .await
    }

    async fn get(&self, path: &str, key: &Key) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(key), None).await
    }

    async fn intercept(&self, key: &Key, body: Value) -> (u16, Value) {
        self.post("/v1/intercept", key, body).await
    }
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn allowed_run_is_executable_then_reported_and_receipted() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;
    let (status, run) = gate
        .intercept(&agent, json!({"action": "send_invoice_reminder", "payload": {"amount": 100, "actor": "finance_agent", "reasoning": "invoice 42 is overdue"}}))
        .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["governance_status"], "allowed");
    assert_eq!(run["execution_status"], "awaiting_execution");
    assert_eq!(run["executable"], true);
    assert_eq!(run["rule"], "default");
    assert_eq!(run["actor"], "finance_agent");
    assert_eq!(run["reasoning"], "invoice 42 is overdue");
    assert_eq!(run["approval"], Value::Null);
    assert_eq!(run["policy_version"].as_str().unwrap().len(), 64);
    assert_eq!(run["created_at"], "2026-05-23T13:31:08.000000Z");
    let id = run["run_id"].as_str().unwrap().to_owned();

    let (status, now) = gate.get(&format!("/v1/runs/{id}"), &agent).await;
    assert_eq!(status, 200);
    assert_eq!(now["run_id"], id.as_str());

    let report = json!({"execution_result": {"message_id": "m-1", "sent": true}});
    let (status, done) = gate
        .post(&format!("/v1/runs/{id}/executed"), &agent, report.clone())
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["execution_status"], "executed");
    assert_eq!(done["executable"], false);
    assert_eq!(done["execution"]["execution_result"]["message_id"], "m-1");

    // The identical report again is idempotent; anything else conflicts.
    let (status, again) = gate
        .post(&format!("/v1/runs/{id}/executed"), &agent, report)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        again["audit"], done["audit"],
        "no new event for a repeated report"
    );
    let (status, e) = gate
        .post(
            &format!("/v1/runs/{id}/failed"),
            &agent,
            json!({"execution_error": "smtp down"}),
        )
        .await;
    assert_eq!((status, error_code(&e)), (409, "conflict"));

    // The receipt verifies with the served public keys; a forged one does not.
    let (status, signed) = gate.get(&format!("/v1/runs/{id}/receipt"), &agent).await;
    assert_eq!(status, 200);
    assert_eq!(signed["receipt"]["run_id"], id.as_str());
    assert_eq!(signed["receipt"]["decision"]["rule"], "default");
    assert_eq!(signed["receipt"]["execution"]["status"], "executed");
    assert_eq!(
        signed["receipt"]["payload"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(signed["receipt"]["audit"]["seq"].as_u64().unwrap() > 0);
    let (_, keys_doc) = gate
        .send(reqwest::Method::GET, "/v1/receipt-keys", None, None)
        .await;
    let keys: Vec<PublicKeyInfo> = serde_json::from_value(keys_doc["keys"].clone()).unwrap();
    receipts::verify(&signed, &keys).unwrap();
    let mut forged = signed.clone();
    forged["receipt"]["decision"]["governance_status"] = json!("approved");
    assert!(receipts::verify(&forged, &keys).is_err());
}

#[tokio::test]
async fn blocked_and_pending_runs_are_not_executable() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;

    let (status, blocked) = gate
        .intercept(
            &agent,
            json!({"action": "delete_customer", "payload": {"id": 7}}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(blocked["governance_status"], "blocked");
    assert_eq!(blocked["executable"], false);
    assert_eq!(
        blocked["governance_reason"],
        "Customers are never deleted by agents"
    );
    let id = blocked["run_id"].as_str().unwrap();
    let (status, e) = gate
        .post(
            &format!("/v1/runs/{id}/executed"),
            &agent,
            json!({"execution_result": null}),
        )
        .await;
    assert_eq!((status, error_code(&e)), (409, "conflict"));

    let (_, undeclared) = gate
        .intercept(&agent, json!({"action": "wire_money", "payload": {}}))
        .await;
    assert_eq!(undeclared["governance_status"], "blocked");
    assert!(
        undeclared["governance_reason"]
            .as_str()
            .unwrap()
            .contains("`wire_money`")
    );

    let (_, pending) = gate
        .intercept(
            &agent,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 1250.10}}),
        )
        .await;
    assert_eq!(pending["governance_status"], "pending_approval");
    assert_eq!(pending["execution_status"], "not_executed");
    assert_eq!(pending["executable"], false);
    assert_eq!(pending["rule"], "large-amount");
    assert_eq!(pending["approval"]["group"], "finance-leads");
    assert_eq!(pending["approval"]["quorum"], 1);
    assert_eq!(
        pending["approval"]["expires_at"],
        "2026-05-24T13:31:08.000000Z"
    );
    assert_eq!(pending["approval"]["approvers"], json!(["alice", "bob"]));

    // Past the group's timeout the run expires and can never execute.
    gate.clock.advance(chrono::Duration::hours(25));
    let id = pending["run_id"].as_str().unwrap();
    let mut status = String::new();
    for _ in 0..40 {
        let (_, r) = gate.get(&format!("/v1/runs/{id}"), &agent).await;
        status = r["governance_status"].as_str().unwrap().to_owned();
        if status == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "expired");
    let (code, e) = gate
        .post(
            &format!("/v1/runs/{id}/executed"),
            &agent,
            json!({"execution_result": 1}),
        )
        .await;
    assert_eq!((code, error_code(&e)), (409, "conflict"));
}

#[tokio::test]
async fn idempotency_returns_the_same_run_or_409() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;
    let first = json!({"action": "send_invoice_reminder", "payload": {"amount": 100, "invoice": "A"}, "idempotency_key": "inv-A-1"});
    let (s1, r1) = gate.intercept(&agent, first).await;
    // Same request, keys in another order and 100.0 for 100: the same body.
    let (s2, r2) = gate
        .post("/v1/intercept", &agent, json!({"idempotency_key": "inv-A-1", "payload": {"invoice": "A", "amount": 100.0}, "action": "send_invoice_reminder"}))
        .await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(r1["run_id"], r2["run_id"]);
    let (s3, e) = gate
        .intercept(&agent, json!({"action": "send_invoice_reminder", "payload": {"amount": 101, "invoice": "A"}, "idempotency_key": "inv-A-1"}))
        .await;
    assert_eq!((s3, error_code(&e)), (409, "idempotency_conflict"));
}

#[tokio::test]
async fn every_error_has_its_status_and_a_json_body() {
    let gate = Gate::start(&["default"], |c| c.max_body_bytes = 2048).await;
    let agent = gate.key("default", Role::Agent).await;
    let admin = gate.key("default", Role::Admin).await;
    let revoked = gate.key("default", Role::Agent).await;
    let revoked_id = revoked.0.split('_').nth(1).unwrap().to_owned();
    gate.state
        .store
        .revoke_key("default", &revoked_id, Utc::now())
        .await
        .unwrap();
    let ok_body = json!({"action": "send_invoice_reminder", "payload": {"amount": 1}}).to_string();
    let count_runs = || async {
        let (_, page) = gate.get("/v1/runs?limit=500", &admin).await;
        page["runs"].as_array().map_or(0, Vec::len)
    };
    let before = count_runs().await;
    let unknown = Key("csk_00000000_nope".into());

    // (key, path, POST body, status, error code, field)
    type Case<'a> = (
        Option<&'a Key>,
        &'a str,
        Option<String>,
        u16,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            None,
            "/v1/intercept",
            Some(ok_body.clone()),
            401,
            "unauthorized",
            None,
        ),
        (
            Some(&unknown),
            "/v1/intercept",
            Some(ok_body.clone()),
            401,
            "unauthorized",
            None,
        ),
        (
            Some(&revoked),
            "/v1/intercept",
            Some(ok_body.clone()),
            401,
            "unauthorized",
            None,
        ),
        (
            Some(&agent),
            "/v1/intercept",
            Some("{\"action\": ".into()),
            422,
            "validation_failed",
            Some("body"),
        ),
        (
            Some(&agent),
            "/v1/intercept",
            Some("[1,2]".into()),
            422,
            "validation_failed",
            Some("body"),
        ),
        (
            Some(&agent),
            "/v1/intercept",
            Some(json!({"action": "drop table", "payload": {}}).to_string()),
            422,
            "validation_failed",
            Some("action"),
        ),
        (
            Some(&agent),
            "/v1/intercept",
            Some(json!({"action": "a", "payload": "x"}).to_string()),
            422,
            "validation_failed",
            Some("payload"),
        ),
        (
            Some(&agent),
            "/v1/intercept",
            Some(json!({"action": "a", "payload": {}, "paylaod": {}}).to_string()),
            422,
            "validation_failed",
            Some("paylaod"),
        ),
        (
            Some(&agent),
            "/v1/intercept",
            Some(json!({"action": "a", "payload": {"blob": "x".repeat(4096)}}).to_string()),
            413,
            "payload_too_large",
            None,
        ),
        (
            Some(&agent),
            "/v1/runs/run_doesnotexist",
            None,
            404,
            "not_found",
            None,
        ),
        (Some(&agent), "/v1/nope", None, 404, "not_found", None),
        (Some(&agent), "/v1/runs", None, 403, "admin_required", None),
        (
            Some(&admin),
            "/v1/runs?cursor=garbage",
            None,
            400,
            "invalid_cursor",
            None,
        ),
        (
            Some(&admin),
            "/v1/runs?limit=0",
            None,
            400,
            "invalid_query",
            None,
        ),
        (
            Some(&admin),
            "/v1/runs?governance_status=maybe",
            None,
            400,
            "invalid_query",
            None,
        ),
        (
            Some(&agent),
            "/v1/policies/reload",
            Some(String::new()),
            403,
            "admin_required",
            None,
        ),
    ];
    for (key, path, body, want_status, want_code, want_field) in cases {
        let method = if body.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let (status, v) = gate.send(method, path, key, body).await;
        assert_eq!(status, want_status, "{path}: {v}");
        assert_eq!(error_code(&v), want_code, "{path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {v}"
        );
        if let Some(f) = want_field {
            assert_eq!(v["error"]["field"], f, "{path}: {v}");
        }
    }
    let (status, v) = gate
        .send(reqwest::Method::DELETE, "/v1/intercept", Some(&agent), None)
        .await;
    assert_eq!((status, error_code(&v)), (405, "method_not_allowed"));
    // Nothing was half-written by any of the failures.
    assert_eq!(count_runs().await, before);
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let gate = Gate::start(&["default"], |c| {
        c.rate_limit = RateLimit {
            per_second: 1,
            burst: 2,
        }
    })
    .await;
    let agent = gate.key("default", Role::Agent).await;
    let body = json!({"action": "send_invoice_reminder", "payload": {"amount": 1}});
    assert_eq!(gate.intercept(&agent, body.clone()).await.0, 201);
    assert_eq!(gate.intercept(&agent, body.clone()).await.0, 201);
    let resp = gate
        .http
        .post(format!("{}/v1/intercept", gate.base))
        .bearer_auth(&agent.0)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&v), "rate_limited");
}

#[tokio::test]
async fn workspaces_are_isolated() {
    let gate = Gate::start(&["acme", "globex"], |_| {}).await;
    let acme = gate.key("acme", Role::Admin).await;
    let globex = gate.key("globex", Role::Admin).await;
    let (_, run) = gate
        .intercept(
            &acme,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 1}}),
        )
        .await;
    let id = run["run_id"].as_str().unwrap();
    assert_eq!(run["workspace"], "acme");
    for path in [format!("/v1/runs/{id}"), format!("/v1/runs/{id}/receipt")] {
        let (status, v) = gate.get(&path, &globex).await;
        assert_eq!((status, error_code(&v)), (404, "not_found"), "{path}");
    }
    let (status, _) = gate
        .post(
            &format!("/v1/runs/{id}/executed"),
            &globex,
            json!({"execution_result": 1}),
        )
        .await;
    assert_eq!(status, 404);
    let (_, page) = gate.get("/v1/runs", &globex).await;
    assert_eq!(page["runs"], json!([]));
    let (_, page) = gate.get("/v1/runs", &acme).await;
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);
    // The run is still executable for its own workspace.
    let (status, _) = gate
        .post(
            &format!("/v1/runs/{id}/executed"),
            &acme,
            json!({"execution_result": 1}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn listing_is_newest_first_with_stable_cursors_and_filters() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let admin = gate.key("default", Role::Admin).await;
    let mut ids = Vec::new();
    for amount in [10, 20, 600, 30, 700] {
        gate.clock.advance(chrono::Duration::seconds(1));
        let (_, r) = gate.intercept(&admin, json!({"action": "send_invoice_reminder", "payload": {"amount": amount}, "actor": format!("bot-{amount}")})).await;
        ids.push(r["run_id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/runs?limit=2&cursor={c}"),
            None => "/v1/runs?limit=2".to_owned(),
        };
        let (status, page) = gate.get(&path, &admin).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["run_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each run once");
    let (_, pending) = gate
        .get("/v1/runs?governance_status=pending_approval", &admin)
        .await;
    assert_eq!(pending["runs"].as_array().unwrap().len(), 2);
    let (_, by_actor) = gate.get("/v1/runs?actor=bot-30", &admin).await;
    assert_eq!(by_actor["runs"][0]["actor"], "bot-30");
    let (_, awaiting) = gate
        .get(
            "/v1/runs?execution_status=awaiting_execution&action=send_invoice_reminder",
            &admin,
        )
        .await;
    assert_eq!(awaiting["runs"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn reload_keeps_the_old_set_when_the_new_one_is_invalid() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let admin = gate.key("default", Role::Admin).await;
    let (_, before) = gate.get("/v1/policies", &admin).await;
    let v1 = before["policy_version"].as_str().unwrap().to_owned();
    let file = gate.dir.path().join("policies-default/finance.yaml");

    std::fs::write(
        &file,
        POLICY.replace("payload.amount > 500", "payload.amount >"),
    )
    .unwrap();
    let (status, e) = gate.post("/v1/policies/reload", &admin, json!({})).await;
    assert_eq!((status, error_code(&e)), (422, "policy_invalid"));
    assert!(
        e["error"]["diagnostics"][0]
            .as_str()
            .unwrap()
            .contains("finance.yaml:14:31: syntax error"),
        "{e}"
    );
    let (_, still) = gate
        .intercept(
            &admin,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 600}}),
        )
        .await;
    assert_eq!(still["policy_version"], v1.as_str());
    assert_eq!(still["governance_status"], "pending_approval");
    let (_, pol) = gate.get("/v1/policies", &admin).await;
    assert!(pol["last_reload_error"].is_array());

    std::fs::write(
        &file,
        POLICY.replace("payload.amount > 500", "payload.amount > 1000"),
    )
    .unwrap();
    let (status, ok) = gate.post("/v1/policies/reload", &admin, json!({})).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["changed"], true);
    let (_, after) = gate
        .intercept(
            &admin,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 600}}),
        )
        .await;
    assert_eq!(after["governance_status"], "allowed");
    assert_ne!(after["policy_version"], v1.as_str());
    // The older run keeps the version it was decided by.
    let (_, old) = gate
        .get(
            &format!("/v1/runs/{}", still["run_id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_eq!(old["policy_version"], v1.as_str());
}

#[tokio::test]
async fn policies_reload_by_themselves_when_files_change() {
    let gate = Gate::start(&["default"], |c| {
        c.policy_poll_interval = Duration::from_millis(100)
    })
    .await;
    let agent = gate.key("default", Role::Agent).await;
    let file = gate.dir.path().join("policies-default/finance.yaml");
    std::fs::write(
        &file,
        POLICY.replace("payload.amount > 500", "payload.amount > 5000"),
    )
    .unwrap();
    let mut status = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, r) = gate
            .intercept(
                &agent,
                json!({"action": "send_invoice_reminder", "payload": {"amount": 600}}),
            )
            .await;
        status = r["governance_status"].as_str().unwrap().to_owned();
        if status == "allowed" {
            break;
        }
    }
    assert_eq!(status, "allowed");
}

#[tokio::test]
async fn a_tampered_event_is_found_by_audit_verify() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let admin = gate.key("default", Role::Admin).await;
    for amount in [1, 2, 3] {
        gate.intercept(
            &admin,
            json!({"action": "send_invoice_reminder", "payload": {"amount": amount}}),
        )
        .await;
    }
    let (_, ok) = gate.get("/v1/audit/verify", &admin).await;
    assert_eq!(ok["ok"], true, "{ok}");
    let events = ok["events"].as_u64().unwrap();
    assert!(events >= 7, "{ok}");

    // Someone edits the database behind the gate's back.
    let db = gate.dir.path().join("data/countersign.db");
    let conn = rusqlite_open(&db);
    conn.execute_batch("DROP TRIGGER IF EXISTS events_no_update;")
        .ok();
    let triggers: Vec<String> = {
        let mut st = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'",
            )
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for t in triggers {
        conn.execute_batch(&format!("DROP TRIGGER \"{t}\";"))
            .unwrap();
    }
    let changed = conn
        .execute("UPDATE events SET data = json_set(data, '$.rule', 'forged') WHERE workspace = 'default' AND seq = 4", [])
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let (_, broken) = gate.get("/v1/audit/verify", &admin).await;
    assert_eq!(broken["ok"], false, "{broken}");
    assert_eq!(broken["broken_at_seq"], 4);

    // The CLI says the same, with a non-zero exit.
    let config = gate.dir.path().join("countersign.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {}\nworkspaces:\n  default: {{ policies: policies-default }}\n",
            gate.dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["audit", "verify", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("default: BROKEN at seq 4"), "{stdout}");
}

fn rusqlite_open(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;
    gate.intercept(&agent, json!({"action": "delete_customer", "payload": {}}))
        .await;
    gate.intercept(
        &agent,
        json!({"action": "send_invoice_reminder", "payload": {"amount": 5}}),
    )
    .await;
    let (s, h) = gate
        .send(reqwest::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")));
    let (s, r) = gate.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("ready")));
    let (s, m) = gate
        .send(reqwest::Method::GET, "/metrics", None, None)
        .await;
    assert_eq!(s, 200);
    let m = m.as_str().unwrap();
    assert!(
        m.contains("countersign_decisions_total{status=\"blocked\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("countersign_decisions_total{status=\"allowed\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("countersign_intercept_duration_seconds_count 2"),
        "{m}"
    );
    assert!(m.contains("countersign_store_batch_size_count"), "{m}");
    let (s, doc) = gate
        .send(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/intercept",
        "/v1/runs/{id}",
        "/v1/runs/{id}/executed",
        "/v1/runs/{id}/receipt",
        "/v1/receipt-keys",
        "/v1/approvals/{token}",
        "/a/{token}",
        "/slack/interactions",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn the_root_redirects_to_the_dashboard_and_changes_nothing() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain.get(format!("{}/", gate.base)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui");
    // Only GET: other methods on `/` are refused as before.
    let r = plain.post(format!("{}/", gate.base)).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn type_errors_name_json_types() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;
    for (body, field, message) in [
        (
            json!({"action": "send_invoice_reminder", "payload": [1, 2]}),
            "payload",
            "`payload` must be a JSON object, not an array",
        ),
        (
            json!({"action": true, "payload": {}}),
            "action",
            "`action` must be a string, not a boolean",
        ),
        (
            json!({"action": "send_invoice_reminder", "payload": {}, "actor": 7}),
            "actor",
            "`actor` must be a string, not a number",
        ),
    ] {
        let (status, v) = gate.intercept(&agent, body).await;
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
        assert_eq!(v["error"]["message"], message, "{v}");
    }
}

/// The same flow against PostgreSQL, the scale-out store.
#[tokio::test]
async fn postgres_backed_gate_runs_the_same_flow() {
    let url = std::env::var("COUNTERSIGN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("cs_gate_{}", uuid_like());
    let store: Arc<dyn Store> =
        match countersign_store::PostgresStore::connect_with_schema(&url, &schema).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                assert!(
                    std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "PostgreSQL is required but not reachable at {url}: {e}"
                );
                eprintln!("SKIPPED: PostgreSQL not reachable at {url}: {e}");
                return;
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
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let state = server::build_state_with_store(config, store.clone(), clock.clone())
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
    let agent = gate.key("default", Role::Agent).await;
    let body = json!({"action": "send_invoice_reminder", "payload": {"amount": 100}, "idempotency_key": "pg-1"});
    let (s, run) = gate.intercept(&agent, body.clone()).await;
    assert_eq!(s, 201, "{run}");
    let (s2, again) = gate.intercept(&agent, body).await;
    assert_eq!((s2, &again["run_id"]), (200, &run["run_id"]));
    let id = run["run_id"].as_str().unwrap();
    let (s, done) = gate
        .post(
            &format!("/v1/runs/{id}/executed"),
            &agent,
            json!({"execution_result": "ok"}),
        )
        .await;
    assert_eq!(
        (s, done["execution_status"].as_str()),
        (200, Some("executed"))
    );
    let (_, signed) = gate.get(&format!("/v1/runs/{id}/receipt"), &agent).await;
    receipts::verify(&signed, &[gate.state.signer.public().clone()]).unwrap();
    store.verify_chain("default").await.unwrap();
    // Clean up the schema.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

fn uuid_like() -> String {
    let mut b = [0u8; 8];
    keys::random_bytes(&mut b).unwrap();
    hex::encode(b)
}

#[tokio::test]
async fn a_revoked_key_is_refused_once_its_cache_entry_expires() {
    // Verified keys are cached for KEY_CACHE_TTL; a key revoked meanwhile
    // (here straight in the store, as `countersign keys revoke` does from
    // another process) must be refused once that time has passed.
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;
    let body = json!({"action": "send_invoice_reminder", "payload": {"amount": 1}});
    let (status, _) = gate.intercept(&agent, body.clone()).await;
    assert_eq!(status, 201);
    let key_id = agent.0.split('_').nth(1).unwrap().to_owned();
    gate.state
        .store
        .revoke_key("default", &key_id, Utc::now())
        .await
        .unwrap();
    tokio::time::sleep(
        countersign_gate::auth::KEY_CACHE_TTL + std::time::Duration::from_millis(50),
    )
    .await;
    let (status, e) = gate.intercept(&agent, body).await;
    assert_eq!((status, error_code(&e)), (401, "unauthorized"));
}
