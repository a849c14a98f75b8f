//! Who may call the HTTP API: rate limits per key, workspaces isolated
//! from each other, revoked keys refused once their cache entry expires,
//! and key rows that differ from the audit log refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use chrono::Utc;
use countersign_gate::config::RateLimit;
use countersign_store::Role;
use serde_json::{Value, json};

use crate::support::api::{Gate, Key, error_code};

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

/// Issue 15: an admin key row a database writer inserted (with the hash of
/// a secret they chose) has no key_created event: refused with 401, like a
/// promoted agent key, while the legitimate keys go on working.
#[tokio::test]
async fn a_forged_admin_key_row_is_refused() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let admin = gate.key("default", Role::Admin).await;
    let agent = gate.key("default", Role::Agent).await;
    let forged = countersign_gate::keys::generate().unwrap();
    let db = gate.dir.path().join("data/countersign.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "INSERT INTO api_keys (workspace, key_id, key_hash, role, label, created_at) \
         VALUES ('default', ?1, ?2, 'admin', NULL, '2026-05-23T13:31:08.000000Z')",
        [&forged.key_id, &forged.hash],
    )
    .unwrap();
    let agent_id = agent.0.split('_').nth(1).unwrap().to_owned();
    conn.execute(
        "UPDATE api_keys SET role = 'admin' WHERE key_id = ?1",
        [&agent_id],
    )
    .unwrap();
    let forged = Key(forged.secret);
    for key in [&forged, &agent] {
        let (status, e) = gate.get("/v1/runs", key).await;
        assert_eq!((status, error_code(&e)), (401, "unauthorized"), "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("does not match the audit log"),
            "{e}"
        );
    }
    let (status, _) = gate.get("/v1/runs", &admin).await;
    assert_eq!(status, 200);
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
        countersign_gate::keys::KEY_CACHE_TTL + std::time::Duration::from_millis(50),
    )
    .await;
    let (status, e) = gate.intercept(&agent, body).await;
    assert_eq!((status, error_code(&e)), (401, "unauthorized"));
}

/// Issue 16: the agent no longer asserts the actor. A key bound to an actor
/// proposes as that actor; naming another (at the top level or in the
/// payload, however spelled) is 403 `actor_mismatch`; naming the same or
/// none is fine; the receipt says the actor was bound. An unbound key keeps
/// naming its own actor, and its receipt says so.
#[tokio::test]
async fn a_key_bound_to_an_actor_proposes_only_as_that_actor() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let bound = gate.bound_key("default", "deploy-bot").await;
    for body in [
        json!({"action": "send_invoice_reminder", "payload": {"amount": 1}, "actor": "alice"}),
        json!({"action": "send_invoice_reminder", "payload": {"amount": 1, "actor": "bob"}}),
        json!({"action": "send_invoice_reminder", "payload": {"amount": 1, "actor": "deploy-bot2"}}),
    ] {
        let (status, e) = gate.intercept(&bound, body.clone()).await;
        assert_eq!(
            (status, error_code(&e)),
            (403, "actor_mismatch"),
            "{body}: {e}"
        );
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("deploy-bot"),
            "{e}"
        );
    }
    let (_, listed) = gate
        .get("/v1/runs", &gate.key("default", Role::Admin).await)
        .await;
    assert_eq!(
        listed["runs"].as_array().map(Vec::len),
        Some(0),
        "nothing was recorded: {listed}"
    );

    for (i, body) in [
        json!({"action": "send_invoice_reminder", "payload": {"amount": 1}}),
        json!({"action": "send_invoice_reminder", "payload": {"amount": 2}, "actor": "DEPLOY-BOT"}),
        json!({"action": "send_invoice_reminder", "payload": {"amount": 3, "actor": "deploy-bot"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, run) = gate.intercept(&bound, body).await;
        assert_eq!(status, 201, "{i}: {run}");
        assert_eq!(run["actor"], "deploy-bot", "the key's spelling is recorded");
        let id = run["run_id"].as_str().unwrap();
        let (status, signed) = gate.get(&format!("/v1/runs/{id}/receipt"), &bound).await;
        assert_eq!(status, 200);
        assert_eq!(signed["receipt"]["actor"], "deploy-bot");
        assert_eq!(signed["receipt"]["actor_bound"], true);
    }

    let unbound = gate.key("default", Role::Agent).await;
    let (status, run) = gate
        .intercept(
            &unbound,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 1}, "actor": "whoever"}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["actor"], "whoever");
    let id = run["run_id"].as_str().unwrap();
    let (_, signed) = gate.get(&format!("/v1/runs/{id}/receipt"), &unbound).await;
    assert_eq!(signed["receipt"]["actor_bound"], false);
}

/// Issue 17: a top-level `actor`, `reasoning` or `source` wins over the
/// payload's field of the same name, even when it is null; the payload's
/// field stays an argument (an MCP tool may take an `actor`). So a bound
/// key with an `actor` argument and a top-level null is the key's actor.
#[tokio::test]
async fn the_top_level_wins_over_same_named_payload_fields() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let bound = gate.bound_key("default", "deploy-bot").await;
    let (status, run) = gate
        .intercept(
            &bound,
            json!({"action": "send_invoice_reminder", "actor": null, "source": "mcp",
                   "payload": {"amount": 1, "actor": "someone-else", "source": "crm"}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["actor"], "deploy-bot");
    assert_eq!(run["source"], "mcp");

    let unbound = gate.key("default", Role::Agent).await;
    let (status, run) = gate
        .intercept(
            &unbound,
            json!({"action": "send_invoice_reminder", "actor": "proxy", "reasoning": null,
                   "payload": {"amount": 1, "actor": "argument", "reasoning": "an argument too"}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["actor"], "proxy");
    assert_eq!(run["reasoning"], serde_json::Value::Null);
    // Without a top-level key, the payload's field is still read.
    let (_, run) = gate
        .intercept(
            &unbound,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 1, "actor": "from-payload"}}),
        )
        .await;
    assert_eq!(run["actor"], "from-payload");
}
