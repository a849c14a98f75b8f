//! The verifiable log: proofs against tlog's verifiers, checkpoints, and
//! every tampering a database writer can do, detected by the audit and
//! refused by the state changes.

use crate::common::{Backend, answer, log_key, pending, run, t};
use countersign_store::tlog::{self, Hash};
use countersign_store::{
    AnswerDecision::Approve, AnswerOutcome, AuditReport, AuditSubject, Event, EventKind,
    ExecutionOutcome, GovernanceStatus, LogKey, NewDelivery, Role, Store, StoreError,
    StoredCheckpoint, TokenAnswer, TokenOutcome, compute_hash, event_leaf_data, to_canonical_json,
};
use serde_json::json;

/// Every event of a workspace, in seq order.
async fn all_events(s: &dyn Store, ws: &str) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let page = s.events(ws, after, 1000).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// RFC 9162 MTH over leaf hashes, straight from the definition.
fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => tlog::EMPTY_TREE_HASH,
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            tlog::node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

pub(crate) fn problems(report: &AuditReport) -> String {
    report
        .problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn has_problem(
    report: &AuditReport,
    subject: &AuditSubject,
    column: Option<&str>,
) -> bool {
    report
        .problems
        .iter()
        .any(|p| &p.subject == subject && (column.is_none() || p.column.as_deref() == column))
}

fn mismatch(r: Result<impl std::fmt::Debug, StoreError>) -> (String, String) {
    match r {
        Err(StoreError::AuditMismatch { run_id, column, .. }) => (run_id, column),
        other => panic!("expected an audit mismatch, got {other:?}"),
    }
}

pub(crate) fn sql_text(s: &str) -> String {
    s.replace('\'', "''")
}

async fn checkpoint_now(s: &dyn Store, ws: &str, at: i64) -> StoredCheckpoint {
    let head = s.tree_head(ws).await.unwrap();
    let c = StoredCheckpoint {
        workspace: ws.to_owned(),
        size: head.size,
        root: head.root,
        note: format!("test checkpoint\n{}\n", head.size),
        created_at: t(at),
    };
    s.save_checkpoint(c.clone()).await.unwrap();
    c
}

pub async fn proofs_verify_at_many_sizes(b: &impl Backend) {
    let s = b.store();
    let n = 70u64;
    for i in 0..n {
        s.record_policy_reload("ws", &format!("v{i}"), true, vec![], t(i as i64))
            .await
            .unwrap();
    }
    let events = all_events(&*s, "ws").await;
    let leaves: Vec<Hash> = events
        .iter()
        .map(|e| tlog::leaf_hash(&event_leaf_data(e)))
        .collect();
    let head = s.tree_head("ws").await.unwrap();
    assert_eq!(head.size, n);
    assert_eq!(head.root, reference_root(&leaves));
    for size in 1..=n {
        let root = s.tree_head_at("ws", size).await.unwrap().root;
        assert_eq!(
            root,
            reference_root(&leaves[..size as usize]),
            "size {size}"
        );
        for index in [0, size / 3, size / 2, size - 1] {
            let proof = s.inclusion_proof("ws", index, size).await.unwrap();
            tlog::verify_inclusion(&leaves[index as usize], index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("inclusion {index}/{size}: {e}"));
            // A proof for a changed leaf never verifies.
            let other = tlog::leaf_hash(b"not the event");
            assert!(tlog::verify_inclusion(&other, index, size, &proof, &root).is_err());
        }
        for old in [1, size / 2, size - 1, size] {
            if old == 0 {
                continue;
            }
            let old_root = reference_root(&leaves[..old as usize]);
            let proof = s.consistency_proof("ws", old, size).await.unwrap();
            tlog::verify_consistency(old, size, &old_root, &root, &proof)
                .unwrap_or_else(|e| panic!("consistency {old}->{size}: {e}"));
        }
    }
    // Out of range: typed errors, no panic.
    for r in [
        s.inclusion_proof("ws", n, n).await,
        s.inclusion_proof("ws", 0, n + 1).await,
        s.consistency_proof("ws", 5, n + 1).await,
        s.consistency_proof("ws", 6, 5).await,
    ] {
        assert!(matches!(r, Err(StoreError::TreeRange { .. })), "{r:?}");
    }
    assert!(matches!(
        s.tree_head_at("ws", n + 1).await,
        Err(StoreError::TreeRange { .. })
    ));
    // The empty tree of an unknown workspace.
    let empty = s.tree_head("nobody").await.unwrap();
    assert_eq!((empty.size, empty.root), (0, tlog::EMPTY_TREE_HASH));
    // Reading events by range.
    let range = s.events_range("ws", 3, 7).await.unwrap();
    assert_eq!(
        range.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7]
    );
    assert!(matches!(
        s.events_range("ws", 60, n + 1).await,
        Err(StoreError::TreeRange { .. })
    ));
    assert!(matches!(
        s.events_range("ws", 0, 3).await,
        Err(StoreError::TreeRange { .. })
    ));
    let report = s.audit("ws").await.unwrap();
    assert!(report.is_ok(), "{}", problems(&report));
    assert_eq!(report.tree, head);
}

