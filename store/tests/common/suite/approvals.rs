//! Approvals: quorum, refusals, rejection, expiry, deliveries and tokens.

use super::{head_seq, kinds};
use crate::common::{Backend, answer, pending, run, t};
use countersign_store::{
    AnswerDecision::{Approve, Reject},
    AnswerOutcome, EventKind, ExecutionOutcome, ExecutionStatus, GovernanceStatus, NewDelivery,
    Store, StoreError, TokenAnswer, TokenOutcome,
};
use serde_json::json;
use std::sync::Arc;

pub async fn quorum_of_two(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "r", &["a", "b", "c"], 2, t(100)))
        .await
        .unwrap();
    let first = s
        .record_answer("ws", "r", answer("a", Approve), t(1))
        .await
        .unwrap();
    assert!(matches!(first, AnswerOutcome::Recorded(_)));
    assert_eq!(
        first.run().governance_status,
        GovernanceStatus::PendingApproval
    );

    let dup = s
        .record_answer("ws", "r", answer("a", Approve), t(2))
        .await
        .unwrap();
    assert!(matches!(dup, AnswerOutcome::Duplicate(_)), "{dup:?}");
    assert_eq!(
        dup.run().governance_status,
        GovernanceStatus::PendingApproval
    );
    assert!(!dup.run().executable);

    let second = s
        .record_answer("ws", "r", answer("b", Approve), t(3))
        .await
        .unwrap();
    let run = second.run();
    assert!(matches!(second, AnswerOutcome::Recorded(_)));
    assert_eq!(run.governance_status, GovernanceStatus::Approved);
    assert_eq!(run.execution_status, ExecutionStatus::AwaitingExecution);
    assert!(run.executable);
    let counted: Vec<(&str, bool)> = run
        .approvals
        .iter()
        .map(|a| (a.approver_id.as_str(), a.counted))
        .collect();
    assert_eq!(counted, [("a", true), ("a", false), ("b", true)]);
    assert_eq!(run.approvals[2].answered_at, t(3));
    assert_eq!(run.approvals[0].client_addr.as_deref(), Some("127.0.0.1"));

    let stored = s.get_run("ws", "r").await.unwrap().unwrap();
    assert_eq!(&stored, run);
    let events = s.events("ws", 3, 0).await.unwrap();
    assert_eq!(kinds(&events), [EventKind::ApprovalGranted; 3]);
    assert_eq!(events[1].data["counted"], json!(false));
    assert_eq!(events[2].data["governance_status"], json!("approved"));
    assert_eq!(stored.chain.seq, events[2].seq);

    s.report_execution(
        "ws",
        "r",
        ExecutionOutcome::Executed {
            result: json!(null),
        },
        t(4),
    )
    .await
    .unwrap();
}

/// Regression: a member of the escalation group could answer (through the
/// webhook answer URL) before `escalate_after`, while their email was held.
pub async fn escalation_members_answer_only_from_their_time(b: &impl Backend) {
    let s = b.store();
    let mut r = pending("ws", "esc", &["bob", "carol"], 1, t(1000));
    if let Some(a) = r.proposal.approval.as_mut() {
        a.approvers[1].eligible_from = Some(t(100));
    }
    s.create_run(r).await.unwrap();
    let seq = head_seq(&*s, "ws").await;
    let err = s
        .record_answer("ws", "esc", answer("carol", Approve), t(99))
        .await
        .unwrap_err();
    match &err {
        StoreError::NotYetEligible { eligible_from, .. } => assert_eq!(*eligible_from, t(100)),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.http_status(), 403);
    assert!(err.to_string().contains("2030-01-01T00:01:40Z"), "{err}");
    let run = s.get_run("ws", "esc").await.unwrap().unwrap();
    assert!(run.approvals.is_empty(), "a refused answer is not recorded");
    assert_eq!(head_seq(&*s, "ws").await, seq);
    let events = s.events("ws", 0, 10).await.unwrap();
    let requested = events
        .iter()
        .find(|e| e.kind == EventKind::ApprovalRequested)
        .unwrap();
    let recorded_from = requested.data["approvers"][1]["eligible_from"]
        .as_str()
        .unwrap_or_default();
    assert!(
        recorded_from.starts_with("2030-01-01T00:01:40"),
        "{recorded_from}"
    );
    assert!(
        requested.data["approvers"][0]
            .get("eligible_from")
            .is_none()
    );
    // From that time on, the answer counts.
    let ok = s
        .record_answer("ws", "esc", answer("carol", Approve), t(100))
        .await
        .unwrap();
    assert!(matches!(ok, AnswerOutcome::Recorded(_)), "{ok:?}");
}

