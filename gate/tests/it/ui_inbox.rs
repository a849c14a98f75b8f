//! The dashboard's approvals inbox over real HTTP: the same rules as every
//! other channel, answers counted once, quorum, expiry and aliases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use countersign_gate::clock::Clock;
use countersign_store::Role;
use serde_json::json;

use crate::support::start;
use crate::support::ui::{POLICY, Visitor, attr_values, csrf, propose};

const QUORUM_POLICY: &str = r#"version: 1
approvers:
  controllers:
    members:
      - { id: alice, name: Alice Ng, email: alice@example.com }
      - { id: bob, email: bob@example.com }
    quorum: 2
    timeout: 1h
actions:
  mark_paid:
    approvers: controllers
    rules:
      - name: four-eyes
        decision: require_approval
"#;

#[tokio::test]
async fn the_inbox_applies_the_same_rules_as_every_channel() {
    let gate = start(POLICY, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let admin = gate.key(Role::Admin).await;
    // alice proposed one of them herself.
    let own = propose(&gate, &agent, 900, "alice").await;
    let other = propose(&gate, &agent, 500, "agent-7").await;
    let small = propose(&gate, &agent, 5, "agent-7").await;

    let mut alice = Visitor::new(&gate);
    alice.sign_in_as("Alice@Example.com").await;
    let inbox = alice.get("/ui/inbox").await;
    let items = attr_values(&inbox.body, "data-run-id");
    assert!(items.contains(&own) && items.contains(&other), "{items:?}");
    assert!(!items.contains(&small), "allowed runs wait on nobody");
    assert!(inbox.body.contains("data-testid=\"own-request\""));
    assert_eq!(
        inbox.body.matches("data-testid=\"approve\"").count(),
        1,
        "one approve button: not on her own request"
    );
    // The agent's text is escaped, never markup.
    assert!(
        inbox.body.contains("customer &lt;b&gt;asked&lt;/b&gt;")
            || inbox.body.contains("customer &#60;b&#62;")
    );
    let token = csrf(&inbox.body);

    // Forcing an answer to her own request is refused and records nothing.
    let forced = alice.answer(&own, &token, "approve").await;
    assert_eq!(forced.status, 403, "{}", forced.body);
    assert!(forced.body.contains("your own request"));
    let run = gate.run(&agent, &own).await;
    assert_eq!(run["governance_status"], "pending_approval");
    assert_eq!(run["approvals"], json!([]));

    let answered = alice
        .post(
            &format!("/ui/inbox/default/{other}"),
            &[
                ("csrf", &token),
                ("decision", "approve"),
                ("comment", "ok by me"),
            ],
        )
        .await;
    assert_eq!(answered.status, 303);
    let back = alice.get(answered.location.as_deref().unwrap()).await;
    assert!(back.body.contains("data-testid=\"flash\""));
    assert!(back.body.contains("You approved"));
    assert!(!attr_values(&back.body, "data-run-id").contains(&other));
    let run = gate.run(&agent, &other).await;
    assert_eq!(run["governance_status"], "approved");
    assert_eq!(run["approvals"][0]["approver"], "alice");
    assert_eq!(run["approvals"][0]["channel"], "dashboard");
    assert_eq!(run["approvals"][0]["comment"], "ok by me");

    // An answer after the decision is recorded but changes nothing.
    let mut bob = Visitor::new(&gate);
    bob.sign_in_as("bob@example.com").await;
    let bob_token = csrf(&bob.get("/ui/inbox").await.body);
    let late = bob.answer(&other, &bob_token, "reject").await;
    assert!(late.location.unwrap().contains("answered=decided"));
    assert_eq!(
        gate.run(&agent, &other).await["governance_status"],
        "approved"
    );

    // A non-member cannot answer, even with a valid session and token.
    let mut eve = Visitor::new(&gate);
    eve.sign_in_as("eve@example.com").await;
    let eve_token = csrf(&eve.get("/ui/inbox").await.body);
    assert_eq!(eve.get("/ui/w/default").await.status, 404);
    let refused = eve.answer(&own, &eve_token, "approve").await;
    assert_eq!(refused.status, 404);

    // Admins see what is pending but cannot answer.
    let mut boss = Visitor::new(&gate);
    boss.sign_in_with_key(&admin).await;
    let boss_inbox = boss.get("/ui/inbox").await;
    assert!(attr_values(&boss_inbox.body, "data-run-id").contains(&own));
    assert!(!boss_inbox.body.contains("data-testid=\"approve\""));
    let boss_token = csrf(&boss_inbox.body);
    let tried = boss.answer(&own, &boss_token, "approve").await;
    assert_eq!(tried.status, 403);

    // Once expired, the run leaves the inbox and cannot be answered.
    gate.clock.advance(chrono::Duration::hours(2));
    gate.state.store.expire_due(gate.clock.now()).await.unwrap();
    let later = alice.get("/ui/inbox").await;
    assert!(!attr_values(&later.body, "data-run-id").contains(&own));
}

#[tokio::test]
async fn dashboard_answers_count_once_respect_quorum_expiry_and_aliases() {
    let gate = start(QUORUM_POLICY, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let new_run = |actor: &str, note: &str| json!({"action": "mark_paid", "payload": {"invoice": note, "actor": actor}});
    let (_, r) = gate
        .post_json(
            "/v1/intercept",
            Some(&agent),
            &new_run("agent-7", "INV-1 \u{202E}0001"),
        )
        .await;
    let id = r["run_id"].as_str().unwrap().to_owned();
    let (_, r) = gate
        .post_json("/v1/intercept", Some(&agent), &new_run("ALİCE NG", "INV-2"))
        .await;
    let alias_own = r["run_id"].as_str().unwrap().to_owned();

    let mut alice = Visitor::new(&gate);
    alice.sign_in_as("alice@example.com").await;
    let inbox = alice.get("/ui/inbox").await;
    // A right-to-left override in the payload is shown, not obeyed.
    assert!(inbox.body.contains("[U+202E]"), "{}", inbox.body);
    assert!(!inbox.body.contains('\u{202E}'));
    let token = csrf(&inbox.body);

    // Proposed under her name, spelled another way: still her own request.
    let own = alice.answer(&alias_own, &token, "approve").await;
    assert_eq!(own.status, 403);
    assert_eq!(gate.run(&agent, &alias_own).await["approvals"], json!([]));

    let first = alice.answer(&id, &token, "approve").await;
    assert!(
        first
            .location
            .unwrap()
            .contains("answered=approved_waiting")
    );
    assert_eq!(
        gate.run(&agent, &id).await["governance_status"],
        "pending_approval"
    );
    // Answering again records nothing: one answer per approver.
    for decision in ["approve", "reject"] {
        let again = alice.answer(&id, &token, decision).await;
        assert!(again.location.unwrap().contains("answered=duplicate"));
    }
    let run = gate.run(&agent, &id).await;
    assert_eq!(run["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(
        run["governance_status"], "pending_approval",
        "one person, one vote"
    );

    let mut bob = Visitor::new(&gate);
    bob.sign_in_as("bob@example.com").await;
    let bob_inbox = bob.get("/ui/inbox").await;
    // Bob's card says who else has answered.
    assert!(
        bob_inbox.body.contains("data-testid=\"answers\"")
            && bob_inbox
                .body
                .contains("<strong>alice</strong> approved just now"),
        "{}",
        bob_inbox.body
    );
    let bob_token = csrf(&bob_inbox.body);
    let second = bob.answer(&id, &bob_token, "approve").await;
    assert!(second.location.unwrap().contains("answered=approved&"));
    assert_eq!(gate.run(&agent, &id).await["governance_status"], "approved");

    // Past its expiry a run cannot be answered, even before the sweep.
    let (_, r) = gate
        .post_json("/v1/intercept", Some(&agent), &new_run("agent-7", "INV-3"))
        .await;
    let late = r["run_id"].as_str().unwrap().to_owned();
    gate.clock.advance(chrono::Duration::minutes(61));
    let after = bob.answer(&late, &bob_token, "approve").await;
    assert!(after.location.unwrap().contains("answered=decided"));
    assert_eq!(gate.run(&agent, &late).await["approvals"], json!([]));
}

/// Issue 16, one person one vote: the same person under two approver ids
/// (here two entries with one email address) could approve through a link
/// or webhook a run proposed under their other id, and count twice towards
/// a quorum of two. Such a policy set no longer loads, so the gate does not
/// start with it, and the error names both entries.
#[tokio::test]
async fn a_person_listed_under_two_ids_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policies");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("policy.yaml"),
        QUORUM_POLICY.replace(
            "      - { id: bob, email: bob@example.com }",
            "      - { id: alice-backup, email: Alice@example.com }\n      - { id: bob, email: bob@example.com }",
        ),
    )
    .unwrap();
    let mut config = countersign_gate::config::Config::defaults();
    config.data_dir = dir.path().join("data");
    config.store =
        countersign_gate::config::StoreUrl::Sqlite(dir.path().join("data/countersign.db"));
    config.workspaces = vec![countersign_gate::config::WorkspaceConfig::new(
        "default", &p,
    )];
    let clock = std::sync::Arc::new(countersign_gate::clock::ManualClock::new(chrono::Utc::now()));
    let Err(countersign_gate::server::StartError::Policies { diagnostics, .. }) =
        countersign_gate::server::build_state(config, clock).await
    else {
        panic!("the gate started with one person under two ids");
    };
    let shown: Vec<String> = diagnostics.iter().map(|d| d.to_plain()).collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].contains("members `alice` and `alice-backup` share the email address"),
        "{shown:?}"
    );
    assert!(shown[0].contains("policy.yaml:6:"), "{shown:?}");
    assert!(
        diagnostics[0]
            .help_text()
            .unwrap()
            .contains("policy.yaml:5:"),
        "the help points at the first entry"
    );
}

