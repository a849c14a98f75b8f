//! Approvals through Microsoft Teams: links only in a member's own chat.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use countersign_store::Role;
use serde_json::Value;

use crate::support::approvals::{POLICY, propose, sent, webhook_receiver};
use crate::support::start;

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