pub async fn self_approval_and_non_approver(b: &impl Backend) {
    let s = b.store();
    let mut r = pending("ws", "r", &["alice", "bob"], 1, t(100));
    r.proposal.actor = Some("alice".into());
    s.create_run(r).await.unwrap();
    let seq = head_seq(&*s, "ws").await;
    let err = s
        .record_answer("ws", "r", answer("alice", Approve), t(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SelfApproval { .. }), "{err:?}");
    let err = s
        .record_answer("ws", "r", answer("mallory", Approve), t(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAnApprover { .. }), "{err:?}");
    let run = s.get_run("ws", "r").await.unwrap().unwrap();
    assert!(run.approvals.is_empty(), "refused answers are not recorded");
    assert_eq!(run.governance_status, GovernanceStatus::PendingApproval);
    assert_eq!(head_seq(&*s, "ws").await, seq);
    // The actor written another way is still the actor: case and spacing
    // are ignored, and the approver's email or Slack id counts too.
    for (i, actor) in ["  ALICE ", "alice@example.com", "UALICE"]
        .iter()
        .enumerate()
    {
        let id = format!("variant-{i}");
        let mut r = pending("ws", &id, &["alice", "bob"], 1, t(100));
        if let Some(a) = r.proposal.approval.as_mut() {
            a.approvers[0].email = Some("Alice@Example.com".into());
            a.approvers[0].slack = Some("UALICE".into());
        }
        r.proposal.actor = Some((*actor).into());
        s.create_run(r).await.unwrap();
        let err = s
            .record_answer("ws", &id, answer("alice", Approve), t(1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SelfApproval { .. }),
            "{actor}: {err:?}"
        );
    }
    // An approver id may not take the `@` reserved for shared destinations.
    let mut r = pending("ws", "reserved", &["@alice"], 1, t(100));
    r.proposal.actor = None;
    assert!(matches!(
        s.create_run(r).await,
        Err(StoreError::InvalidInput { .. })
    ));
    // An allowed run has no approvers at all.
    s.create_run(run_allowed("ws", "allowed")).await.unwrap();
    assert!(matches!(
        s.record_answer("ws", "allowed", answer("bob", Approve), t(1))
            .await,
        Err(StoreError::NotAnApprover { .. })
    ));
    let ok = s
        .record_answer("ws", "r", answer("bob", Approve), t(2))
        .await
        .unwrap();
    assert_eq!(ok.run().governance_status, GovernanceStatus::Approved);
}

