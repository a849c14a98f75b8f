//! Approvals through workspace webhooks: deliveries signed as the
//! `standardwebhooks` package checks them, and a single-use answer URL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::collections::HashMap;
use std::process::{Command, Stdio};

use countersign_store::Role;
use serde_json::{Value, json};

use crate::support::approvals::{POLICY, WHSEC, ops_webhook, propose, sent, webhook_receiver};
use crate::support::{python_package, start};

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

/// Each new checkpoint is pushed to the workspace's webhooks as a signed
/// `audit.checkpoint` event, the note exactly as signed; turned off, none is.
#[tokio::test]
async fn checkpoints_are_pushed_to_the_workspaces_webhooks() {
    let (hooks, url) = webhook_receiver(0).await;
    let gate = start(POLICY, |c, _| {
        c.workspaces[0].webhooks = vec![ops_webhook(&url)];
        c.audit.push_checkpoints = true;
        c.audit.checkpoint_interval = std::time::Duration::from_millis(100);
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    propose(&gate, &agent, "send_invoice_reminder", "alice").await;
    let mut pushed = None;
    for _ in 0..100 {
        let seen = hooks.seen.lock().unwrap().clone();
        if let Some((headers, body)) = seen
            .into_iter()
            .find(|(_, b)| b.contains("\"audit.checkpoint\""))
        {
            pushed = Some((headers, body));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (headers, body) = pushed.expect("an audit.checkpoint push");
    verify_with_standardwebhooks(&headers, &body);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["data"]["workspace"], "default");
    let size = doc["data"]["size"].as_u64().unwrap();
    let saved = gate
        .state
        .store
        .checkpoint_at_or_before("default", size)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc["data"]["checkpoint"], saved.note.as_str());

    let (quiet_hooks, quiet_url) = webhook_receiver(0).await;
    let quiet = start(POLICY, |c, _| {
        c.workspaces[0].webhooks = vec![ops_webhook(&quiet_url)];
        c.audit.push_checkpoints = false;
        c.audit.checkpoint_interval = std::time::Duration::from_millis(100);
    })
    .await;
    let agent = quiet.key(Role::Agent).await;
    let id = propose(&quiet, &agent, "send_invoice_reminder", "alice").await;
    quiet
        .wait_run(&agent, &id, "the webhook", |r| {
            sent(r, "@webhook:ops", "webhook")
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        quiet
            .state
            .store
            .latest_checkpoint("default")
            .await
            .unwrap()
            .is_some(),
        "checkpoints are still signed"
    );
    assert!(
        !quiet_hooks
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, b)| b.contains("audit.checkpoint")),
        "nothing pushed when turned off"
    );
}