pub async fn checkpoints_are_kept_and_checked(b: &impl Backend) {
    let s = b.store();
    assert!(s.latest_checkpoint("ws").await.unwrap().is_none());
    s.create_run(run("ws", "r1", GovernanceStatus::Allowed))
        .await
        .unwrap();
    let first = checkpoint_now(&*s, "ws", 10).await;
    s.create_run(run("ws", "r2", GovernanceStatus::Allowed))
        .await
        .unwrap();
    let second = checkpoint_now(&*s, "ws", 20).await;
    assert_eq!(
        s.latest_checkpoint("ws").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        s.checkpoint_at_or_before("ws", second.size - 1)
            .await
            .unwrap(),
        Some(first.clone())
    );
    assert!(s.checkpoint_at_or_before("ws", 1).await.unwrap().is_none());
    // A root that is not the tree's, or a size beyond it, is refused.
    let mut wrong = second.clone();
    wrong.size = first.size;
    assert!(matches!(
        s.save_checkpoint(wrong).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut beyond = second.clone();
    beyond.size += 1;
    assert!(matches!(
        s.save_checkpoint(beyond).await,
        Err(StoreError::TreeRange { .. })
    ));
    let report = s.audit("ws").await.unwrap();
    assert!(report.is_ok(), "{}", problems(&report));
    assert_eq!(report.checkpoints, 2);
}

/// The forgery of the issue: a pending run's row set to approved and an
/// approvals row for someone who never answered.
pub async fn forged_approval_is_detected_and_refused(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "r1", &["alice", "bob"], 1, t(1000)))
        .await
        .unwrap();
    s.create_run(pending("ws", "r2", &["alice", "bob"], 1, t(1000)))
        .await
        .unwrap();
    assert!(s.verified_run("ws", "r1").await.unwrap().is_some());
    b.raw_execute(
        "UPDATE runs SET governance_status = 'approved', execution_status = 'awaiting_execution' \
         WHERE workspace = 'ws' AND run_id = 'r1'; \
         INSERT INTO approvals (workspace, run_id, answer_no, approver_id, decision, channel, \
         answered_at, counted) VALUES ('ws', 'r1', 0, 'alice', 'approve', 'email', \
         '2027-01-15T08:00:05.000000Z', TRUE);",
    )
    .await
    .unwrap();
    // The gate's read says approved: that is the forgery.
    assert!(s.get_run("ws", "r1").await.unwrap().unwrap().executable);
    // Every state change and the verified read refuse, naming run and column.
    let outcome = ExecutionOutcome::Executed {
        result: json!({"ok": true}),
    };
    let (run_id, column) = mismatch(s.report_execution("ws", "r1", outcome, t(20)).await);
    assert_eq!(
        (run_id.as_str(), column.as_str()),
        ("r1", "governance_status")
    );
    let (run_id, column) = mismatch(
        s.record_answer("ws", "r1", answer("bob", Approve), t(21))
            .await,
    );
    assert_eq!(
        (run_id.as_str(), column.as_str()),
        ("r1", "governance_status")
    );
    let (run_id, column) = mismatch(s.verified_run("ws", "r1").await);
    assert_eq!(
        (run_id.as_str(), column.as_str()),
        ("r1", "governance_status")
    );
    // The untouched run is still served.
    assert!(s.verified_run("ws", "r2").await.unwrap().is_some());
    s.record_answer("ws", "r2", answer("bob", Approve), t(22))
        .await
        .unwrap();
    // The audit names each differing row and column.
    let report = s.audit("ws").await.unwrap();
    let r1 = AuditSubject::Run {
        run_id: "r1".into(),
    };
    for column in ["governance_status", "execution_status"] {
        assert!(
            has_problem(&report, &r1, Some(column)),
            "{}",
            problems(&report)
        );
    }
    let forged = AuditSubject::Approval {
        run_id: "r1".into(),
        answer_no: 0,
    };
    assert!(has_problem(&report, &forged, None), "{}", problems(&report));
    assert!(
        !report.problems.iter().any(|p| p.to_string().contains("r2")),
        "{}",
        problems(&report)
    );
    let err = s.verify_chain("ws").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::AuditFailed { .. }), "{err}");
    assert!(
        text.contains("run `r1`") && text.contains("governance_status"),
        "{text}"
    );
}

