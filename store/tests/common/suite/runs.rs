//! Runs: creation, reads, listing, idempotency, execution reports, tenants.

use super::{head_seq, kinds};
use crate::common::{Backend, answer, pending, run, t};
use countersign_store::{
    AnswerDecision::Approve, CreateRunOutcome, EventKind, ExecutionOutcome, ExecutionStatus,
    GovernanceStatus, RunFilter, StoreError,
};
use serde_json::json;
use std::sync::Arc;

pub async fn create_and_get(b: &impl Backend) {
    let s = b.store();
    let mut new = run("ws1", "r-allowed", GovernanceStatus::Allowed);
    // Nanoseconds are truncated to microseconds.
    new.proposal.created_at = t(0) + chrono::Duration::nanoseconds(1_234_567);
    let created = s.create_run(new.clone()).await.unwrap();
    let CreateRunOutcome::Created(run1) = created else {
        panic!("expected Created, got {created:?}")
    };
    assert_eq!(run1.governance_status, GovernanceStatus::Allowed);
    assert_eq!(run1.execution_status, ExecutionStatus::AwaitingExecution);
    assert!(run1.executable);
    assert_eq!(
        run1.proposal.created_at,
        t(0) + chrono::Duration::microseconds(1_234)
    );
    assert_eq!(
        run1.proposal.payload_json, new.proposal.payload_json,
        "payload text kept verbatim"
    );
    assert_eq!(run1.chain.seq, 2);
    let fetched = s.get_run("ws1", "r-allowed").await.unwrap().unwrap();
    assert_eq!(
        fetched, run1,
        "what get_run reads equals what create_run returned"
    );
    assert_eq!(
        fetched.proposal.source,
        Some(json!({"agent": "builder", "session": 7}))
    );
    assert_eq!(fetched.proposal.decision, new.proposal.decision);

    let events = s.events("ws1", 0, 0).await.unwrap();
    assert_eq!(
        kinds(&events),
        [EventKind::RunProposed, EventKind::PolicyDecided]
    );
    assert_eq!(events[1].hash, run1.chain.hash);
    assert_eq!(
        events[0].data["payload_json"],
        json!(new.proposal.payload_json)
    );
    assert_eq!(events[0].run_id.as_deref(), Some("r-allowed"));

    let p = s
        .create_run(run("ws1", "r-pending", GovernanceStatus::PendingApproval))
        .await
        .unwrap()
        .into_run();
    assert_eq!(p.execution_status, ExecutionStatus::NotExecuted);
    assert!(!p.executable);
    assert_eq!(p.chain.seq, 5);
    let events = s.events("ws1", 2, 10).await.unwrap();
    assert_eq!(
        kinds(&events),
        [
            EventKind::RunProposed,
            EventKind::PolicyDecided,
            EventKind::ApprovalRequested
        ]
    );
    assert_eq!(events[2].data["quorum"], json!(1));
    assert_eq!(
        events[2].data["expires_at"],
        json!("2030-01-01T01:00:00.000000Z")
    );

    let blocked = s
        .create_run(run("ws1", "r-blocked", GovernanceStatus::Blocked))
        .await
        .unwrap()
        .into_run();
    assert_eq!(blocked.governance_status, GovernanceStatus::Blocked);
    assert_eq!(blocked.execution_status, ExecutionStatus::NotExecuted);
    assert!(!blocked.executable);

    assert!(s.get_run("ws1", "nope").await.unwrap().is_none());

    // Invalid decisions are refused before anything is written.
    let mut bad = run("ws1", "r-bad", GovernanceStatus::PendingApproval);
    bad.proposal.approval = None;
    assert!(matches!(
        s.create_run(bad).await,
        Err(StoreError::InvalidInput { .. })
    ));
    let bad = pending("ws1", "r-bad2", &["a"], 2, t(10));
    assert!(matches!(
        s.create_run(bad).await,
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(s.get_run("ws1", "r-bad2").await.unwrap().is_none());
    assert_eq!(head_seq(&*s, "ws1").await, 7);
}

pub async fn list_filters_and_pagination(b: &impl Backend) {
    let s = b.store();
    // r00..r11: created every 10 s, except r04/r05 which share a timestamp
    // (ordered by run_id desc).
    for i in 0..12_i64 {
        let status = match i % 3 {
            0 => GovernanceStatus::Allowed,
            1 => GovernanceStatus::Blocked,
            _ => GovernanceStatus::PendingApproval,
        };
        let mut r = run("ws", &format!("r{i:02}"), status);
        r.proposal.created_at = t(if i == 5 { 40 } else { i * 10 });
        r.proposal.action = if i % 2 == 0 {
            "even".into()
        } else {
            "odd".into()
        };
        r.proposal.actor = Some(format!("actor{}", i % 4));
        s.create_run(r).await.unwrap();
    }
    let all = s.list_runs("ws", RunFilter::default()).await.unwrap();
    let ids: Vec<&str> = all
        .runs
        .iter()
        .map(|r| r.proposal.run_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "r11", "r10", "r09", "r08", "r07", "r06", "r05", "r04", "r03", "r02", "r01", "r00"
        ]
    );
    assert!(all.next_cursor.is_none());

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = s
            .list_runs(
                "ws",
                RunFilter {
                    limit: Some(5),
                    cursor: cursor.clone(),
                    ..RunFilter::default()
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.runs.len() <= 5);
        seen.extend(page.runs.iter().map(|r| r.proposal.run_id.clone()));
        if pages == 1 {
            // A run created between pages must not shift the later pages.
            let mut newer = run("ws", "r99", GovernanceStatus::Allowed);
            newer.proposal.created_at = t(1000);
            s.create_run(newer).await.unwrap();
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, ids,
        "pages concatenate to the full list, no duplicates"
    );

    let only = |f: RunFilter| {
        let s = Arc::clone(&s);
        async move {
            let page = s.list_runs("ws", f).await.unwrap();
            page.runs
                .into_iter()
                .map(|r| r.proposal.run_id)
                .collect::<Vec<_>>()
        }
    };
    let blocked = only(RunFilter {
        governance_status: Some(GovernanceStatus::Blocked),
        ..RunFilter::default()
    })
    .await;
    assert_eq!(blocked, ["r10", "r07", "r04", "r01"]);
    let awaiting = only(RunFilter {
        execution_status: Some(ExecutionStatus::AwaitingExecution),
        ..RunFilter::default()
    })
    .await;
    assert_eq!(awaiting, ["r99", "r09", "r06", "r03", "r00"]);
    let odd_actor1 = only(RunFilter {
        action: Some("odd".into()),
        actor: Some("actor1".into()),
        ..RunFilter::default()
    })
    .await;
    assert_eq!(odd_actor1, ["r09", "r05", "r01"]);

    for bad in ["garbage", "", "00ff", "72317c78"] {
        let r = s
            .list_runs(
                "ws",
                RunFilter {
                    cursor: Some(bad.into()),
                    ..RunFilter::default()
                },
            )
            .await;
        assert!(matches!(r, Err(StoreError::InvalidCursor)), "{bad}: {r:?}");
    }
}

pub async fn default_and_max_page_size(b: &impl Backend) {
    let s = b.store();
    for i in 0..55 {
        let mut r = run("ws", &format!("r{i:03}"), GovernanceStatus::Blocked);
        r.proposal.created_at = t(i);
        s.create_run(r).await.unwrap();
    }
    let page = s.list_runs("ws", RunFilter::default()).await.unwrap();
    assert_eq!(page.runs.len(), 50);
    assert!(page.next_cursor.is_some());
    let page = s
        .list_runs(
            "ws",
            RunFilter {
                limit: Some(10_000),
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.runs.len(), 55);
    assert!(page.next_cursor.is_none());
}

pub async fn idempotency(b: &impl Backend) {
    let s = b.store();
    let mut first = run("ws", "r1", GovernanceStatus::PendingApproval);
    first.proposal.idempotency_key = Some("idem-1".into());
    let created = s.create_run(first.clone()).await.unwrap();
    assert!(matches!(created, CreateRunOutcome::Created(_)));
    let seq = head_seq(&*s, "ws").await;

    // Same key and request: the original run, whatever run_id the retry carries.
    let mut retry = first.clone();
    retry.proposal.run_id = "r1-retry".into();
    let again = s.create_run(retry).await.unwrap();
    let CreateRunOutcome::Existing(existing) = again else {
        panic!("expected Existing, got {again:?}")
    };
    assert_eq!(existing.proposal.run_id, "r1");
    assert_eq!(head_seq(&*s, "ws").await, seq, "a retry appends nothing");
    assert!(s.get_run("ws", "r1-retry").await.unwrap().is_none());

    // The retry sees the run's current state.
    s.record_answer("ws", "r1", answer("a", Approve), t(5))
        .await
        .unwrap();
    let again = s.create_run(first.clone()).await.unwrap();
    assert_eq!(again.run().governance_status, GovernanceStatus::Approved);

    let mut different = first.clone();
    different.proposal.request_hash = "other".into();
    let err = s.create_run(different).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::IdempotencyConflict { idempotency_key, existing_run_id }
            if idempotency_key == "idem-1" && existing_run_id == "r1"),
        "{err:?}"
    );

    // Keys are per workspace.
    let mut other_ws = first.clone();
    other_ws.proposal.workspace = "ws-other".into();
    other_ws.proposal.request_hash = "other".into();
    assert!(matches!(
        s.create_run(other_ws).await.unwrap(),
        CreateRunOutcome::Created(_)
    ));

    // A taken run id without a key is a conflict, not an overwrite.
    let dup = run("ws", "r1", GovernanceStatus::Allowed);
    assert!(matches!(
        s.create_run(dup).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        s.get_run("ws", "r1")
            .await
            .unwrap()
            .unwrap()
            .proposal
            .action,
        first.proposal.action
    );
}

pub async fn report_execution_rules(b: &impl Backend) {
    let s = b.store();
    s.create_run(run("ws", "ok", GovernanceStatus::Allowed))
        .await
        .unwrap();
    s.create_run(run("ws", "fail", GovernanceStatus::Allowed))
        .await
        .unwrap();
    s.create_run(run("ws", "blocked", GovernanceStatus::Blocked))
        .await
        .unwrap();
    s.create_run(run("ws", "pending", GovernanceStatus::PendingApproval))
        .await
        .unwrap();

    let outcome = ExecutionOutcome::Executed {
        result: json!({"rows": 3, "ratio": 0.1}),
    };
    let done = s
        .report_execution("ws", "ok", outcome.clone(), t(10))
        .await
        .unwrap();
    assert_eq!(done.execution_status, ExecutionStatus::Executed);
    assert!(!done.executable);
    assert_eq!(done.execution.as_ref().unwrap().reported_at, t(10));
    assert_eq!(done.updated_at, t(10));
    let seq = head_seq(&*s, "ws").await;
    assert_eq!(done.chain.seq, seq);
    let last = s.events("ws", seq - 1, 1).await.unwrap();
    assert_eq!(last[0].kind, EventKind::ExecutionReported);

    // Identical repeat: Ok, unchanged, no event.
    let repeat = s
        .report_execution("ws", "ok", outcome.clone(), t(20))
        .await
        .unwrap();
    assert_eq!(repeat, done);
    assert_eq!(head_seq(&*s, "ws").await, seq);

    let different = ExecutionOutcome::Failed {
        error: "boom".into(),
    };
    assert!(matches!(
        s.report_execution("ws", "ok", different.clone(), t(30))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let failed = s
        .report_execution("ws", "fail", different, t(30))
        .await
        .unwrap();
    assert_eq!(failed.execution_status, ExecutionStatus::Failed);

    for not_executable in ["blocked", "pending"] {
        let r = s
            .report_execution("ws", not_executable, outcome.clone(), t(40))
            .await;
        assert!(
            matches!(r, Err(StoreError::Conflict { .. })),
            "{not_executable}: {r:?}"
        );
    }
    assert!(matches!(
        s.report_execution("ws", "missing", outcome, t(40)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.get_run("ws", "blocked")
            .await
            .unwrap()
            .unwrap()
            .execution_status,
        ExecutionStatus::NotExecuted
    );
}

pub async fn tenant_isolation(b: &impl Backend) {
    let s = b.store();
    s.create_run(run("A", "r", GovernanceStatus::Allowed))
        .await
        .unwrap();
    s.create_run(pending("A", "p", &["a"], 1, t(100)))
        .await
        .unwrap();
    let a_head = s.verify_chain("A").await.unwrap();

    assert!(s.get_run("B", "r").await.unwrap().is_none());
    assert!(
        s.list_runs("B", RunFilter::default())
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    assert!(s.events("B", 0, 0).await.unwrap().is_empty());
    assert!(matches!(
        s.report_execution(
            "B",
            "r",
            ExecutionOutcome::Executed { result: json!(1) },
            t(1)
        )
        .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.record_answer("B", "p", answer("a", Approve), t(1)).await,
        Err(StoreError::NotFound { .. })
    ));
    // B may use the same run id for its own run.
    s.create_run(run("B", "r", GovernanceStatus::Blocked))
        .await
        .unwrap();
    assert_eq!(
        s.get_run("A", "r")
            .await
            .unwrap()
            .unwrap()
            .governance_status,
        GovernanceStatus::Allowed
    );
    assert_eq!(
        s.verify_chain("A").await.unwrap(),
        a_head,
        "A's chain untouched"
    );
    assert_eq!(
        s.verify_chain("B").await.unwrap().events,
        2,
        "B has its own chain"
    );
    let a = s.get_run("A", "p").await.unwrap().unwrap();
    assert!(a.approvals.is_empty());
    assert_eq!(s.workspaces().await.unwrap(), ["A", "B"]);
}

/// Issue 17: a run's `context` object is kept in its row and its
/// `run_proposed` event; the row agrees with the events (audit), a run
/// without one has none and no `context` key in its event, and anything but
/// an object is refused.
pub async fn context_is_kept(b: &impl Backend) {
    let s = b.store();
    let mut new = run("ws", "r-ctx", GovernanceStatus::Allowed);
    let context = json!({"mcp": {"server": "fs", "tool": "write_file", "client": {"name": "c", "version": "1"}}});
    new.proposal.context = Some(context.clone());
    s.create_run(new).await.unwrap();
    s.create_run(run("ws", "r-plain", GovernanceStatus::Allowed))
        .await
        .unwrap();
    let got = s.get_run("ws", "r-ctx").await.unwrap().unwrap();
    assert_eq!(got.proposal.context, Some(context.clone()));
    assert_eq!(
        s.get_run("ws", "r-plain")
            .await
            .unwrap()
            .unwrap()
            .proposal
            .context,
        None
    );
    let events = s.events("ws", 0, 0).await.unwrap();
    assert_eq!(events[0].data["context"], context);
    assert!(
        events[2].data.get("context").is_none(),
        "{}",
        events[2].data
    );
    assert!(s.audit("ws").await.unwrap().is_ok());

    let mut bad = run("ws", "r-bad", GovernanceStatus::Allowed);
    bad.proposal.context = Some(json!(["not", "an", "object"]));
    assert!(matches!(
        s.create_run(bad).await,
        Err(StoreError::InvalidInput { .. })
    ));
}
