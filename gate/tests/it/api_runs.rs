//! The HTTP API's runs, driven over real HTTP against a gate serving on a
//! loopback port, with the real SQLite store (and PostgreSQL where noted):
//! decisions, reports, receipts, idempotency, listing, and every error's
//! status and body.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, StoreUrl, WorkspaceConfig};
use countersign_gate::receipts::{self, PublicKeyInfo};
use countersign_gate::{keys, server};
use countersign_store::{Role, Store};
use serde_json::{Value, json};

use crate::support::api::{Gate, Key, POLICY, error_code};

fn uuid_like() -> String {
    let mut b = [0u8; 8];
    keys::random_bytes(&mut b).unwrap();
    hex::encode(b)
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
    let store: Arc<dyn Store> = match countersign_store::PostgresStore::connect_with_schema(
        &url,
        &schema,
        countersign_store::LogKey::from_bytes([7; 32]),
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

/// Issue 17: a top-level `context` object is stored with the run, shown in
/// its view, and read by policies as `context.…` in both condition
/// languages; anything but an object, or one over the limit, is a 422.
#[tokio::test]
async fn the_context_is_stored_and_read_by_policies() {
    let gate = Gate::start(&["default"], |c| {
        let dir = c.workspaces[0].policies.clone();
        std::fs::write(
            dir.join("mcp.yaml"),
            r#"version: 1
actions:
  fs.write_file:
    default: allow
    rules:
      - name: untrusted-client
        when: context.mcp.client.name == "untrusted"
        decision: block
        reason: This client may not write
      - name: cel-tool
        when_cel: context.mcp.tool == "write_file" && context.mcp.server == "other"
        decision: block
        reason: Not through that server
"#,
        )
        .unwrap();
    })
    .await;
    let agent = gate.key("default", Role::Agent).await;
    let body = |client: &str, server: &str| {
        json!({"action": "fs.write_file", "payload": {"path": "/tmp/x"}, "source": "mcp",
               "context": {"mcp": {"server": server, "tool": "write_file", "client": {"name": client, "version": "1"}}}})
    };
    let (status, run) = gate.intercept(&agent, body("claude", "fs")).await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["governance_status"], "allowed");
    assert_eq!(run["context"]["mcp"]["client"]["name"], "claude");
    let id = run["run_id"].as_str().unwrap();
    let (_, read) = gate.get(&format!("/v1/runs/{id}"), &agent).await;
    assert_eq!(read["context"], run["context"], "stored with the run");
    // The row agrees with the authenticated events (else this is a 500
    // audit_mismatch), and the receipt is signed.
    let (status, done) = gate
        .post(
            &format!("/v1/runs/{id}/executed"),
            &agent,
            json!({"execution_result": null}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let (status, _) = gate.get(&format!("/v1/runs/{id}/receipt"), &agent).await;
    assert_eq!(status, 200);
    let (_, run) = gate.intercept(&agent, body("untrusted", "fs")).await;
    assert_eq!(
        (run["governance_status"].as_str(), run["rule"].as_str()),
        (Some("blocked"), Some("untrusted-client"))
    );
    let (_, run) = gate.intercept(&agent, body("claude", "other")).await;
    assert_eq!(
        (run["governance_status"].as_str(), run["rule"].as_str()),
        (Some("blocked"), Some("cel-tool"))
    );
    // A run without a context shows null.
    let (_, run) = gate
        .intercept(
            &agent,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 1}}),
        )
        .await;
    assert_eq!(run["context"], Value::Null);

    for bad in [json!([1]), json!("mcp"), json!({"k": "x".repeat(5000)})] {
        let (status, e) = gate
            .intercept(
                &agent,
                json!({"action": "fs.write_file", "payload": {}, "context": bad}),
            )
            .await;
        assert_eq!((status, error_code(&e)), (422, "validation_failed"), "{e}");
        assert_eq!(e["error"]["field"], "context");
    }
}
