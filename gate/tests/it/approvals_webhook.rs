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