/// Regression (found through the webhook URL; the dashboard is held the
/// same way): a member of the escalation group answers only once
/// `escalate_after` has passed.
#[tokio::test]
async fn the_escalation_group_answers_from_the_inbox_only_after_escalate_after() {
    let policy = POLICY
        .replace(
            "    timeout: 1h\n",
            "    timeout: 1h\n    escalate_to: cfo\n    escalate_after: 30m\n  cfo:\n    members:\n      - { id: carol, email: carol@example.com }\n",
        );
    let gate = start(&policy, |_, _| {}).await;
    let agent = gate.key(Role::Agent).await;
    let run = propose(&gate, &agent, 900, "agent-7").await;
    let mut carol = Visitor::new(&gate);
    carol.sign_in_as("carol@example.com").await;
    let inbox = carol.get("/ui/inbox").await;
    assert!(
        attr_values(&inbox.body, "data-run-id").contains(&run),
        "{}",
        inbox.body
    );
    assert!(
        inbox.body.contains("data-testid=\"not-yet\""),
        "{}",
        inbox.body
    );
    assert!(!inbox.body.contains("data-testid=\"approve\""));
    let token = csrf(&inbox.body);
    let early = carol.answer(&run, &token, "approve").await;
    assert_eq!(early.status, 403, "{}", early.body);
    assert!(early.body.contains("only from"), "{}", early.body);
    assert_eq!(gate.run(&agent, &run).await["approvals"], json!([]));

    gate.clock.advance(chrono::Duration::minutes(30));
    let inbox = carol.get("/ui/inbox").await;
    assert!(inbox.body.contains("data-testid=\"approve\""));
    let answered = carol.answer(&run, &token, "approve").await;
    assert_eq!(answered.status, 303, "{}", answered.body);
    assert_eq!(
        gate.run(&agent, &run).await["governance_status"],
        "approved"
    );
}
