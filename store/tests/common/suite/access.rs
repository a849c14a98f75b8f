//! Access grants, per-run events, statistics and the chain head: what the
//! dashboard reads and writes.

use super::{head_seq, kinds};
use crate::common::{Backend, answer, pending, run, t};
use countersign_store::{
    AnswerDecision, EventKind, ExecutionOutcome, ExecutionStatus, GENESIS_HASH, GovernanceStatus,
    GrantKind, GrantOutcome, NewGrant, StoreError,
};
use serde_json::json;

fn grant(id: &str, kind: GrantKind, ws: Option<&str>, expires: i64) -> NewGrant {
    NewGrant {
        grant_id: id.into(),
        kind,
        token_hash: format!("hash-{id}"),
        workspace: ws.map(Into::into),
        subject: "alice@example.test".into(),
        label: Some(format!("label {id}")),
        expires_at: t(expires),
    }
}

pub async fn sign_in_grants_are_single_use_and_expire(b: &impl Backend) {
    let s = b.store();
    let g = s
        .create_grant(grant("g1", GrantKind::SignIn, None, 900), t(0))
        .await
        .unwrap();
    assert_eq!(g.created_at, t(0));
    assert!(g.used_at.is_none());
    // Sign-ins and sessions are not audited: no chain is started.
    assert!(s.workspaces().await.unwrap().is_empty());

    assert_eq!(
        s.find_grant("hash-g1").await.unwrap().unwrap().grant_id,
        "g1"
    );
    assert!(s.find_grant("hash-nope").await.unwrap().is_none());
    assert_eq!(
        s.consume_grant("hash-nope", GrantKind::SignIn, t(1))
            .await
            .unwrap(),
        GrantOutcome::Unknown
    );
    match s
        .consume_grant("hash-g1", GrantKind::SignIn, t(1))
        .await
        .unwrap()
    {
        GrantOutcome::Consumed(g) => assert_eq!(g.used_at, Some(t(1))),
        other => panic!("expected consumed, got {other:?}"),
    }
    assert!(matches!(
        s.consume_grant("hash-g1", GrantKind::SignIn, t(2))
            .await
            .unwrap(),
        GrantOutcome::AlreadyUsed(_)
    ));

    s.create_grant(grant("g2", GrantKind::SignIn, None, 900), t(0))
        .await
        .unwrap();
    assert!(matches!(
        s.consume_grant("hash-g2", GrantKind::SignIn, t(900))
            .await
            .unwrap(),
        GrantOutcome::Expired(_)
    ));
    // Still unused: an expired link is not burnt by trying it.
    assert!(
        s.find_grant("hash-g2")
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_none()
    );

    s.create_grant(grant("g3", GrantKind::Session, None, 900), t(0))
        .await
        .unwrap();
    s.revoke_grant("g3", t(5)).await.unwrap();
    assert!(matches!(
        s.consume_grant("hash-g3", GrantKind::Session, t(6))
            .await
            .unwrap(),
        GrantOutcome::Revoked(_)
    ));
    // A grant of another kind cannot be used up as a sign-in link.
    s.create_grant(grant("s4", GrantKind::Session, None, 900), t(0))
        .await
        .unwrap();
    assert_eq!(
        s.consume_grant("hash-s4", GrantKind::SignIn, t(1))
            .await
            .unwrap(),
        GrantOutcome::Unknown
    );
    assert!(
        s.find_grant("hash-s4")
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_none()
    );
    let found = s.find_grant("hash-g3").await.unwrap().unwrap();
    assert!(!found.is_live(t(6)));

    // Pruning removes expired sign-ins and sessions, never share links.
    s.create_grant(grant("keep", GrantKind::Session, None, 5_000), t(0))
        .await
        .unwrap();
    s.create_grant(grant("share", GrantKind::ShareLink, Some("ws"), 10), t(0))
        .await
        .unwrap();
    assert_eq!(s.prune_grants(t(1_000)).await.unwrap(), 4, "g1, g2, g3, s4");
    assert!(s.find_grant("hash-g1").await.unwrap().is_none());
    assert!(s.find_grant("hash-keep").await.unwrap().is_some());
    assert!(s.find_grant("hash-share").await.unwrap().is_some());
    assert_eq!(s.prune_grants(t(1_000)).await.unwrap(), 0);
}

