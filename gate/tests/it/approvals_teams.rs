//! Approvals through Microsoft Teams: links only in a member's own chat.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, StoreUrl, WorkspaceConfig};
use countersign_gate::server;
use countersign_store::Role;
use serde_json::{Value, json};

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
        c.workspaces[0].teams_workflow_url = Some(channel_url.clone());
        c.link_destinations.allowed_hosts = vec!["127.0.0.1".into()];
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

/// Regression: a policy author could point a member's `teams:` at any URL
/// and receive live approve links. Such a policy set never becomes live:
/// the gate refuses it at start and at reload, naming the member and URL.
#[tokio::test]
async fn a_member_teams_url_the_configuration_does_not_allow_is_refused() {
    let evil = "https://collector.evil.example/hook";
    let bad = POLICY.replace(
        "- { id: bob, email: bob@example.com, slack: U0BOB }",
        &format!("- {{ id: bob, email: bob@example.com, slack: U0BOB, teams: \"{evil}\" }}"),
    );
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("policy.yaml"), &bad).unwrap();
    let mut config = Config::defaults();
    config.data_dir = dir.path().join("data");
    config.store = StoreUrl::Sqlite(dir.path().join("data/countersign.db"));
    config.workspaces = vec![WorkspaceConfig::new("default", &policies)];
    config.link_destinations.allowed_hosts = vec!["prod-00.westeurope.logic.azure.com".into()];
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 26, 9, 0, 0).unwrap(),
    ));
    let err = match server::build_state(config, clock).await {
        Err(e) => e,
        Ok(_) => panic!("the gate started with a Teams URL it does not allow"),
    };
    let diagnostics = match &err {
        server::StartError::Policies { diagnostics, .. } => diagnostics
            .iter()
            .map(countersign_engine::PolicyDiagnostic::to_plain)
            .collect::<Vec<_>>(),
        other => panic!("{other}"),
    };
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert!(diagnostics[0].contains("member `bob`"), "{diagnostics:?}");
    assert!(diagnostics[0].contains(evil), "{diagnostics:?}");
    assert!(diagnostics[0].contains("policy.yaml:6:"), "{diagnostics:?}");

    // A running gate keeps its policies when a reload brings such a URL,
    // and plain http to anything but loopback is refused even if allowed.
    let gate = start(POLICY, |c, _| {
        c.link_destinations.allowed_hosts = vec!["teams.example.com".into()];
    })
    .await;
    let admin = gate.key(Role::Admin).await;
    for url in [evil, "http://teams.example.com/hook"] {
        let policy = POLICY.replace(
            "- { id: bob, email: bob@example.com, slack: U0BOB }",
            &format!("- {{ id: bob, email: bob@example.com, slack: U0BOB, teams: \"{url}\" }}"),
        );
        std::fs::write(gate.dir.path().join("policies/policy.yaml"), policy).unwrap();
        let (status, e) = gate
            .post_json("/v1/policies/reload", Some(&admin), &json!({}))
            .await;
        assert_eq!(status, 422, "{e}");
        let text = e["error"]["diagnostics"].to_string();
        assert!(text.contains("member `bob`") && text.contains(url), "{e}");
    }
    let allowed = POLICY.replace(
        "- { id: bob, email: bob@example.com, slack: U0BOB }",
        "- { id: bob, email: bob@example.com, slack: U0BOB, teams: \"https://teams.example.com/hook\" }",
    );
    std::fs::write(gate.dir.path().join("policies/policy.yaml"), allowed).unwrap();
    let (status, ok) = gate
        .post_json("/v1/policies/reload", Some(&admin), &json!({}))
        .await;
    assert_eq!(status, 200, "{ok}");
}