/// An old event edited and every later hash and the head recomputed: the
/// chain verifies, the MAC and the tree do not.
pub async fn rewritten_history_is_detected(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "r1", &["alice", "bob"], 1, t(1000)))
        .await
        .unwrap();
    s.record_answer("ws", "r1", answer("bob", Approve), t(5))
        .await
        .unwrap();
    s.create_run(run("ws", "r2", GovernanceStatus::Allowed))
        .await
        .unwrap();
    checkpoint_now(&*s, "ws", 6).await;
    let mut events = all_events(&*s, "ws").await;
    // Seq 4 is bob's approval: make it alice's.
    assert_eq!(events[3].seq, 4);
    events[3].data["approver_id"] = json!("alice");
    for i in 3..events.len() {
        if i > 3 {
            events[i].prev_hash = events[i - 1].hash.clone();
        }
        events[i].hash = compute_hash(&events[i]);
    }
    b.drop_append_only_triggers().await;
    let mut sql = String::new();
    for e in &events[3..] {
        sql.push_str(&format!(
            "UPDATE events SET data = '{}', prev_hash = '{}', hash = '{}' \
             WHERE workspace = 'ws' AND seq = {};",
            sql_text(&to_canonical_json(&e.data)),
            e.prev_hash,
            e.hash,
            e.seq
        ));
    }
    let last = events.last().unwrap();
    sql.push_str(&format!(
        "UPDATE chain_heads SET hash = '{}' WHERE workspace = 'ws';\
         UPDATE approvals SET approver_id = 'alice' WHERE workspace = 'ws' AND run_id = 'r1';\
         UPDATE runs SET head_hash = '{}' WHERE workspace = 'ws' AND run_id = 'r1';\
         UPDATE runs SET head_hash = '{}' WHERE workspace = 'ws' AND run_id = 'r2';",
        last.hash, events[3].hash, last.hash
    ));
    b.raw_execute(&sql).await.unwrap();
    let report = s.audit("ws").await.unwrap();
    let seq4 = AuditSubject::Event { seq: 4 };
    assert!(
        has_problem(&report, &seq4, Some("events.mac")),
        "{}",
        problems(&report)
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p.subject, AuditSubject::TreeHash { .. })),
        "{}",
        problems(&report)
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p.subject, AuditSubject::Checkpoint { .. })),
        "{}",
        problems(&report)
    );
    let err = s.verify_chain("ws").await.unwrap_err();
    assert!(err.to_string().contains("event seq 4"), "{err}");
    let (run_id, column) = mismatch(s.verified_run("ws", "r1").await);
    assert_eq!((run_id.as_str(), column.as_str()), ("r1", "events.mac"));
}

