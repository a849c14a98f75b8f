//! Approvals by Slack buttons, against a Slack Web API stand-in: signed,
//! fresh clicks from an approver, in direct messages or a shared channel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use countersign_gate::clock::Clock;
use countersign_gate::config::SlackConfig;
use countersign_store::Role;
use serde_json::{Value, json};

use crate::support::approvals::{POLICY, propose, sent};
use crate::support::{Gate, start};

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(String, Value)>>>);

async fn fake_slack(
    State(rec): State<Recorder>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> axum::Json<Value> {
    let parsed: Value = if headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"))
    {
        serde_json::from_str(&body).unwrap_or(Value::Null)
    } else {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        serde_json::to_value(form).unwrap()
    };
    let method = uri.path().rsplit('/').next().unwrap_or("").to_owned();
    let channel = parsed["channel"].as_str().unwrap_or("C0").to_owned();
    rec.0.lock().unwrap().push((method, parsed));
    axum::Json(
        json!({"ok": true, "channel": channel, "ts": "1764147600.000100", "text": "", "message": {"ts": "1764147600.000100", "text": ""}}),
    )
}

fn sign_slack(secret: &str, ts: i64, body: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

async fn click(
    gate: &Gate,
    secret: &str,
    ts: i64,
    signature: Option<String>,
    user: &str,
    value: &str,
    action_id: &str,
) -> (u16, Value) {
    click_from(
        gate,
        secret,
        ts,
        signature,
        (user, "T0TEAM"),
        value,
        action_id,
    )
    .await
}

/// A click by Slack user `who.0` of Slack workspace `who.1`.
async fn click_from(
    gate: &Gate,
    secret: &str,
    ts: i64,
    signature: Option<String>,
    who: (&str, &str),
    value: &str,
    action_id: &str,
) -> (u16, Value) {
    let (user, team) = who;
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user},
        "team": {"id": team},
        "container": {"type": "message", "message_ts": "1764147600.000100", "channel_id": "D0DM"},
        "channel": {"id": "D0DM"},
        "message": {"ts": "1764147600.000100"},
        "response_url": "https://hooks.slack.com/actions/T0/1/x",
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value, "action_ts": "1764147601.1"}]
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let sig = signature.unwrap_or_else(|| sign_slack(secret, ts, &body));
    let resp = gate
        .http
        .post(format!("{}/slack/interactions", gate.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn button_value(rec: &Recorder, channel: &str, action_id: &str) -> String {
    let calls = rec.0.lock().unwrap();
    // The latest message to that channel.
    let post = calls
        .iter()
        .rev()
        .find(|(m, b)| m == "chat.postMessage" && b["channel"] == channel)
        .unwrap_or_else(|| panic!("no chat.postMessage to {channel}: {calls:?}"));
    let blocks: Value = match &post.1["blocks"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    let text = blocks.to_string();
    assert!(
        text.contains("send_invoice_reminder") && text.contains("Reminders above $500"),
        "context in the blocks: {text}"
    );
    blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter())
        .find(|e| e["action_id"] == action_id)
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .expect("the button")
}

/// A gate whose Slack transport talks to a local fake of Slack's Web API
/// (whose calls are recorded), posting to `channel` if given (else direct
/// messages), accepting clicks from `team` only if given.
async fn slack_gate(secret: &str, channel: Option<&str>, team: Option<&str>) -> (Recorder, Gate) {
    let rec = Recorder::default();
    let app = Router::new()
        .route("/api/{method}", post(fake_slack))
        .with_state(rec.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slack_url = format!("http://{}/api/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let gate = start(POLICY, |c, _| {
        c.slack = Some(SlackConfig {
            bot_token: Some("xoxb-test-token".into()),
            bot_token_env: None,
            signing_secret: Some(secret.into()),
            signing_secret_env: None,
            api_base_url: slack_url,
            channel: channel.map(str::to_owned),
            team_id: team.map(str::to_owned),
        });
    })
    .await;
    (rec, gate)
}

#[tokio::test]
async fn a_shared_slack_channel_post_takes_any_approvers_click_from_any_team() {
    let secret = "0c2b6a4e1d9f8a7b6c5d4e3f2a1b0c9d";
    let (rec, gate) = slack_gate(secret, Some("C0SHARED"), None).await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "send_invoice_reminder", "finance_agent").await;
    gate.wait_run(&agent, &id, "one post to the shared channel", |r| {
        sent(r, "@slack-channel", "slack")
    })
    .await;
    let approve = button_value(&rec, "C0SHARED", "countersign_approve");
    // Bob answers from the shared post (one delivery for everyone), from a
    // Slack workspace the gate was not told to restrict to.
    let (s, v) = click_from(
        &gate,
        secret,
        gate.clock.now().timestamp(),
        None,
        ("U0BOB", "T0ANY"),
        &approve,
        "countersign_approve",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let run = gate.run(&agent, &id).await;
    assert_eq!(run["governance_status"], "approved", "{run}");
    assert_eq!(run["approvals"][0]["approver"], "bob");
    assert_eq!(run["approvals"][0]["channel"], "slack");
}

#[tokio::test]
async fn slack_buttons_answer_only_when_signed_fresh_and_from_an_approver() {
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let (rec, gate) = slack_gate(secret, None, Some("T0TEAM")).await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "send_invoice_reminder", "finance_agent").await;
    gate.wait_run(&agent, &id, "Slack DMs", |r| {
        sent(r, "alice", "slack") && sent(r, "bob", "slack")
    })
    .await;
    let approve = button_value(&rec, "U0ALICE", "countersign_approve");
    let now = gate.clock.now().timestamp();

    let (s, _) = click(
        &gate,
        secret,
        now,
        Some("v0=deadbeef".into()),
        "U0ALICE",
        &approve,
        "countersign_approve",
    )
    .await;
    assert_eq!(s, 401, "bad signature");
    let (s, _) = click(
        &gate,
        secret,
        now - 600,
        None,
        "U0ALICE",
        &approve,
        "countersign_approve",
    )
    .await;
    assert_eq!(s, 401, "stale timestamp");
    let (s, v) = click(
        &gate,
        secret,
        now,
        None,
        "U0MALLORY",
        &approve,
        "countersign_approve",
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        v["text"].as_str().unwrap().contains("not an approver"),
        "{v}"
    );
    // Bob, an approver, pressing the button of Alice's direct message (a
    // copied payload): refused, the message was not his.
    let (s, v) = click(
        &gate,
        secret,
        now,
        None,
        "U0BOB",
        &approve,
        "countersign_approve",
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("sent to another approver"),
        "{v}"
    );
    // Alice's own click, but from another Slack workspace.
    let (s, v) = click_from(
        &gate,
        secret,
        now,
        None,
        ("U0ALICE", "T0OTHER"),
        &approve,
        "countersign_approve",
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("wrong_slack_team"))
    );
    assert_eq!(
        gate.run(&agent, &id).await["governance_status"],
        "pending_approval",
        "refused clicks change nothing"
    );
    // A button value naming a delivery the gate never made.
    let mut forged: Value = serde_json::from_str(&approve).unwrap();
    forged["delivery_id"] = json!("dlv_00000000000000000000000000000000");
    let (s, v) = click(
        &gate,
        secret,
        now,
        None,
        "U0ALICE",
        &forged.to_string(),
        "countersign_approve",
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("not on a request Countersign sent"),
        "{v}"
    );
    assert_eq!(gate.run(&agent, &id).await["approvals"], json!([]));

    let (s, v) = click(
        &gate,
        secret,
        now,
        None,
        "U0ALICE",
        &approve,
        "countersign_approve",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let run = gate.run(&agent, &id).await;
    assert_eq!(run["governance_status"], "approved");
    assert_eq!(run["approvals"][0]["approver"], "alice");
    assert_eq!(run["approvals"][0]["channel"], "slack");
    let updated = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|(m, b)| m == "chat.update" && b.to_string().contains("Approved by alice"));
    assert!(updated, "the message shows the outcome");

    // A late click on a decided run is recorded and changes nothing.
    let bob_reject = button_value(&rec, "U0BOB", "countersign_reject");
    let (_, v) = click(
        &gate,
        secret,
        now,
        None,
        "U0BOB",
        &bob_reject,
        "countersign_reject",
    )
    .await;
    assert!(
        v["text"].as_str().unwrap().contains("already decided"),
        "{v}"
    );
    let run = gate.run(&agent, &id).await;
    assert_eq!(run["governance_status"], "approved");
    assert_eq!(run["approvals"][1]["counted"], false);

    // The actor can never approve its own request through Slack.
    let own = propose(&gate, &agent, "send_invoice_reminder", "alice").await;
    gate.wait_run(&agent, &own, "Slack DMs", |r| sent(r, "alice", "slack"))
        .await;
    let value = button_value(&rec, "U0ALICE", "countersign_approve");
    let (_, v) = click(
        &gate,
        secret,
        now,
        None,
        "U0ALICE",
        &value,
        "countersign_approve",
    )
    .await;
    assert!(
        v["text"].as_str().unwrap().contains("cannot approve"),
        "{v}"
    );
    assert_eq!(
        gate.run(&agent, &own).await["governance_status"],
        "pending_approval"
    );
}