/// Regression (issue 16): an actor spelled to look like the approver, or
/// given as her policy name, got past the no-self-approval check because
/// identities were compared by bytes (trimmed, lower-cased).
pub async fn self_approval_by_lookalike_actor(b: &impl Backend) {
    let s = b.store();
    let disguises = [
        "ａｌｉｃｅ",
        "ali\u{200b}ce",
        "ALİCE",
        "\u{0430}lice",
        "ali\u{202e}ce",
        "Alice Ng",
        "ALICE  NG",
        "alice@EXAMPLE.com",
    ];
    for (i, actor) in disguises.iter().enumerate() {
        let id = format!("lookalike-{i}");
        let mut r = pending("ws", &id, &["alice", "bob"], 1, t(100));
        if let Some(a) = r.proposal.approval.as_mut() {
            a.approvers[0].name = Some("Alice Ng".into());
            a.approvers[0].email = Some("alice@example.com".into());
        }
        r.proposal.actor = Some((*actor).into());
        s.create_run(r).await.unwrap();
        let err = s
            .record_answer("ws", &id, answer("alice", Approve), t(1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SelfApproval { .. }),
            "{actor:?}: {err:?}"
        );
        // Her colleague may still answer, and the name is kept with the run.
        let ok = s
            .record_answer("ws", &id, answer("bob", Approve), t(2))
            .await
            .unwrap();
        assert_eq!(ok.run().governance_status, GovernanceStatus::Approved);
        let stored = s.get_run("ws", &id).await.unwrap().unwrap();
        let approvers = &stored.proposal.approval.as_ref().unwrap().approvers;
        assert_eq!(approvers[0].name.as_deref(), Some("Alice Ng"));
        assert_eq!(approvers[1].name, None);
    }
    // Someone else is not caught by accident.
    let mut r = pending("ws", "other", &["alice", "bob"], 1, t(100));
    r.proposal.actor = Some("alicia".into());
    s.create_run(r).await.unwrap();
    s.record_answer("ws", "other", answer("alice", Approve), t(1))
        .await
        .unwrap();
}

fn run_allowed(ws: &str, id: &str) -> countersign_store::NewRun {
    run(ws, id, GovernanceStatus::Allowed)
}

pub async fn reject_and_already_decided(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "r", &["a", "b"], 2, t(100)))
        .await
        .unwrap();
    s.record_answer("ws", "r", answer("a", Approve), t(1))
        .await
        .unwrap();
    let rejected = s
        .record_answer("ws", "r", answer("b", Reject), t(2))
        .await
        .unwrap();
    assert!(matches!(rejected, AnswerOutcome::Recorded(_)));
    assert_eq!(rejected.run().governance_status, GovernanceStatus::Rejected);
    assert_eq!(
        rejected.run().execution_status,
        ExecutionStatus::NotExecuted
    );
    let last = s
        .events("ws", head_seq(&*s, "ws").await - 1, 1)
        .await
        .unwrap();
    assert_eq!(last[0].kind, EventKind::ApprovalRejected);

    let late = s
        .record_answer("ws", "r", answer("a", Approve), t(3))
        .await
        .unwrap();
    assert!(matches!(late, AnswerOutcome::AlreadyDecided(_)), "{late:?}");
    let run = late.run();
    assert_eq!(run.governance_status, GovernanceStatus::Rejected);
    assert_eq!(run.approvals.len(), 3);
    assert!(!run.approvals[2].counted);
    assert_eq!(
        s.get_run("ws", "r").await.unwrap().unwrap().approvals.len(),
        3
    );
    assert!(matches!(
        s.report_execution(
            "ws",
            "r",
            ExecutionOutcome::Executed { result: json!(1) },
            t(4)
        )
        .await,
        Err(StoreError::Conflict { .. })
    ));
}

pub async fn expiry(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "soon", &["a"], 1, t(100)))
        .await
        .unwrap();
    s.create_run(pending("ws2", "later", &["a"], 1, t(500)))
        .await
        .unwrap();
    s.create_run(pending("ws", "answered", &["a"], 1, t(100)))
        .await
        .unwrap();
    s.record_answer("ws", "answered", answer("a", Approve), t(10))
        .await
        .unwrap();

    assert!(s.expire_due(t(99)).await.unwrap().is_empty());
    let expired = s.expire_due(t(100)).await.unwrap();
    let ids: Vec<&str> = expired.iter().map(|r| r.proposal.run_id.as_str()).collect();
    assert_eq!(ids, ["soon"], "approved runs never expire");
    assert_eq!(expired[0].governance_status, GovernanceStatus::Expired);
    assert_eq!(expired[0].execution_status, ExecutionStatus::NotExecuted);
    assert_eq!(expired[0].updated_at, t(100));
    let stored = s.get_run("ws", "soon").await.unwrap().unwrap();
    assert_eq!(stored.governance_status, GovernanceStatus::Expired);
    let last = s.events("ws", stored.chain.seq - 1, 1).await.unwrap();
    assert_eq!(last[0].kind, EventKind::RunExpired);
    assert!(
        s.expire_due(t(101)).await.unwrap().is_empty(),
        "expires once"
    );

    // An answer after expires_at expires the run on the spot and does not count.
    let late = s
        .record_answer("ws2", "later", answer("a", Approve), t(500))
        .await
        .unwrap();
    assert!(matches!(late, AnswerOutcome::AlreadyDecided(_)), "{late:?}");
    assert_eq!(late.run().governance_status, GovernanceStatus::Expired);
    assert!(!late.run().approvals[0].counted);
    let events = s.events("ws2", 3, 0).await.unwrap();
    assert_eq!(
        kinds(&events),
        [EventKind::RunExpired, EventKind::ApprovalGranted]
    );
    assert!(s.expire_due(t(10_000)).await.unwrap().is_empty());
}