/// A well-formed event appended by a database writer, without a MAC or
/// with a wrong one.
pub async fn forged_events_without_the_key_are_detected(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "r1", &["alice", "bob"], 1, t(1000)))
        .await
        .unwrap();
    let events = all_events(&*s, "ws").await;
    let last = events.last().unwrap().clone();
    let mut forged = last.clone();
    forged.seq = last.seq + 1;
    forged.kind = countersign_store::EventKind::ApprovalGranted;
    forged.at = t(5);
    forged.data = json!({
        "approver_id": "bob", "decision": "approve", "channel": "email", "comment": null,
        "client_addr": null, "user_agent": null, "answered_at": "2027-01-15T08:00:05.000000Z",
        "counted": true, "governance_status": "approved", "execution_status": "awaiting_execution",
    });
    forged.prev_hash = last.hash.clone();
    forged.hash = compute_hash(&forged);
    let mut second = forged.clone();
    second.seq += 1;
    second.prev_hash = forged.hash.clone();
    second.hash = compute_hash(&second);
    let at = |e: &Event| countersign_store::format_ts(e.at);
    b.raw_execute(&format!(
        "INSERT INTO events (workspace, seq, kind, run_id, at, data, prev_hash, hash, mac) VALUES \
         ('ws', {}, 'approval_granted', 'r1', '{}', '{}', '{}', '{}', NULL), \
         ('ws', {}, 'approval_granted', 'r1', '{}', '{}', '{}', '{}', '{}'); \
         UPDATE chain_heads SET seq = {}, hash = '{}' WHERE workspace = 'ws';",
        forged.seq,
        at(&forged),
        sql_text(&to_canonical_json(&forged.data)),
        forged.prev_hash,
        forged.hash,
        second.seq,
        at(&second),
        sql_text(&to_canonical_json(&second.data)),
        second.prev_hash,
        second.hash,
        "00".repeat(32),
        second.seq,
        second.hash,
    ))
    .await
    .unwrap();
    let report = s.audit("ws").await.unwrap();
    for seq in [forged.seq, second.seq] {
        assert!(
            has_problem(&report, &AuditSubject::Event { seq }, Some("events.mac")),
            "{}",
            problems(&report)
        );
    }
    let (run_id, column) = mismatch(
        s.record_answer("ws", "r1", answer("bob", Approve), t(9))
            .await,
    );
    assert_eq!((run_id.as_str(), column.as_str()), ("r1", "events.mac"));
}

/// A workspace's events, tree and head deleted while checkpoints exist;
/// another one's last events truncated.
pub async fn deleted_and_truncated_logs_are_detected(b: &impl Backend) {
    let s = b.store();
    for ws in ["gone", "cut"] {
        for i in 0..3 {
            s.create_run(run(ws, &format!("r{i}"), GovernanceStatus::Allowed))
                .await
                .unwrap();
        }
        checkpoint_now(&*s, ws, 50).await;
    }
    b.drop_append_only_triggers().await;
    b.raw_execute(
        "DELETE FROM events WHERE workspace = 'gone'; \
         DELETE FROM tree_hashes WHERE workspace = 'gone'; \
         DELETE FROM chain_heads WHERE workspace = 'gone'; \
         DELETE FROM runs WHERE workspace = 'gone'; \
         DELETE FROM events WHERE workspace = 'cut' AND seq > 4; \
         DELETE FROM runs WHERE workspace = 'cut' AND run_id = 'r2'; \
         UPDATE chain_heads SET seq = 4, hash = (SELECT hash FROM events \
             WHERE workspace = 'cut' AND seq = 4) WHERE workspace = 'cut';",
    )
    .await
    .unwrap();
    assert!(s.workspaces().await.unwrap().contains(&"gone".to_owned()));
    for ws in ["gone", "cut"] {
        let report = s.audit(ws).await.unwrap();
        assert!(
            has_problem(&report, &AuditSubject::Checkpoint { size: 6 }, None),
            "{ws}: {}",
            problems(&report)
        );
        let err = s.verify_chain(ws).await.unwrap_err();
        assert!(err.to_string().contains("deleted or truncated"), "{err}");
    }
}

