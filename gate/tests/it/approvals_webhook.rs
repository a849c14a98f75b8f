//! Approvals through workspace webhooks: deliveries signed as the
//! `standardwebhooks` package checks them, and an answer URL that takes
//! one answer from each eligible approver.
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
        (409, Some("already_answered")),
        "the answer URL takes one answer per approver"
    );
    let run = gate.run(&agent, &id).await;
    assert_eq!(run["approvals"].as_array().unwrap().len(), 1, "{run}");
}

/// Regression: one answer spent the run's only webhook answer URL, so a
/// webhook-only team could never reach a quorum of 2.
#[tokio::test]
async fn a_webhook_team_reaches_a_quorum_of_two_one_answer_per_approver() {
    let (hooks, url) = webhook_receiver(0).await;
    let gate = start(POLICY, |c, _| {
        c.workspaces[0].webhooks = vec![ops_webhook(&url)];
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "mark_invoice_paid", "finance_agent").await;
    gate.wait_run(&agent, &id, "the webhook", |r| {
        sent(r, "@webhook:ops", "webhook")
    })
    .await;
    let (_, body) = hooks.seen.lock().unwrap()[0].clone();
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["data"]["approvers"],
        json!([{"id": "alice", "eligible_from": null}, {"id": "bob", "eligible_from": null}]),
        "the event lists who may answer"
    );
    let path = doc["data"]["answer_url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&gate.base)
        .to_owned();
    let answer = |approver: &'static str| {
        let (gate, path) = (&gate, &path);
        async move {
            gate.post_json(
                path,
                None,
                &json!({"decision": "approve", "approver": approver}),
            )
            .await
        }
    };
    let (s, first) = answer("alice").await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["outcome"], "recorded");
    assert_eq!(first["run"]["governance_status"], "pending_approval");
    let (s, again) = answer("alice").await;
    assert_eq!(
        (s, again["error"]["code"].as_str()),
        (409, Some("already_answered")),
        "{again}"
    );
    let (s, second) = answer("bob").await;
    assert_eq!(s, 200, "the duplicate did not spend bob's answer: {second}");
    assert_eq!(second["outcome"], "recorded");
    assert_eq!(second["run"]["governance_status"], "approved");
    let run = gate.run(&agent, &id).await;
    let approvals = run["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 2, "nothing recorded for the duplicate");
    assert!(approvals.iter().all(|a| a["channel"] == "webhook"));
}

/// Regression: a member of the escalation group approved through the
/// webhook answer URL at once, while their email was held for 4 hours.
#[tokio::test]
async fn escalation_members_answer_only_after_escalate_after() {
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
    let (_, body) = hooks.seen.lock().unwrap()[0].clone();
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["data"]["approvers"],
        json!([
            {"id": "bob", "eligible_from": null},
            {"id": "carol", "eligible_from": "2026-05-26T13:00:00Z"},
        ]),
        "the actor is not listed; carol only from the escalation time"
    );
    let path = doc["data"]["answer_url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&gate.base)
        .to_owned();
    let carol = json!({"decision": "approve", "approver": "carol"});
    let (s, e) = gate.post_json(&path, None, &carol).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("not_yet_eligible")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2026-05-26T13:00:00Z"),
        "the refusal says when: {e}"
    );
    assert_eq!(gate.run(&agent, &id).await["approvals"], json!([]));
    gate.clock.advance(chrono::Duration::hours(4));
    let (s, ok) = gate.post_json(&path, None, &carol).await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["run"]["governance_status"], "approved");
}

/// Regression (issue 16): identities were compared by bytes (trimmed,
/// lower-cased), so an actor spelled `ａｌｉｃｅ`, `ali\u{200b}ce`, `ALİCE`
/// or `Alice Ng` (her policy name) could approve as `alice` through a
/// webhook answer URL. Compared by skeleton, each is refused.
#[tokio::test]
async fn lookalike_actors_cannot_approve_as_themselves_through_a_webhook() {
    let (hooks, url) = webhook_receiver(0).await;
    let gate = start(POLICY, |c, _| {
        c.workspaces[0].webhooks = vec![ops_webhook(&url)];
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    for (i, actor) in ["ａｌｉｃｅ", "ali\u{200b}ce", "ALİCE", "Alice Ng"]
        .into_iter()
        .enumerate()
    {
        let id = propose(&gate, &agent, "send_invoice_reminder", actor).await;
        gate.wait_run(&agent, &id, "the webhook", |r| {
            sent(r, "@webhook:ops", "webhook")
        })
        .await;
        let body = hooks.seen.lock().unwrap()[i].1.clone();
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["data"]["run_id"], id.as_str());
        let answer_url = doc["data"]["answer_url"].as_str().unwrap().to_owned();
        let path = answer_url.trim_start_matches(&gate.base).to_owned();
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
            "{actor:?} is alice"
        );
        let run = gate.run(&agent, &id).await;
        assert_eq!(run["governance_status"], "pending_approval");
    }
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