pub async fn concurrent_answers_reach_quorum_once(b: &impl Backend) {
    let s = b.store();
    let approvers: Vec<String> = (0..10).map(|i| format!("ap{i}")).collect();
    let refs: Vec<&str> = approvers.iter().map(String::as_str).collect();
    s.create_run(pending("ws", "r", &refs, 3, t(1000)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for a in approvers.clone() {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            s.record_answer("ws", "r", answer(&a, Approve), t(5)).await
        }));
    }
    let mut recorded = 0;
    let mut late = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            AnswerOutcome::Recorded(_) => recorded += 1,
            AnswerOutcome::AlreadyDecided(_) => late += 1,
            AnswerOutcome::Duplicate(r) => panic!("no approver answered twice: {r:?}"),
        }
    }
    assert_eq!((recorded, late), (3, 7));
    let run = s.get_run("ws", "r").await.unwrap().unwrap();
    assert_eq!(run.governance_status, GovernanceStatus::Approved);
    assert_eq!(run.approvals.iter().filter(|a| a.counted).count(), 3);
    assert_eq!(s.verify_chain("ws").await.unwrap().events, 13);
}

/// The ids of the deliveries due at `now`, oldest due first.
async fn due_ids(s: &Arc<dyn Store>, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    s.due_deliveries(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.delivery_id)
        .collect()
}

/// When the token with this key was spent (`None`: not yet).
async fn used_at(s: &Arc<dyn Store>, key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    s.find_token(key).await.unwrap().unwrap().used_at
}

/// One email delivery per (delivery id, approver), each with a token key in
/// the gate's form, `DELIVERY_ID.hash-of-APPROVER`.
fn token_deliveries(pairs: &[(&str, &str)]) -> Vec<NewDelivery> {
    pairs
        .iter()
        .map(|(id, who)| NewDelivery {
            delivery_id: (*id).into(),
            approver_id: (*who).into(),
            channel: "email".into(),
            token_hash: Some(format!("{id}.hash-of-{who}")),
            next_attempt_at: t(10),
        })
        .collect()
}