/// Edits of a stored tree hash, an approval row and a key's revocation.
pub async fn edited_tree_approval_and_key_rows_are_detected(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "r1", &["alice", "bob"], 1, t(1000)))
        .await
        .unwrap();
    s.record_answer("ws", "r1", answer("bob", Approve), t(5))
        .await
        .unwrap();
    s.create_key("ws", "k1", "hash-k1", Role::Agent, None, t(6))
        .await
        .unwrap();
    s.revoke_key("ws", "k1", t(7)).await.unwrap();
    s.create_bound_key(
        "ws",
        "k2",
        "hash-k2",
        Role::Agent,
        None,
        Some("support_agent".into()),
        t(8),
    )
    .await
    .unwrap();
    assert!(s.audit("ws").await.unwrap().is_ok());
    b.drop_append_only_triggers().await;
    b.raw_execute(&format!(
        "UPDATE tree_hashes SET hash = {} WHERE workspace = 'ws' AND idx = 3; \
         UPDATE approvals SET approver_id = 'alice' WHERE workspace = 'ws' AND run_id = 'r1'; \
         UPDATE api_keys SET revoked_at = NULL WHERE workspace = 'ws' AND key_id = 'k1'; \
         UPDATE api_keys SET actor = 'finance_agent' WHERE workspace = 'ws' AND key_id = 'k2';",
        b.blob_literal(&[9; 32])
    ))
    .await
    .unwrap();
    let report = s.audit("ws").await.unwrap();
    let expected = [
        (AuditSubject::TreeHash { index: 3 }, None),
        (
            AuditSubject::Approval {
                run_id: "r1".into(),
                answer_no: 0,
            },
            Some("approvals[0].approver_id"),
        ),
        (
            AuditSubject::Key {
                key_id: "k1".into(),
            },
            Some("revoked_at"),
        ),
        (
            AuditSubject::Key {
                key_id: "k2".into(),
            },
            Some("actor"),
        ),
    ];
    for (subject, column) in &expected {
        assert!(
            has_problem(&report, subject, *column),
            "{subject}: {}",
            problems(&report)
        );
    }
    let (run_id, column) = mismatch(
        s.record_answer("ws", "r1", answer("alice", Approve), t(9))
            .await,
    );
    assert_eq!(
        (run_id.as_str(), column.as_str()),
        ("r1", "approvals[0].approver_id")
    );
}

/// A store opened with another key finds every event unauthenticated.
pub async fn another_log_key_fails_every_event(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "r1", &["alice", "bob"], 1, t(1000)))
        .await
        .unwrap();
    s.create_key("ws", "k1", "hash-k1", Role::Agent, None, t(6))
        .await
        .unwrap();
    let n = s.tree_head("ws").await.unwrap().size;
    let other = b.reopen(LogKey::from_bytes([1; 32])).await;
    let report = other.audit("ws").await.unwrap();
    for seq in 1..=n {
        assert!(
            has_problem(&report, &AuditSubject::Event { seq }, Some("events.mac")),
            "seq {seq}: {}",
            problems(&report)
        );
    }
    let (_, column) = mismatch(
        other
            .record_answer("ws", "r1", answer("bob", Approve), t(9))
            .await,
    );
    assert_eq!(column, "events.mac");
    // Nor does the checkpoint signer's check pass.
    match other.verify_extension("ws", 0, n).await {
        Err(StoreError::AuditFailed { problems, .. }) => assert!(
            problems
                .iter()
                .any(|p| p.column.as_deref() == Some("events.mac")),
            "{problems:?}"
        ),
        other => panic!("expected AuditFailed, got {other:?}"),
    }
    // The right key still verifies everything.
    let same = b.reopen(log_key()).await;
    assert!(same.audit("ws").await.unwrap().is_ok());
    let ext = same.verify_extension("ws", 1, n).await.unwrap();
    assert_eq!(ext.from, same.tree_head_at("ws", 1).await.unwrap());
    assert_eq!(ext.to, same.tree_head("ws").await.unwrap());
    let empty = same.verify_extension("ws", n, n).await.unwrap();
    assert_eq!((empty.from, empty.to), (ext.to, ext.to));
    for (from, to) in [(0, n + 1), (2, 1)] {
        assert!(
            matches!(
                same.verify_extension("ws", from, to).await,
                Err(StoreError::TreeRange { .. })
            ),
            "{from}..{to}"
        );
    }
}