pub async fn grants_reject_bad_input_and_duplicates(b: &impl Backend) {
    let s = b.store();
    let err = s
        .create_grant(grant("x", GrantKind::ShareLink, None, 900), t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    let err = s
        .create_grant(grant("x", GrantKind::SignIn, None, 0), t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    let mut long = grant("x", GrantKind::SignIn, None, 10);
    long.label = Some("x".repeat(201));
    assert!(matches!(
        s.create_grant(long, t(0)).await.unwrap_err(),
        StoreError::InvalidInput { .. }
    ));

    s.create_grant(grant("dup", GrantKind::SignIn, None, 900), t(0))
        .await
        .unwrap();
    let mut same_token = grant("other", GrantKind::SignIn, None, 900);
    same_token.token_hash = "hash-dup".into();
    assert!(matches!(
        s.create_grant(same_token, t(0)).await.unwrap_err(),
        StoreError::Conflict { .. }
    ));
    let mut same_id = grant("dup", GrantKind::SignIn, None, 900);
    same_id.token_hash = "fresh".into();
    assert!(matches!(
        s.create_grant(same_id, t(0)).await.unwrap_err(),
        StoreError::Conflict { .. }
    ));
    assert!(matches!(
        s.revoke_grant("missing", t(1)).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

pub async fn share_links_are_audited_and_scoped(b: &impl Backend) {
    let s = b.store();
    s.create_run(run("ws", "r1", GovernanceStatus::Allowed))
        .await
        .unwrap();
    let before = head_seq(&*s, "ws").await;
    let mut share = grant("s1", GrantKind::ShareLink, Some("ws"), 86_400);
    share.subject = "admin:key-1".into();
    s.create_grant(share, t(10)).await.unwrap();
    s.create_grant(
        grant("s2", GrantKind::ShareLink, Some("other"), 86_400),
        t(11),
    )
    .await
    .unwrap();

    let events = s.events("ws", before, 0).await.unwrap();
    assert_eq!(kinds(&events), vec![EventKind::ShareLinkCreated]);
    assert_eq!(events[0].data["grant_id"], json!("s1"));
    assert_eq!(events[0].data["created_by"], json!("admin:key-1"));

    let listed = s.list_grants("ws", GrantKind::ShareLink).await.unwrap();
    assert_eq!(listed.len(), 1, "only this workspace's links");
    assert_eq!(listed[0].grant_id, "s1");
    assert!(
        s.list_grants("ws", GrantKind::Session)
            .await
            .unwrap()
            .is_empty()
    );

    let revoked = s.revoke_grant("s1", t(20)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(t(20)));
    // Revoking again changes nothing and records nothing more.
    let again = s.revoke_grant("s1", t(30)).await.unwrap();
    assert_eq!(again.revoked_at, Some(t(20)));
    let events = s.events("ws", before, 0).await.unwrap();
    assert_eq!(
        kinds(&events),
        vec![EventKind::ShareLinkCreated, EventKind::ShareLinkRevoked]
    );
    s.verify_chain("ws").await.unwrap();
    s.verify_chain("other").await.unwrap();
}

pub async fn run_events_head_and_stats(b: &impl Backend) {
    let s = b.store();
    assert_eq!(s.chain_head("ws").await.unwrap().seq, 0);
    assert_eq!(s.chain_head("ws").await.unwrap().hash, GENESIS_HASH);

    s.create_run(pending("ws", "p", &["a", "b"], 1, t(3600)))
        .await
        .unwrap();
    let mut allowed = run("ws", "ok", GovernanceStatus::Allowed);
    allowed.proposal.created_at = t(86_400 + 5);
    s.create_run(allowed).await.unwrap();
    let mut blocked = run("ws", "no", GovernanceStatus::Blocked);
    blocked.proposal.created_at = t(86_400 + 6);
    s.create_run(blocked).await.unwrap();
    s.create_run(run("other", "p", GovernanceStatus::Allowed))
        .await
        .unwrap();
    s.record_answer("ws", "p", answer("a", AnswerDecision::Approve), t(10))
        .await
        .unwrap();
    s.report_execution(
        "ws",
        "ok",
        ExecutionOutcome::Failed {
            error: "boom".into(),
        },
        t(86_400 + 7),
    )
    .await
    .unwrap();

    let events = s.run_events("ws", "p").await.unwrap();
    assert_eq!(
        kinds(&events),
        vec![
            EventKind::RunProposed,
            EventKind::PolicyDecided,
            EventKind::ApprovalRequested,
            EventKind::ApprovalGranted
        ]
    );
    assert!(events.iter().all(|e| e.run_id.as_deref() == Some("p")));
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(s.run_events("ws", "missing").await.unwrap().is_empty());
    // The other workspace's run of the same id is not mixed in.
    assert_eq!(s.run_events("other", "p").await.unwrap().len(), 2);

    let head = s.chain_head("ws").await.unwrap();
    assert_eq!(head.seq, head_seq(&*s, "ws").await);
    assert_eq!(
        head.hash,
        s.events("ws", head.seq - 1, 1).await.unwrap()[0].hash
    );

    let stats = s.run_stats("ws", t(0), t(3 * 86_400)).await.unwrap();
    let summary: Vec<(String, GovernanceStatus, ExecutionStatus, u64)> = stats
        .into_iter()
        .map(|r| (r.day, r.governance_status, r.execution_status, r.count))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "2030-01-01".into(),
                GovernanceStatus::Approved,
                ExecutionStatus::AwaitingExecution,
                1
            ),
            (
                "2030-01-02".into(),
                GovernanceStatus::Allowed,
                ExecutionStatus::Failed,
                1
            ),
            (
                "2030-01-02".into(),
                GovernanceStatus::Blocked,
                ExecutionStatus::NotExecuted,
                1
            ),
        ]
    );
    // The range is half-open and filters by creation time.
    let day_two = s.run_stats("ws", t(86_400), t(86_400 + 6)).await.unwrap();
    assert_eq!(day_two.len(), 1);
    assert_eq!(day_two[0].governance_status, GovernanceStatus::Allowed);
}
