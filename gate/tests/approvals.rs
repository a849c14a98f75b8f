//! Human approvals end to end, against real servers on loopback: an SMTP
//! server (aiosmtpd), a Slack Web API stand-in, webhook receivers (signatures
//! checked with the `standardwebhooks` package), and the gate itself.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use countersign_gate::clock::Clock;
use countersign_gate::config::{SlackConfig, WebhookConfig};
use countersign_gate::receipts;
use countersign_store::Role;
use serde_json::{Value, json};
use support::{Gate, Key, free_port, mails, python_package, smtp_server, start};

const POLICY: &str = r#"version: 1
approvers:
  finance-leads:
    members:
      - { id: alice, name: Alice Ng, email: alice@example.com, slack: U0ALICE }
      - { id: bob, email: bob@example.com, slack: U0BOB }
    quorum: 1
    timeout: 24h
    escalate_to: cfo-office
    escalate_after: 4h
  cfo-office:
    members:
      - { id: carol, email: carol@example.com, slack: U0CAROL }
  controllers:
    members:
      - { id: alice, email: alice@example.com }
      - { id: bob, email: bob@example.com }
    quorum: 2
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
  mark_invoice_paid:
    risk: high
    approvers: controllers
    rules:
      - name: four-eyes
        decision: require_approval
"#;