/// Some of everything, in two workspaces: what an upgraded database holds.
pub async fn upgrade_workload(s: &dyn Store) {
    for ws in ["ws", "ws2"] {
        s.create_run(pending(ws, "p1", &["alice", "bob"], 1, t(1000)))
            .await
            .unwrap();
        s.record_answer(ws, "p1", answer("bob", Approve), t(5))
            .await
            .unwrap();
        s.report_execution(
            ws,
            "p1",
            ExecutionOutcome::Executed {
                result: json!({"rows": 3, "ratio": 0.25}),
            },
            t(6),
        )
        .await
        .unwrap();
        for i in 0..20 {
            s.create_run(run(ws, &format!("a{i}"), GovernanceStatus::Allowed))
                .await
                .unwrap();
        }
        s.create_run(pending(ws, "p2", &["alice"], 1, t(7)))
            .await
            .unwrap();
        s.expire_due(t(8)).await.unwrap();
        s.create_key(ws, "k1", &format!("hash-{ws}"), Role::Agent, None, t(9))
            .await
            .unwrap();
        s.revoke_key(ws, "k1", t(10)).await.unwrap();
        s.record_policy_reload(ws, "v2", true, vec![], t(11))
            .await
            .unwrap();
    }
}

/// Compares an upgraded store with the store whose rows it was given:
/// same tree, same proofs, a clean audit, and appends that go on alike.
pub async fn upgraded_equals_fresh(upgraded: &dyn Store, fresh: &dyn Store) {
    for ws in ["ws", "ws2"] {
        let head = fresh.tree_head(ws).await.unwrap();
        assert!(head.size > 40);
        assert_eq!(upgraded.tree_head(ws).await.unwrap(), head);
        for size in [1, 2, 7, head.size / 2, head.size] {
            assert_eq!(
                upgraded.tree_head_at(ws, size).await.unwrap(),
                fresh.tree_head_at(ws, size).await.unwrap()
            );
            assert_eq!(
                upgraded
                    .inclusion_proof(ws, size - 1, head.size)
                    .await
                    .unwrap(),
                fresh
                    .inclusion_proof(ws, size - 1, head.size)
                    .await
                    .unwrap()
            );
            assert_eq!(
                upgraded
                    .consistency_proof(ws, size, head.size)
                    .await
                    .unwrap(),
                fresh.consistency_proof(ws, size, head.size).await.unwrap()
            );
        }
        let report = upgraded.audit(ws).await.unwrap();
        assert!(report.is_ok(), "{}", problems(&report));
        assert_eq!(report.runs, 22);
        assert_eq!(report.keys, 1);
        for s in [upgraded, fresh] {
            s.create_run(run(ws, "after", GovernanceStatus::Allowed))
                .await
                .unwrap();
        }
        assert_eq!(
            upgraded.tree_head(ws).await.unwrap(),
            fresh.tree_head(ws).await.unwrap()
        );
        assert!(upgraded.verified_run(ws, "p1").await.unwrap().is_some());
    }
}

