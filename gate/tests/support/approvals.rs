//! What the approval tests of every channel share: a policy with a
//! four-eyes rule, proposing a run, and reading its deliveries and links.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use countersign_gate::config::WebhookConfig;
use serde_json::{Value, json};

use super::{Gate, Key};

pub const POLICY: &str = r#"version: 1
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

pub async fn propose(gate: &Gate, key: &Key, action: &str, actor: &str) -> String {
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

pub fn sent(run: &Value, approver: &str, channel: &str) -> bool {
    run["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["approver"] == approver && d["channel"] == channel && d["status"] == "sent")
}

pub fn link(mail: &str, decision: &str) -> String {
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

/// One webhook request: headers and body.
pub type Seen = (HashMap<String, String>, String);

#[derive(Clone, Default)]
pub struct Hooks {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub fail_first: Arc<Mutex<u32>>,
}

pub async fn receiver(State(h): State<Hooks>, headers: HeaderMap, body: String) -> StatusCode {
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

pub async fn webhook_receiver(fail_first: u32) -> (Hooks, String) {
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

pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The `ops` webhook, signed with [`WHSEC`], sending to `url`.
pub fn ops_webhook(url: &str) -> WebhookConfig {
    WebhookConfig {
        name: "ops".into(),
        url: url.to_owned(),
        secret: Some(WHSEC.into()),
        secret_env: None,
    }
}