/// Tokens whose key names their delivery (`DELIVERY_ID.…`, the form the
/// gate issues) are found, spent once and expire like any other; a key
/// naming a delivery with another token, or no delivery, is unknown.
pub async fn tokens_named_after_their_delivery(b: &impl Backend) {
    let s = b.store();
    let mut r = pending("ws", "r", &["a", "b"], 1, t(1000));
    r.deliveries = token_deliveries(&[("dlv_a", "a"), ("dlv_b", "b")]);
    s.create_run(r).await.unwrap();
    let found = s.find_token("dlv_a.hash-of-a").await.unwrap().unwrap();
    assert_eq!(
        (found.workspace.as_str(), found.run_id.as_str()),
        ("ws", "r")
    );
    assert_eq!(found.approver_id, "a");
    assert_eq!(found.expires_at, t(1000));
    assert_eq!(found.used_at, None);
    for unknown in [
        "dlv_a.hash-of-b",
        "dlv_c.hash-of-a",
        "dlv_a.",
        ".hash-of-a",
        "dlv_a",
    ] {
        assert_eq!(s.find_token(unknown).await.unwrap(), None, "{unknown}");
        assert_eq!(
            s.consume_token(unknown, t(50)).await.unwrap(),
            TokenOutcome::Unknown,
            "{unknown}"
        );
    }
    assert!(matches!(
        s.consume_token("dlv_a.hash-of-a", t(50)).await.unwrap(),
        TokenOutcome::Consumed(tok) if tok.used_at == Some(t(50)) && tok.approver_id == "a"
    ));
    assert!(matches!(
        s.consume_token("dlv_a.hash-of-a", t(51)).await.unwrap(),
        TokenOutcome::AlreadyUsed(tok) if tok.used_at == Some(t(50))
    ));
    assert_eq!(used_at(&s, "dlv_a.hash-of-a").await, Some(t(50)));
    assert!(matches!(
        s.consume_token("dlv_b.hash-of-b", t(1000)).await.unwrap(),
        TokenOutcome::Expired(_)
    ));
    // Spending one token leaves the other delivery's token as it was.
    assert_eq!(used_at(&s, "dlv_b.hash-of-b").await, None);
}

