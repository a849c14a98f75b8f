//! The gate's own endpoints: policy reloads, audit verification, health,
//! readiness, metrics, the OpenAPI document and the root redirect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::time::Duration;

use countersign_store::Role;
use serde_json::json;

use crate::support::api::{Gate, POLICY, error_code};

fn rusqlite_open(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
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
    let event = &doc["webhooks"]["approval.requested"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"]["data"]["properties"];
    assert!(
        event["approvers"]["items"]["properties"]["eligible_from"].is_object(),
        "the webhook event's approvers are documented"
    );
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
