//! Approvals by email, end to end against a real SMTP server (aiosmtpd):
//! the link shows a confirmation page, and only its form answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use countersign_gate::receipts;
use countersign_store::Role;
use serde_json::json;

use crate::support::approvals::{POLICY, link, propose, sent};
use crate::support::{mails, smtp_server, start};

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

    // Submitting the form applies the answer. The channel recorded is the
    // delivery's (regression: a `c` field claiming Teams was recorded).
    let resp = gate
        .http
        .post(&approve)
        .header("user-agent", "test-browser/1.0")
        .form(&[
            ("decision", "approve"),
            ("comment", "Checked the ledger"),
            ("c", "teams"),
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
