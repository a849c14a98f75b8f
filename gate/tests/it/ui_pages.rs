//! The dashboard's workspace pages over real HTTP: run pages with their
//! timeline and verified receipt, share links, the live stream, and the
//! policies page.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::time::Duration;

use countersign_gate::receipts;
use countersign_store::{EventKind, Role};
use serde_json::{Value, json};

use crate::support::start;
use crate::support::ui::{POLICY, Visitor, attr_values, csrf, propose, two_workspaces};

#[tokio::test]
async fn run_pages_show_the_timeline_and_a_verified_receipt() {
    let gate = start(POLICY, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    let id = propose(&gate, &agent, 500, "agent-7").await;
    let mut alice = Visitor::new(&gate);
    alice.sign_in_as("alice@example.com").await;
    let token = csrf(&alice.get("/ui/inbox").await.body);
    alice.answer(&id, &token, "approve").await;
    let (s, _) = gate
        .post_json(
            &format!("/v1/runs/{id}/executed"),
            Some(&agent),
            &json!({"execution_result": {"refund_id": "re_1"}}),
        )
        .await;
    assert_eq!(s, 200);

    let mut v = Visitor::new(&gate);
    v.sign_in_with_key(&admin).await;
    let detail = v.get(&format!("/ui/w/default/runs/{id}")).await;
    assert_eq!(detail.status, 200);
    let timeline = &detail.body[detail.body.find("data-testid=\"timeline\"").unwrap()..];
    for step in [
        "Proposed by agent-7",
        "Policy decided: pending approval",
        "Approval requested from finance",
        "Approved by alice",
        "Execution reported: executed",
    ] {
        assert!(timeline.contains(step), "timeline lacks {step}");
    }
    assert!(detail.body.contains("data-testid=\"chain-ok\""));

    let receipt = v.get(&format!("/ui/w/default/runs/{id}/receipt")).await;
    assert_eq!(receipt.status, 200);
    assert!(receipt.body.contains("signature valid"));
    assert!(receipt.body.contains(&id));
    let json_page = v
        .get(&format!("/ui/w/default/runs/{id}/receipt.json"))
        .await;
    assert!(
        json_page.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let signed: Value = serde_json::from_str(&json_page.body).unwrap();
    receipts::verify(&signed, std::slice::from_ref(gate.state.signer.public())).unwrap();
    assert_eq!(signed["receipt"]["execution_status"], "executed");

    // Tampering with the audit log shows on the run's page.
    let db = gate.dir.path().join("data/countersign.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_no_update; UPDATE events SET data = replace(data, 'agent-7', 'agent-8') WHERE kind = 'run_proposed';",
    )
    .unwrap();
    let tampered = v.get(&format!("/ui/w/default/runs/{id}")).await;
    assert!(tampered.body.contains("data-testid=\"chain-broken\""));
    assert!(tampered.body.contains("hash mismatch"));

    let policies = v.get("/ui/w/default/policies").await;
    assert!(
        policies.body.contains("big-refund") && policies.body.contains("payload.amount &#62; 100")
    );
    assert!(
        policies
            .body
            .contains(gate.state.workspaces["default"].policies().version())
    );
}

#[tokio::test]
async fn share_links_show_history_and_receipts_only_until_revoked() {
    let gate = two_workspaces().await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    let id = propose(&gate, &agent, 500, "agent-7").await;
    let mut v = Visitor::new(&gate);
    v.sign_in_with_key(&admin).await;
    let token = csrf(&v.get("/ui/w/default/share").await.body);
    for (days, label) in [("0", "x"), ("400", "x"), ("30", "")] {
        let bad = v
            .post(
                "/ui/w/default/share",
                &[("csrf", &token), ("label", label), ("days", days)],
            )
            .await;
        assert_eq!(bad.status, 422, "days {days} label {label:?}");
    }
    let created = v
        .post(
            "/ui/w/default/share",
            &[("csrf", &token), ("label", "Acme <audit>"), ("days", "7")],
        )
        .await;
    assert_eq!(created.status, 201);
    let url = {
        let at = created.body.find("data-testid=\"share-url\">").unwrap();
        let rest = &created.body[at + "data-testid=\"share-url\">".len()..];
        rest[..rest.find('<').unwrap()].to_owned()
    };
    assert!(url.starts_with(&format!("{}/ui/s/", gate.base)));
    assert!(
        created.body.contains("Acme &lt;audit&gt;")
            || created.body.contains("Acme &#60;audit&#62;")
    );
    let events = gate.state.store.events("default", 0, 0).await.unwrap();
    let created_event = events
        .iter()
        .find(|e| e.kind == EventKind::ShareLinkCreated)
        .expect("share link creation is audited");
    let grant_id = created_event.data["grant_id"].as_str().unwrap().to_owned();
    assert!(
        !created_event
            .data
            .to_string()
            .contains(url.rsplit('/').next().unwrap()),
        "the token is never logged"
    );

    // A client without any cookie: history and receipts, nothing else.
    let mut client = Visitor::new(&gate);
    let history = client.get(&url).await;
    assert_eq!(history.status, 200);
    assert!(attr_values(&history.body, "data-run-id").contains(&id));
    assert!(!history.body.contains("data-testid=\"approve\""));
    assert!(
        !history.body.contains("/ui/w/default"),
        "no links into the dashboard"
    );
    assert_eq!(history.headers["referrer-policy"], "same-origin");
    let receipt = client.get(&format!("{url}/runs/{id}/receipt")).await;
    assert_eq!(receipt.status, 200);
    assert!(receipt.body.contains("signature valid"));
    let json_receipt = client.get(&format!("{url}/runs/{id}/receipt.json")).await;
    assert_eq!(json_receipt.status, 200);
    assert_eq!(client.get("/ui/w/default/runs").await.status, 303);
    assert_eq!(
        client
            .get(&format!("{url}/runs/run_nope/receipt"))
            .await
            .status,
        404
    );
    // A run of another workspace is not reachable through this link.
    let other_agent = gate.key_in("other", Role::Agent).await;
    let (s, other_run) = gate
        .post_json(
            "/v1/intercept",
            Some(&other_agent),
            &json!({"action": "restart", "payload": {"host": "db1"}}),
        )
        .await;
    assert_eq!(s, 201, "{other_run}");
    let other_id = other_run["run_id"].as_str().unwrap();
    assert_eq!(
        client
            .get(&format!("{url}/runs/{other_id}/receipt"))
            .await
            .status,
        404
    );
    assert_eq!(
        client
            .get(&format!("{url}/runs/{other_id}/receipt.json"))
            .await
            .status,
        404
    );
    // The share token is no session, and cannot be spent as a sign-in link.
    let share_token = url.rsplit('/').next().unwrap().to_owned();
    let mut forger = Visitor::new(&gate);
    forger
        .cookies
        .insert("cs_session".into(), share_token.clone());
    assert_eq!(forger.get("/ui/w/default").await.status, 303);
    forger.cookies.clear();
    let login = forger.get("/ui/login").await;
    let forger_csrf = csrf(&login.body);
    let spent = forger
        .post(
            &format!("/ui/login/{share_token}"),
            &[("csrf", &forger_csrf)],
        )
        .await;
    assert_eq!(spent.status, 404);
    assert_eq!(client.get(&url).await.status, 200, "the link still works");

    // Another workspace's admin cannot revoke it.
    let other_key = gate.key_in("other", Role::Admin).await;
    let mut stranger = Visitor::new(&gate);
    stranger.sign_in_with_key(&other_key).await;
    let stranger_token = csrf(&stranger.get("/ui/w/other/share").await.body);
    let denied = stranger
        .post(
            &format!("/ui/w/other/share/{grant_id}/revoke"),
            &[("csrf", &stranger_token)],
        )
        .await;
    assert_eq!(denied.status, 404);
    assert_eq!(client.get(&url).await.status, 200);

    let revoked = v
        .post(
            &format!("/ui/w/default/share/{grant_id}/revoke"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(revoked.status, 303);
    let gone = client.get(&url).await;
    assert_eq!(gone.status, 410);
    assert!(!gone.body.contains(&id));
    assert_eq!(
        client.get(&format!("{url}/runs/{id}/receipt")).await.status,
        410
    );
    let kinds: Vec<EventKind> = gate
        .state
        .store
        .events("default", 0, 0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&EventKind::ShareLinkRevoked));
    gate.state.store.verify_chain("default").await.unwrap();
    let listed = v.get("/ui/w/default/share").await.body;
    assert!(listed.contains(">revoked<"));

    // Expiry ends a link too.
    let second = v
        .post(
            "/ui/w/default/share",
            &[("csrf", &token), ("label", "short"), ("days", "1")],
        )
        .await;
    let at = second.body.find("data-testid=\"share-url\">").unwrap();
    let rest = &second.body[at + "data-testid=\"share-url\">".len()..];
    let url2 = rest[..rest.find('<').unwrap()].to_owned();
    assert_eq!(client.get(&url2).await.status, 200);
    gate.clock.advance(chrono::Duration::days(2));
    assert_eq!(client.get(&url2).await.status, 410);
    assert_eq!(
        client
            .get("/ui/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_live_stream_reports_new_and_changed_runs() {
    let gate = start(POLICY, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    let mut v = Visitor::new(&gate);
    v.sign_in_with_key(&admin).await;
    let runs = v.get("/ui/w/default/runs").await;
    let live = attr_values(&runs.body, "data-live")[0].replace("&amp;", "&");
    assert!(live.starts_with("/ui/w/default/live?after="));

    let mut stream = gate
        .http
        .get(format!("{}{live}", gate.base))
        .header("cookie", v.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let id = propose(&gate, &agent, 500, "agent-7").await;
    let mut alice = Visitor::new(&gate);
    alice.sign_in_as("alice@example.com").await;
    let token = csrf(&alice.get("/ui/inbox").await.body);
    alice.answer(&id, &token, "approve").await;

    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("\"governance_status\":\"approved\"") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the approval reaches the stream within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: run"));
    assert!(text.contains(&format!("\"run_id\":\"{id}\"")));
    assert!(text.contains("\"is_new\":true"), "{text}");

    // Without a session there is no stream.
    let anon = gate
        .http
        .get(format!("{}{live}", gate.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
}

#[tokio::test]
async fn the_policies_page_shows_a_failed_reload_with_its_diagnostics() {
    let gate = start(POLICY, |_, _| {}).await;
    let admin = gate.key(Role::Admin).await;
    let mut v = Visitor::new(&gate);
    v.sign_in_with_key(&admin).await;
    let before = v.get("/ui/w/default/policies").await;
    assert!(!before.body.contains("data-testid=\"reload-error\""));

    let file = gate.dir.path().join("policies/policy.yaml");
    std::fs::write(&file, POLICY.replace("decision: allow", "decision: alow")).unwrap();
    let (status, _) = gate
        .post_json("/v1/policies/reload", Some(&admin), &json!({}))
        .await;
    assert_eq!(status, 422);
    let after = v.get("/ui/w/default/policies").await;
    assert!(after.body.contains("data-testid=\"reload-error\""));
    assert!(
        after.body.contains("policy.yaml:"),
        "the diagnostic names the file"
    );
    assert!(after.body.contains("alow"));
    // The old set stays in force and is still listed.
    assert!(after.body.contains("small-refund"));
    let overview = v.get("/ui/w/default").await;
    assert!(overview.body.contains("The last policy reload failed"));
}
