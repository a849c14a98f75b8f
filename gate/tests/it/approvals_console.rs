//! Approvals through console links: quorum, self-approval, escalation,
//! expiry, and links of the first token format.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::time::Duration;

use countersign_gate::clock::Clock;
use countersign_store::Role;
use serde_json::{Value, json};

use crate::support::approvals::{POLICY, ops_webhook, propose, sent, webhook_receiver};
use crate::support::{Gate, start};

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
    // The webhook URL takes one answer per approver, whatever channel the
    // first came through: refused, nothing recorded.
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already_answered")),
        "{v}"
    );
    let run = gate.run(&agent, &id).await;
    assert_eq!(
        run["governance_status"], "pending_approval",
        "the same approver twice stays pending"
    );
    assert_eq!(
        run["approvals"].as_array().unwrap().len(),
        1,
        "the refused answer is not recorded"
    );
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
                context: None,
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
                        name: None,
                        eligible_from: None,
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

/// A comment is counted in characters, not bytes, and the limit is the same
/// on every surface: the JSON API takes the longest comment and refuses one
/// character more (before the single-use token is spent); the link's form
/// offers a textarea of that length and keeps a longer comment's first
/// characters, the cut marked.
#[tokio::test]
async fn the_longest_comment_is_counted_in_characters_on_every_surface() {
    let gate = start(POLICY, |c, _| c.console = true).await;
    let agent = gate.key(Role::Agent).await;
    let id = propose(&gate, &agent, "mark_invoice_paid", "finance_agent").await;
    let run = gate
        .wait_run(&agent, &id, "console deliveries", |r| {
            sent(r, "alice", "console") && sent(r, "bob", "console")
        })
        .await;
    let max = countersign_gate::approvals::record::MAX_COMMENT;
    let (longest, longer) = ("é".repeat(max), "é".repeat(max + 1));

    let alice = console_token(&gate, &run, "alice");
    let (s, e) = gate
        .post_json(
            &format!("/v1/approvals/{alice}"),
            None,
            &json!({"decision": "approve", "comment": longer}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (422, Some("comment")),
        "{e}"
    );
    let (s, v) = gate
        .post_json(
            &format!("/v1/approvals/{alice}"),
            None,
            &json!({"decision": "approve", "comment": longest}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let bob = console_token(&gate, &run, "bob");
    let page = confirmation_page(&gate, &bob).await;
    assert!(page.contains(&format!("maxlength=\"{max}\"")), "{page}");
    let resp = gate
        .http
        .post(format!("{}/a/{bob}", gate.base))
        .form(&[
            ("decision", "approve"),
            ("c", "console"),
            ("comment", longer.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let run = gate.run(&agent, &id).await;
    let comment = |who: &str| {
        run["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["approver"] == who)
            .and_then(|a| a["comment"].as_str())
            .unwrap_or_else(|| panic!("no comment by {who}: {run}"))
            .to_owned()
    };
    assert_eq!(
        comment("alice"),
        longest,
        "the longest comment is kept whole"
    );
    let cut = comment("bob");
    assert_eq!(cut.chars().count(), max);
    assert!(cut.ends_with('…'), "the cut is marked");
}