async fn propose(gate: &Gate, key: &Key, action: &str, actor: &str) -> String {
    let (status, run) = gate
        .post_json(
            "/v1/intercept",
            Some(key),
            &json!({"action": action, "payload": {"amount": 1250.10, "invoice_id": "INV-7 <b>urgent</b>"}, "actor": actor, "reasoning": "Customer is 30 days late"}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["governance_status"], "pending_approval", "{run}");
    run["run_id"].as_str().unwrap().to_owned()
}

/// The link token of `approver`'s console delivery in `run` (a run view).
fn console_token(gate: &Gate, run: &Value, approver: &str) -> String {
    let d = run["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["approver"] == approver && d["channel"] == "console")
        .unwrap_or_else(|| panic!("no console delivery to {approver}: {run}"));
    gate.state
        .token_secret
        .token_for(d["delivery_id"].as_str().unwrap())
}

/// The confirmation page behind a link token, as a browser opens it.
async fn confirmation_page(gate: &Gate, token: &str) -> String {
    gate.http
        .get(format!("{}/a/{token}?d=approve&c=console", gate.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn sent(run: &Value, approver: &str, channel: &str) -> bool {
    run["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["approver"] == approver && d["channel"] == channel && d["status"] == "sent")
}

// ---------------------------------------------------------------- email

fn link(mail: &str, decision: &str) -> String {
    let start = mail.find("http://127.0.0.1").expect("a link in the mail");
    let candidates: Vec<&str> = mail[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .collect();
    let all: Vec<String> = mail
        .match_indices("http://127.0.0.1")
        .map(|(i, _)| {
            mail[i..]
                .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
                .next()
                .unwrap_or("")
                .replace("&amp;", "&")
        })
        .collect();
    let _ = candidates;
    all.into_iter()
        .find(|l| l.contains(&format!("d={decision}")))
        .expect("the link for the decision")
}

#[tokio::test]
async fn email_link_shows_a_page_then_the_form_approves() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = smtp_server(dir.path());
    let email = smtp.email_config();
    let gate = start(POLICY, |c, _| c.email = Some(email)).await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "send_invoice_reminder", "finance_agent").await;
    gate.wait_run(&agent, &id, "emails to alice and bob", |r| {
        sent(r, "alice", "email") && sent(r, "bob", "email")
    })
    .await;

    let all = mails(&smtp.maildir);
    let to_alice = all
        .iter()
        .find(|m| m.contains("To: alice@example.com"))
        .expect("a mail to alice");
    assert!(to_alice.contains("send_invoice_reminder"), "{to_alice}");
    // Alice is also listed, without a name, in another group: the name
    // comes from the run's group.
    assert!(to_alice.contains("Hello Alice Ng,"), "{to_alice}");
    assert!(
        to_alice.contains("To: \"Alice Ng\" <alice@example.com>"),
        "{to_alice}"
    );
    assert!(
        to_alice.contains("Customer is 30 days late"),
        "reasoning in the mail"
    );
    assert!(
        to_alice.contains("Reminders above $500 need a finance lead"),
        "reason in the mail"
    );
    assert!(
        to_alice.contains("&lt;b&gt;urgent&lt;/b&gt;"),
        "payload text is escaped in HTML"
    );
    let approve = link(to_alice, "approve");

    // Following the link (as a mail scanner would) changes nothing.
    let page = gate.http.get(&approve).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(html.contains("send_invoice_reminder"));
    // The approver is greeted by name and sees what the agent sent,
    // escaped: the summary and the whole payload.
    assert!(html.contains("Hello Alice Ng,"), "{html}");
    assert!(
        html.contains("amount=1250.1, invoice_id=INV-7 &lt;b&gt;urgent&lt;/b&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&quot;invoice_id&quot;: &quot;INV-7 &lt;b&gt;urgent&lt;/b&gt;&quot;"),
        "{html}"
    );
    assert!(!html.contains("<b>urgent"), "payload text is escaped");
    let run = gate.run(&agent, &id).await;
    assert_eq!(run["governance_status"], "pending_approval");
    assert_eq!(run["approvals"], json!([]));

    // Submitting the form applies the answer.
    let resp = gate
        .http
        .post(&approve)
        .header("user-agent", "test-browser/1.0")
        .form(&[
            ("decision", "approve"),
            ("comment", "Checked the ledger"),
            ("c", "email"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("your answer is recorded")
    );
    let run = gate.run(&agent, &id).await;
    assert_eq!(run["governance_status"], "approved", "{run}");
    assert_eq!(run["executable"], true);
    assert_eq!(run["approvals"][0]["approver"], "alice");
    assert_eq!(run["approvals"][0]["channel"], "email");
    assert_eq!(run["approvals"][0]["comment"], "Checked the ledger");

    // The link works once.
    let again = gate
        .http
        .post(&approve)
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);

    // The client address and user agent are kept with the answer.
    let stored = gate
        .state
        .store
        .get_run("default", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.approvals[0].client_addr.as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        stored.approvals[0].user_agent.as_deref(),
        Some("test-browser/1.0")
    );

    // Executed, then the receipt names the approver and channel, and verifies.
    let (status, _) = gate
        .post_json(
            &format!("/v1/runs/{id}/executed"),
            Some(&agent),
            &json!({"execution_result": {"sent": true}}),
        )
        .await;
    assert_eq!(status, 200);
    let signed = gate
        .get_json(&format!("/v1/runs/{id}/receipt"), &agent)
        .await;
    assert_eq!(signed["receipt"]["approvals"][0]["approver"], "alice");
    assert_eq!(signed["receipt"]["approvals"][0]["channel"], "email");
    assert_eq!(
        signed["receipt"]["decision"]["governance_status"],
        "approved"
    );
    receipts::verify(&signed, &[gate.state.signer.public().clone()]).unwrap();
}

// ---------------------------------------------------------------- slack

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

// ---------------------------------------------------------------- webhooks

/// One webhook request: headers and body.
type Seen = (HashMap<String, String>, String);

#[derive(Clone, Default)]
struct Hooks {
    seen: Arc<Mutex<Vec<Seen>>>,
    fail_first: Arc<Mutex<u32>>,
}

async fn receiver(State(h): State<Hooks>, headers: HeaderMap, body: String) -> StatusCode {
    let hs = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    h.seen.lock().unwrap().push((hs, body));
    let mut left = h.fail_first.lock().unwrap();
    if *left > 0 {
        *left -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}

async fn webhook_receiver(fail_first: u32) -> (Hooks, String) {
    let hooks = Hooks::default();
    *hooks.fail_first.lock().unwrap() = fail_first;
    let app = Router::new()
        .route("/hook", post(receiver))
        .with_state(hooks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hooks, url)
}

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The `ops` webhook, signed with [`WHSEC`], sending to `url`.
fn ops_webhook(url: &str) -> WebhookConfig {
    WebhookConfig {
        name: "ops".into(),
        url: url.to_owned(),
        secret: Some(WHSEC.into()),
        secret_env: None,
    }
}

fn verify_with_standardwebhooks(headers: &HashMap<String, String>, body: &str) {
    assert!(
        python_package("standardwebhooks", "standardwebhooks"),
        "standardwebhooks (PyPI) is needed"
    );
    let script = "import json,sys\nfrom standardwebhooks.webhooks import Webhook\nd=json.load(sys.stdin)\nWebhook(d['secret']).verify(d['body'], d['headers'])\nprint('verified')\n";
    let input = json!({"secret": WHSEC, "body": body, "headers": {
        "webhook-id": headers["webhook-id"], "webhook-timestamp": headers["webhook-timestamp"], "webhook-signature": headers["webhook-signature"]}});
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks rejected the signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn webhook_is_signed_and_its_answer_url_works_once() {
    let (hooks, url) = webhook_receiver(0).await;
    let gate = start(POLICY, |c, _| {
        c.workspaces[0].webhooks = vec![ops_webhook(&url)];
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "send_invoice_reminder", "alice").await;
    gate.wait_run(&agent, &id, "the webhook", |r| {
        sent(r, "@webhook:ops", "webhook")
    })
    .await;
    let (headers, body) = hooks.seen.lock().unwrap()[0].clone();
    verify_with_standardwebhooks(&headers, &body);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["data"]["run_id"], id.as_str());
    let answer_url = doc["data"]["answer_url"].as_str().unwrap().to_owned();
    let path = answer_url.trim_start_matches(&gate.base).to_owned();

    let (s, e) = gate
        .post_json(
            &path,
            None,
            &json!({"decision": "approve", "approver": "mallory"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("not_an_approver"))
    );
    let (s, e) = gate
        .post_json(
            &path,
            None,
            &json!({"decision": "approve", "approver": "alice"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("self_approval")),
        "the actor can't approve through a webhook"
    );
    let (s, ok) = gate
        .post_json(
            &path,
            None,
            &json!({"decision": "approve", "approver": "bob", "comment": "ok from the ticket"}),
        )
        .await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["outcome"], "recorded");
    assert_eq!(ok["run"]["governance_status"], "approved");
    assert_eq!(ok["run"]["approvals"][0]["channel"], "webhook");
    let (s, e) = gate
        .post_json(
            &path,
            None,
            &json!({"decision": "reject", "approver": "bob"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("token_used")),
        "the answer URL works once"
    );
}

#[tokio::test]
async fn quorum_two_counts_each_approver_once_and_refuses_self_approval_by_link() {
    let (hooks, url) = webhook_receiver(0).await;
    let gate = start(POLICY, |c, _| {
        c.console = true;
        c.workspaces[0].webhooks = vec![ops_webhook(&url)];
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "mark_invoice_paid", "finance_agent").await;
    let run = gate
        .wait_run(&agent, &id, "console and webhook deliveries", |r| {
            sent(r, "alice", "console")
                && sent(r, "bob", "console")
                && sent(r, "@webhook:ops", "webhook")
        })
        .await;
    assert_eq!(run["approval"]["quorum"], 2);
    let first_try = run["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["approver"] == "alice" && d["channel"] == "console")
        .unwrap();
    assert_eq!(first_try["attempts"], 1, "sent at the first try: {run}");
    let token = |approver: &str| {
        let d = run["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["approver"] == approver)
            .unwrap();
        gate.state
            .token_secret
            .token_for(d["delivery_id"].as_str().unwrap())
    };
    let (alice, bob) = (token("alice"), token("bob"));
    let (s, v) = gate
        .post_json(
            &format!("/v1/approvals/{alice}"),
            None,
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(
        (s, v["run"]["governance_status"].as_str()),
        (200, Some("pending_approval")),
        "{v}"
    );
    let page = gate
        .http
        .post(format!("{}/a/{alice}", gate.base))
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 410, "a used token stays used");
    // alice answers again through another channel (the webhook's answer URL).
    let hook: Value = serde_json::from_str(&hooks.seen.lock().unwrap()[0].1).unwrap();
    let path = hook["data"]["answer_url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&gate.base)
        .to_owned();
    let (s, v) = gate
        .post_json(
            &path,
            None,
            &json!({"decision": "approve", "approver": "alice"}),
        )
        .await;
    assert_eq!((s, v["outcome"].as_str()), (200, Some("duplicate")), "{v}");
    let run = gate.run(&agent, &id).await;
    assert_eq!(
        run["governance_status"], "pending_approval",
        "the same approver twice stays pending"
    );
    assert_eq!(
        run["approvals"].as_array().unwrap().len(),
        2,
        "both answers are recorded"
    );
    assert_eq!(run["approvals"][1]["counted"], false);
    let (s, v) = gate
        .post_json(
            &format!("/v1/approvals/{bob}"),
            None,
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(
        (s, v["run"]["governance_status"].as_str()),
        (200, Some("approved"))
    );

    // Self-approval through a link: refused, and the link stays usable.
    let own = propose(&gate, &agent, "mark_invoice_paid", "bob").await;
    let run = gate
        .wait_run(&agent, &own, "console deliveries", |r| {
            sent(r, "bob", "console") && sent(r, "alice", "console")
        })
        .await;
    let bob_token = console_token(&gate, &run, "bob");
    // Bob's page says why he cannot answer and offers no buttons.
    let html = confirmation_page(&gate, &bob_token).await;
    assert!(
        html.contains(
            "You proposed this action, so you cannot answer it.</strong> \
             Another member of controllers decides."
        ),
        "{html}"
    );
    assert!(!html.contains("<form"), "{html}");
    assert!(!html.contains("<button"), "{html}");
    let resp = gate
        .http
        .post(format!("{}/a/{bob_token}", gate.base))
        .form(&[("decision", "approve"), ("c", "console")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("cannot approve your own request")
    );
    let (s, e) = gate
        .post_json(
            &format!("/v1/approvals/{bob_token}"),
            None,
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("self_approval"))
    );
    assert_eq!(gate.run(&agent, &own).await["approvals"], json!([]));
    // Once alice has rejected it, bob's page says it is decided and still
    // offers him nothing, without claiming anyone else will decide.
    let alice_own = console_token(&gate, &run, "alice");
    let (s, v) = gate
        .post_json(
            &format!("/v1/approvals/{alice_own}"),
            None,
            &json!({"decision": "reject"}),
        )
        .await;
    assert_eq!(
        (s, v["run"]["governance_status"].as_str()),
        (200, Some("rejected")),
        "{v}"
    );
    let html = confirmation_page(&gate, &bob_token).await;
    assert!(html.contains("This request is already rejected."), "{html}");
    assert!(
        html.contains("You proposed this action, so you cannot answer it.</strong></p>"),
        "{html}"
    );
    assert!(!html.contains("Another member"), "{html}");
    assert!(!html.contains("<button"), "{html}");
}

#[tokio::test]
async fn escalation_asks_the_next_group_later_and_expiry_ends_the_run() {
    let gate = start(POLICY, |c, _| c.console = true).await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "send_invoice_reminder", "finance_agent").await;
    let run = gate
        .wait_run(&agent, &id, "first deliveries", |r| {
            sent(r, "alice", "console")
        })
        .await;
    assert_eq!(
        run["approval"]["approvers"],
        json!(["alice", "bob", "carol"])
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !sent(&gate.run(&agent, &id).await, "carol", "console"),
        "carol is asked only after 4h"
    );

    gate.clock
        .advance(chrono::Duration::hours(4) + chrono::Duration::minutes(1));
    gate.wait_run(&agent, &id, "the escalation", |r| {
        sent(r, "carol", "console")
    })
    .await;

    gate.clock.advance(chrono::Duration::hours(21));
    let run = gate
        .wait_run(&agent, &id, "expiry", |r| {
            r["governance_status"] == "expired"
        })
        .await;
    assert_eq!(run["executable"], false);
    let carol = run["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["approver"] == "carol")
        .unwrap();
    let token = gate
        .state
        .token_secret
        .token_for(carol["delivery_id"].as_str().unwrap());
    let (s, e) = gate
        .post_json(
            &format!("/v1/approvals/{token}"),
            None,
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("token_expired"))
    );
    let (s, _) = gate
        .post_json(
            &format!("/v1/runs/{id}/executed"),
            Some(&agent),
            &json!({"execution_result": 1}),
        )
        .await;
    assert_eq!(s, 409, "an expired run never executes");
}

// ------------------------------------------------ retries across a restart

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_gate(config: &std::path::Path) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test]
async fn delivery_is_retried_after_failures_and_a_restart_without_duplicates() {
    let (hooks, url) = webhook_receiver(2).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/p.yaml"), POLICY).unwrap();
    let port = free_port();
    let config = dir.path().join("countersign.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nconsole: false\ndelivery: {{ base_delay: 1s, max_delay: 2s, poll_interval: 100ms }}\nworkspaces:\n  default:\n    policies: policies\n    webhooks:\n      - {{ name: ops, url: \"{url}\", secret: {WHSEC} }}\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "keys",
            "create",
            "--workspace",
            "default",
            "--role",
            "agent",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let wait_up = || async {
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gate did not start");
    };
    let gate = spawn_gate(&config);
    wait_up().await;
    let run: Value = http
        .post(format!("{base}/v1/intercept"))
        .bearer_auth(&key)
        .json(&json!({"action": "send_invoice_reminder", "payload": {"amount": 900}, "actor": "finance_agent"}))
        .send().await.unwrap().json().await.unwrap();
    let id = run["run_id"].as_str().unwrap().to_owned();
    // Wait for the first failed attempt, then kill the gate mid-retry.
    for _ in 0..100 {
        if !hooks.seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hooks.seen.lock().unwrap().len(), 1);
    drop(gate);
    let _gate = spawn_gate(&config);
    wait_up().await;
    let mut view = Value::Null;
    for _ in 0..200 {
        view = http
            .get(format!("{base}/v1/runs/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["deliveries"][0]["status"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = &view["deliveries"][0];
    assert_eq!(d["status"], "sent", "{view}");
    assert_eq!(
        d["attempts"], 3,
        "two failed attempts, then the one that worked: {view}"
    );
    assert_eq!(
        d["last_error"].as_str().map(|e| e.contains("500")),
        Some(true),
        "{view}"
    );
    let seen = hooks.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        3,
        "two failures and one success, nothing sent twice after success"
    );
    let ids: std::collections::HashSet<&str> =
        seen.iter().map(|(h, _)| h["webhook-id"].as_str()).collect();
    assert_eq!(
        ids.len(),
        1,
        "one stable webhook-id across attempts and the restart"
    );
}

#[tokio::test]
async fn teams_links_go_only_to_a_members_own_chat_never_to_the_shared_channel() {
    let (channel, channel_url) = webhook_receiver(0).await;
    let (personal, personal_url) = webhook_receiver(0).await;
    let policy = POLICY.replace(
        "- { id: bob, email: bob@example.com, slack: U0BOB }",
        &format!(
            "- {{ id: bob, email: bob@example.com, slack: U0BOB, teams: \"{personal_url}\" }}"
        ),
    );
    let gate = start(&policy, |c, _| {
        c.workspaces[0].teams_workflow_url = Some(channel_url.clone())
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "send_invoice_reminder", "finance_agent").await;
    gate.wait_run(&agent, &id, "Teams cards", |r| {
        sent(r, "@teams-channel", "teams") && sent(r, "bob", "teams")
    })
    .await;
    let shared = channel.seen.lock().unwrap().clone();
    assert_eq!(shared.len(), 1, "one card per run in the shared channel");
    let card: Value = serde_json::from_str(&shared[0].1).unwrap();
    assert_eq!(
        card["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert!(
        card.to_string()
            .replace("\\\\_", "_")
            .contains("send_invoice_reminder"),
        "{card}"
    );
    assert!(
        !shared[0].1.contains("/a/"),
        "no approval link in a shared channel: {}",
        shared[0].1
    );
    let mine = personal.seen.lock().unwrap().clone();
    assert_eq!(mine.len(), 1);
    assert!(
        mine[0].1.contains(&format!("{}/a/", gate.base)),
        "bob's own chat gets his links"
    );
    assert!(mine[0].1.contains("d=approve") && mine[0].1.contains("d=reject"));
}

#[tokio::test]
async fn a_burst_of_requests_is_delivered_in_one_pass_not_a_batch_per_tick() {
    let gate = start(POLICY, |c, _| {
        c.console = true;
        c.delivery.poll_interval = Duration::from_secs(1);
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(propose(&gate, &agent, "mark_invoice_paid", "finance_agent").await);
    }
    // 120 deliveries (alice and bob for each run): several batches, all of
    // them within one or two ticks of the worker.
    let started = std::time::Instant::now();
    loop {
        let pending = gate
            .state
            .store
            .due_deliveries(gate.clock.now(), 500)
            .await
            .unwrap()
            .len();
        if pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{pending} deliveries still waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = gate.run(&agent, ids.last().unwrap()).await;
    assert!(
        sent(&last, "alice", "console") && sent(&last, "bob", "console"),
        "{last}"
    );
}

/// A delivery planned before tokens carried their delivery id is stored
/// under the bare hash of its MAC: the worker keeps sending that token, and
/// the token still answers, while the new-format token of the same delivery
/// (a different key) finds nothing.
#[tokio::test]
async fn a_token_of_the_first_format_still_answers_its_delivery() {
    use countersign_gate::approvals::tokens::{approval_token_key, token_hash};
    use countersign_store::{
        ApprovalRequirement, ApproverRef, DecisionRecord, GovernanceStatus, NewDelivery, NewRun,
        Proposal,
    };
    let gate = start(POLICY, |c, _| c.console = true).await;
    let agent = gate.key(Role::Agent).await;
    let now = gate.clock.now();
    let delivery_id = "dlv_legacy0000000000000000000000001".to_owned();
    // What the worker sends for a delivery stored under a first-format key.
    let legacy = gate
        .state
        .token_secret
        .token_for_stored(&delivery_id, Some(&"0".repeat(64)));
    assert!(!legacy.contains('.'), "{legacy}");
    assert_eq!(approval_token_key(&legacy), token_hash(&legacy));
    gate.state
        .store
        .create_run(NewRun {
            proposal: Proposal {
                workspace: "default".into(),
                run_id: "run_legacy1".into(),
                action: "send_invoice_reminder".into(),
                actor: Some("finance_agent".into()),
                source: None,
                reasoning: None,
                payload_json: r#"{"amount":900}"#.into(),
                payload_hash: token_hash(r#"{"amount":900}"#),
                payload_summary: "amount: 900".into(),
                idempotency_key: None,
                request_hash: token_hash("legacy request"),
                decision: DecisionRecord {
                    governance_status: GovernanceStatus::PendingApproval,
                    rule: Some("large-amount".into()),
                    reason: "Reminders above $500 need a finance lead".into(),
                    policy_version: "test".into(),
                    risk: Some("medium".into()),
                    details: json!({}),
                },
                approval: Some(ApprovalRequirement {
                    group: "finance-leads".into(),
                    quorum: 1,
                    expires_at: now + chrono::Duration::hours(24),
                    approvers: vec![ApproverRef {
                        id: "alice".into(),
                        email: Some("alice@example.com".into()),
                        slack: None,
                    }],
                }),
                created_at: now,
            },
            deliveries: vec![NewDelivery {
                delivery_id: delivery_id.clone(),
                approver_id: "alice".into(),
                channel: "console".into(),
                token_hash: Some(token_hash(&legacy)),
                next_attempt_at: now,
            }],
        })
        .await
        .unwrap();
    let new_format = gate.state.token_secret.token_for(&delivery_id);
    let (s, e) = gate
        .post_json(
            &format!("/v1/approvals/{new_format}"),
            None,
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(s, 404, "{e}");
    let (s, ok) = gate
        .post_json(
            &format!("/v1/approvals/{legacy}"),
            None,
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["outcome"], "recorded");
    let run = gate.run(&agent, "run_legacy1").await;
    assert_eq!(run["governance_status"], "approved", "{run}");
    assert_eq!(run["approvals"][0]["approver"], "alice", "{run}");
}

/// More deliveries fall due than one pass of the worker takes (64 batches
/// of 32): one tick sends them all instead of leaving a backlog that grows
/// under load.
#[tokio::test]
async fn one_tick_sends_a_backlog_larger_than_a_pass() {
    let (hooks, url) = webhook_receiver(0).await;
    let gate = start(POLICY, |c, _| {
        c.console = false;
        c.rate_limit = countersign_gate::config::RateLimit {
            per_second: 1_000_000,
            burst: 1_000_000,
        };
        // Only the tick at start-up, before any run exists: the test drives
        // the next one itself.
        c.delivery.poll_interval = Duration::from_secs(3600);
        c.workspaces[0].webhooks = vec![ops_webhook(&url)];
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    const RUNS: usize = 64 * 32 + 100;
    let body = json!({"action": "send_invoice_reminder", "payload": {"amount": 900}, "actor": "finance_agent"});
    for chunk in 0..RUNS.div_ceil(50) {
        let n = 50.min(RUNS - chunk * 50);
        let sends = (0..n).map(|_| gate.post_json("/v1/intercept", Some(&agent), &body));
        for (status, run) in futures_util::future::join_all(sends).await {
            assert_eq!(status, 201, "{run}");
        }
    }
    let now = gate.clock.now();
    let due = gate.state.store.due_deliveries(now, 1000).await.unwrap();
    assert_eq!(due.len(), 1000, "the backlog is due");
    assert!(hooks.seen.lock().unwrap().is_empty(), "nothing sent yet");
    countersign_gate::approvals::worker::drain(&gate.state).await;
    let left = gate.state.store.due_deliveries(now, 1000).await.unwrap();
    assert!(left.is_empty(), "{} deliveries still due", left.len());
    assert_eq!(hooks.seen.lock().unwrap().len(), RUNS);
}