/// Several sent deliveries are recorded in one write: all of them, or none
/// when one id is unknown.
pub async fn deliveries_marked_sent_together(b: &impl Backend) {
    let s = b.store();
    let mut r = pending("ws", "r", &["a", "b", "c"], 1, t(1000));
    r.deliveries = ["a", "b", "c"]
        .iter()
        .map(|who| NewDelivery {
            delivery_id: format!("d-{who}"),
            approver_id: (*who).into(),
            channel: "email".into(),
            token_hash: None,
            next_attempt_at: t(10),
        })
        .collect();
    s.create_run(r).await.unwrap();
    let due = |now| due_ids(&s, now);
    assert_eq!(due(t(10)).await, ["d-a", "d-b", "d-c"]);
    s.mark_deliveries_sent(&[], t(11)).await.unwrap();
    // An unknown id among known ones: an error naming it, and nothing marked.
    let with_unknown = ["d-a".to_owned(), "nope".to_owned(), "d-b".to_owned()];
    match s.mark_deliveries_sent(&with_unknown, t(11)).await {
        Err(StoreError::NotFound { id, .. }) => assert_eq!(id, "nope"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(due(t(12)).await, ["d-a", "d-b", "d-c"]);
    s.mark_deliveries_sent(&["d-a".to_owned(), "d-c".to_owned()], t(12))
        .await
        .unwrap();
    assert_eq!(due(t(13)).await, ["d-b"]);
    let shown = s.deliveries_for_run("ws", "r").await.unwrap();
    let sent: Vec<(&str, Option<_>)> = shown
        .iter()
        .map(|d| (d.delivery_id.as_str(), d.sent_at))
        .collect();
    assert_eq!(
        sent,
        [("d-a", Some(t(12))), ("d-b", None), ("d-c", Some(t(12)))]
    );
}

pub async fn deliveries_and_tokens(b: &impl Backend) {
    let s = b.store();
    let mut r = pending("ws", "r", &["a", "b"], 1, t(1000));
    r.deliveries = vec![
        NewDelivery {
            delivery_id: "d1".into(),
            approver_id: "a".into(),
            channel: "email".into(),
            token_hash: Some("tok-a".into()),
            next_attempt_at: t(10),
        },
        NewDelivery {
            delivery_id: "d2".into(),
            approver_id: "b".into(),
            channel: "slack".into(),
            token_hash: Some("tok-b".into()),
            next_attempt_at: t(20),
        },
    ];
    s.create_run(r.clone()).await.unwrap();
    let mut bad = pending("ws", "r2", &["a"], 1, t(1000));
    bad.deliveries = vec![NewDelivery {
        delivery_id: "d3".into(),
        approver_id: "zed".into(),
        channel: "email".into(),
        token_hash: None,
        next_attempt_at: t(10),
    }];
    assert!(matches!(
        s.create_run(bad.clone()).await,
        Err(StoreError::InvalidInput { .. })
    ));
    // A shared destination (`@…`, a workspace webhook) is not a person and
    // may receive a delivery.
    let mut shared = pending("ws", "r-shared", &["a"], 1, t(1000));
    shared.deliveries = vec![NewDelivery {
        delivery_id: "d4".into(),
        approver_id: "@webhook:ops".into(),
        channel: "webhook".into(),
        token_hash: Some("tok-w".into()),
        next_attempt_at: t(10),
    }];
    s.create_run(shared).await.unwrap();
    assert_eq!(
        s.find_token("tok-w").await.unwrap().unwrap().approver_id,
        "@webhook:ops"
    );
    // A clashing delivery id rolls back the whole run creation.
    bad.deliveries[0].approver_id = "a".into();
    bad.deliveries[0].delivery_id = "d1".into();
    let seq = head_seq(&*s, "ws").await;
    assert!(matches!(
        s.create_run(bad).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(s.get_run("ws", "r2").await.unwrap().is_none());
    assert_eq!(
        head_seq(&*s, "ws").await,
        seq,
        "no event of a rolled-back run"
    );

    let due = |now| due_ids(&s, now);
    assert!(due(t(9)).await.is_empty());
    assert_eq!(due(t(10)).await, ["d1", "d4"]);
    s.mark_delivery_sent("d4", t(10)).await.unwrap();
    assert_eq!(due(t(20)).await, ["d1", "d2"]);
    s.mark_delivery_failed("d1", Some(t(30)), "smtp down", t(20))
        .await
        .unwrap();
    assert_eq!(due(t(25)).await, ["d2"]);
    let retried = s.due_deliveries(t(30), 10).await.unwrap();
    let ids: Vec<&str> = retried.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["d2", "d1"], "oldest due first");
    assert_eq!(retried[1].attempts, 1);
    assert_eq!(retried[1].last_error.as_deref(), Some("smtp down"));
    assert_eq!(retried[1].next_attempt_at, Some(t(30)));
    assert_eq!(retried[0].token_hash.as_deref(), Some("tok-b"));
    s.mark_delivery_sent("d1", t(31)).await.unwrap();
    s.mark_delivery_failed("d2", None, "gave up", t(31))
        .await
        .unwrap();
    assert!(due(t(40)).await.is_empty());
    // The run shows each delivery's channel, attempts and last error.
    let shown = s.deliveries_for_run("ws", "r").await.unwrap();
    let summary: Vec<(&str, &str, u32, Option<&str>, bool)> = shown
        .iter()
        .map(|d| {
            (
                d.delivery_id.as_str(),
                d.channel.as_str(),
                d.attempts,
                d.last_error.as_deref(),
                d.sent_at.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("d1", "email", 1, Some("smtp down"), true),
            ("d2", "slack", 1, Some("gave up"), false)
        ]
    );
    assert!(
        s.deliveries_for_run("other", "r").await.unwrap().is_empty(),
        "tenant isolation"
    );
    assert!(matches!(
        s.mark_delivery_sent("nope", t(1)).await,
        Err(StoreError::NotFound { .. })
    ));

    let token = s.find_token("tok-a").await.unwrap().unwrap();
    assert_eq!(
        (token.run_id.as_str(), token.approver_id.as_str()),
        ("r", "a")
    );
    assert_eq!(token.expires_at, t(1000));
    assert!(matches!(
        s.consume_token("tok-a", t(50)).await.unwrap(),
        TokenOutcome::Consumed(tok) if tok.used_at == Some(t(50))
    ));
    assert!(matches!(
        s.consume_token("tok-a", t(51)).await.unwrap(),
        TokenOutcome::AlreadyUsed(tok) if tok.used_at == Some(t(50))
    ));
    assert!(matches!(
        s.consume_token("tok-b", t(1000)).await.unwrap(),
        TokenOutcome::Expired(_)
    ));
    assert_eq!(
        s.consume_token("nope", t(1)).await.unwrap(),
        TokenOutcome::Unknown
    );

    // Deliveries of decided runs are no longer due.
    let mut r3 = pending("ws", "r3", &["a"], 1, t(1000));
    r3.deliveries = vec![NewDelivery {
        delivery_id: "d9".into(),
        approver_id: "a".into(),
        channel: "email".into(),
        token_hash: None,
        next_attempt_at: t(0),
    }];
    s.create_run(r3).await.unwrap();
    assert_eq!(due(t(100)).await, ["d9"]);
    s.record_answer("ws", "r3", answer("a", Reject), t(101))
        .await
        .unwrap();
    assert!(due(t(102)).await.is_empty());
}

/// An answer through an email link, as the gate records it (the channel
/// is the delivery's).
fn emailed(
    approver: &str,
    decision: countersign_store::AnswerDecision,
) -> countersign_store::AnswerInput {
    let mut a = answer(approver, decision);
    a.channel = "email".into();
    a
}

/// Spending a token and recording its answer happen together or not at
/// all: a refused answer leaves the token usable, a spent token records
/// nothing more.
pub async fn answer_with_token_is_all_or_nothing(b: &impl Backend) {
    let s = b.store();
    let mut r = pending("ws", "r", &["a", "b", "c"], 1, t(1000));
    r.proposal.actor = Some("b".into());
    r.deliveries = token_deliveries(&[("dlv_a", "a"), ("dlv_b", "b"), ("dlv_c", "c")]);
    s.create_run(r).await.unwrap();

    // b proposed the run: refused, and b's token is still unspent.
    let err = s
        .answer_with_token("dlv_b.hash-of-b", emailed("b", Approve), t(20))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SelfApproval { .. }), "{err:?}");
    assert_eq!(used_at(&s, "dlv_b.hash-of-b").await, None);
    // Someone else's name on c's token: the log gave it to c, so the
    // store refuses it (the gate never sends that), and the token stays.
    let err = s
        .answer_with_token("dlv_c.hash-of-c", emailed("zed", Approve), t(21))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::AuditMismatch { column, .. } if column == "deliveries.approver_id"),
        "{err:?}"
    );
    assert_eq!(used_at(&s, "dlv_c.hash-of-c").await, None);
    let run = s.get_run("ws", "r").await.unwrap().unwrap();
    assert!(run.approvals.is_empty());
    assert_eq!(run.governance_status, GovernanceStatus::PendingApproval);

    // a's token: spent and answered in one go.
    let done = s
        .answer_with_token("dlv_a.hash-of-a", emailed("a", Approve), t(50))
        .await
        .unwrap();
    let TokenAnswer::Answered(answered) = done else {
        panic!("{done:?}");
    };
    let AnswerOutcome::Recorded(run) = *answered else {
        panic!("{answered:?}");
    };
    assert_eq!(run.governance_status, GovernanceStatus::Approved);
    assert_eq!(used_at(&s, "dlv_a.hash-of-a").await, Some(t(50)));
    // Used again: refused, and no second answer is recorded.
    let again = s
        .answer_with_token("dlv_a.hash-of-a", emailed("a", Reject), t(51))
        .await
        .unwrap();
    assert!(
        matches!(again, TokenAnswer::Refused(TokenOutcome::AlreadyUsed(_))),
        "{again:?}"
    );
    assert_eq!(
        s.get_run("ws", "r").await.unwrap().unwrap().approvals.len(),
        1
    );
    assert!(matches!(
        s.answer_with_token("dlv_c.hash-of-c", emailed("c", Approve), t(1000))
            .await
            .unwrap(),
        TokenAnswer::Refused(TokenOutcome::Expired(_))
    ));
    assert!(matches!(
        s.answer_with_token("dlv_z.hash-of-z", emailed("c", Approve), t(60))
            .await
            .unwrap(),
        TokenAnswer::Refused(TokenOutcome::Unknown)
    ));
    assert_eq!(
        s.get_run("ws", "r").await.unwrap().unwrap().approvals.len(),
        1
    );
}