/// What the store writes agrees with its own log: an approver's
/// `eligible_from` given to the nanosecond, and an execution result whose
/// numbers are written in a non-canonical spelling (`0.10`, `1E2`), are
/// checked clean by the per-run check and the full audit.
pub async fn rows_agree_with_the_log_for_fine_times_and_spelled_numbers(b: &impl Backend) {
    let s = b.store();
    let mut new = pending("ws", "r1", &["alice", "bob"], 1, t(1000));
    if let Some(a) = new.proposal.approval.as_mut() {
        a.approvers[1].eligible_from =
            Some(chrono::DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap());
    }
    s.create_run(new).await.unwrap();
    assert!(s.verified_run("ws", "r1").await.unwrap().is_some());
    s.record_answer("ws", "r1", answer("alice", Approve), t(2))
        .await
        .unwrap();
    let result: serde_json::Value =
        serde_json::from_str(r#"{"amount": 0.10, "big": 12345678901234567890123, "e": 1E2}"#)
            .unwrap();
    s.report_execution("ws", "r1", ExecutionOutcome::Executed { result }, t(3))
        .await
        .unwrap();
    assert!(s.verified_run("ws", "r1").await.unwrap().is_some());
    let report = s.audit("ws").await.unwrap();
    assert!(report.is_ok(), "{}", problems(&report));
}

/// A pending run whose three approvers each get an email delivery with a
/// link token (`d-WHO.tok-WHO`), plus one shared webhook delivery whose
/// token (`d-hook.tok-hook`) any approver answers through by name.
fn run_with_tokens(run_id: &str) -> countersign_store::NewRun {
    let mut r = pending("ws", run_id, &["alice", "bob", "carol"], 2, t(1000));
    let mut deliveries: Vec<NewDelivery> = ["alice", "bob", "carol"]
        .iter()
        .map(|who| NewDelivery {
            delivery_id: format!("d-{who}-{run_id}"),
            approver_id: (*who).into(),
            channel: "email".into(),
            token_hash: Some(format!("d-{who}-{run_id}.tok-{who}")),
            next_attempt_at: t(10),
        })
        .collect();
    deliveries.push(NewDelivery {
        delivery_id: format!("d-hook-{run_id}"),
        approver_id: "@hooks".into(),
        channel: "webhook".into(),
        token_hash: Some(format!("d-hook-{run_id}.tok-hook")),
        next_attempt_at: t(10),
    });
    r.deliveries = deliveries;
    r
}

fn via(approver: &str, channel: &str) -> countersign_store::AnswerInput {
    let mut a = answer(approver, Approve);
    a.channel = channel.into();
    a
}

/// Delivery rows are a projection of the run's `approval_requested` event:
/// a row edited to send bob's link to alice's name, a token row a database
/// writer added, a deleted row and a row moved to another channel are each
/// named by the audit, and an answer through an edited or forged token is
/// refused before anything is written, on both the person and the shared
/// path. Untouched tokens keep working.
pub async fn edited_delivery_state_is_detected_and_refused(b: &impl Backend) {
    let s = b.store();
    s.create_run(run_with_tokens("r1")).await.unwrap();
    s.create_run(run_with_tokens("r2")).await.unwrap();
    assert!(s.audit("ws").await.unwrap().is_ok());
    // The log lists the deliveries.
    let events = all_events(&*s, "ws").await;
    let requested = events
        .iter()
        .find(|e| e.run_id.as_deref() == Some("r1") && e.kind == EventKind::ApprovalRequested)
        .unwrap();
    assert_eq!(requested.data["deliveries"].as_array().unwrap().len(), 4);
    assert_eq!(
        requested.data["deliveries"][1]["token_hash"],
        json!("d-bob-r1.tok-bob")
    );

    b.drop_append_only_triggers().await;
    b.raw_execute(
        "UPDATE deliveries SET approver_id = 'alice' WHERE delivery_id = 'd-bob-r1'; \
         UPDATE approval_tokens SET approver_id = 'alice' WHERE token_hash = 'd-bob-r1.tok-bob'; \
         UPDATE deliveries SET channel = 'teams' WHERE delivery_id = 'd-carol-r2'; \
         DELETE FROM approval_tokens WHERE token_hash = 'd-alice-r2.tok-alice'; \
         DELETE FROM deliveries WHERE delivery_id = 'd-alice-r2'; \
         INSERT INTO approval_tokens (token_hash, workspace, run_id, approver_id, expires_at) \
           SELECT 'forged.tok', workspace, run_id, 'alice', expires_at FROM runs \
           WHERE workspace = 'ws' AND run_id = 'r2';",
    )
    .await
    .unwrap();

    let report = s.audit("ws").await.unwrap();
    let delivery = |run_id: &str, id: &str| AuditSubject::Delivery {
        run_id: run_id.into(),
        delivery_id: id.into(),
    };
    for (subject, column) in [
        (delivery("r1", "d-bob-r1"), Some("deliveries.approver_id")),
        (delivery("r2", "d-carol-r2"), Some("deliveries.channel")),
        (delivery("r2", "d-alice-r2"), None),
    ] {
        assert!(
            has_problem(&report, &subject, column),
            "{subject}: {}",
            problems(&report)
        );
    }

    // Bob's link, now in alice's name: refused, nothing written.
    let edited = s
        .answer_with_token("d-bob-r1.tok-bob", via("alice", "email"), t(20))
        .await;
    let (run_id, column) = mismatch(edited);
    assert_eq!(
        (run_id.as_str(), column.as_str()),
        ("r1", "deliveries.approver_id")
    );
    // A token the log never listed, on either path.
    let (_, column) = mismatch(
        s.answer_with_token("forged.tok", via("alice", "email"), t(20))
            .await,
    );
    assert_eq!(column, "deliveries.token_hash");
    let (_, column) = mismatch(
        s.answer_with_shared_token("forged.tok", via("alice", "webhook"), t(20))
            .await,
    );
    assert_eq!(column, "deliveries.token_hash");
    // An answer recorded under another channel than the token's.
    let (_, column) = mismatch(
        s.answer_with_token("d-carol-r1.tok-carol", via("carol", "slack"), t(20))
            .await,
    );
    assert_eq!(column, "deliveries.channel");
    let r1 = s.get_run("ws", "r1").await.unwrap().unwrap();
    assert!(r1.approvals.is_empty(), "{:?}", r1.approvals);
    assert!(
        s.find_token("d-carol-r1.tok-carol")
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_none(),
        "a refused answer leaves the token unspent"
    );

    // The untouched tokens still work: carol by her link, bob through the
    // shared webhook (naming himself), which reaches the quorum of two.
    let carol = s
        .answer_with_token("d-carol-r1.tok-carol", via("carol", "email"), t(21))
        .await
        .unwrap();
    assert!(matches!(carol, TokenAnswer::Answered(_)), "{carol:?}");
    let bob = s
        .answer_with_shared_token("d-hook-r1.tok-hook", via("bob", "webhook"), t(22))
        .await
        .unwrap();
    let TokenAnswer::Answered(outcome) = bob else {
        panic!("{bob:?}")
    };
    let AnswerOutcome::Recorded(run) = *outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(run.governance_status, GovernanceStatus::Approved);
    // The shared token is not spent, and an expired one is refused.
    assert!(matches!(
        s.answer_with_shared_token("d-hook-r2.tok-hook", via("bob", "webhook"), t(2000))
            .await
            .unwrap(),
        TokenAnswer::Refused(TokenOutcome::Expired(_))
    ));
}

/// The store writes canonical JSON, and the check of an event first tries
/// its stored bytes. A row whose data was re-spelled (same meaning, other
/// whitespace and key order) still verifies through the slow path, while a
/// change of meaning does not.
pub async fn respelled_event_data_still_verifies(b: &impl Backend) {
    let s = b.store();
    s.create_run(pending("ws", "r1", &["alice", "bob"], 1, t(1000)))
        .await
        .unwrap();
    checkpoint_now(&*s, "ws", 5).await;
    let events = all_events(&*s, "ws").await;
    let seq = events[1].seq;
    let pretty = serde_json::to_string_pretty(&events[1].data).unwrap();
    assert_ne!(pretty, to_canonical_json(&events[1].data));
    b.drop_append_only_triggers().await;
    b.raw_execute(&format!(
        "UPDATE events SET data = '{}' WHERE workspace = 'ws' AND seq = {seq};",
        sql_text(&pretty)
    ))
    .await
    .unwrap();
    let report = s.audit("ws").await.unwrap();
    assert!(report.is_ok(), "{}", problems(&report));
    assert!(s.verified_run("ws", "r1").await.unwrap().is_some());
    let ext = s.verify_extension("ws", 0, events.len() as u64).await;
    assert!(ext.is_ok(), "{ext:?}");

    let changed = pretty.replacen("policy_version", "policy_versiom", 1);
    assert_ne!(changed, pretty);
    b.raw_execute(&format!(
        "UPDATE events SET data = '{}' WHERE workspace = 'ws' AND seq = {seq};",
        sql_text(&changed)
    ))
    .await
    .unwrap();
    let report = s.audit("ws").await.unwrap();
    assert!(
        has_problem(&report, &AuditSubject::Event { seq }, Some("events.mac")),
        "{}",
        problems(&report)
    );
    let ext = s.verify_extension("ws", 0, events.len() as u64).await;
    assert!(ext.is_err(), "{ext:?}");
}
