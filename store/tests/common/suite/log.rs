//! The audit log: keys, policy reloads, the hash chain, tampering, concurrency.

use super::{head_seq, kinds};
use crate::common::{Backend, answer, pending, run, t};
use countersign_store::{
    AnswerDecision::Approve, ChainBreak, EventKind, ExecutionOutcome, GENESIS_HASH,
    GovernanceStatus, Role, RunFilter, Store, StoreError, compute_hash,
};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

pub async fn keys_lifecycle(b: &impl Backend) {
    let s = b.store();
    let hash = "5f4dcc3b5aa765d61d8327deb882cf995f4dcc3b5aa765d61d8327deb882cf99";
    let key = s
        .create_key("ws", "k1", hash, Role::Agent, Some("ci".into()), t(1))
        .await
        .unwrap();
    assert_eq!(key.role, Role::Agent);
    assert!(key.revoked_at.is_none());
    assert_eq!(s.find_key(hash).await.unwrap(), Some(key.clone()));
    assert!(s.find_key("unknown").await.unwrap().is_none());
    s.create_key("ws", "k2", "hash-2", Role::Admin, None, t(2))
        .await
        .unwrap();
    assert!(matches!(
        s.create_key("ws", "k1", "hash-3", Role::Admin, None, t(3))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        s.create_key("ws", "k3", hash, Role::Admin, None, t(3))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let ids: Vec<String> = s
        .list_keys("ws")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    assert_eq!(ids, ["k1", "k2"]);
    assert!(s.list_keys("other").await.unwrap().is_empty());

    assert!(matches!(
        s.revoke_key("other", "k1", t(4)).await,
        Err(StoreError::NotFound { .. })
    ));
    let revoked = s.revoke_key("ws", "k1", t(5)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(t(5)));
    assert_eq!(
        s.find_key(hash).await.unwrap().unwrap().revoked_at,
        Some(t(5))
    );
    let seq = head_seq(&*s, "ws").await;
    let again = s.revoke_key("ws", "k1", t(9)).await.unwrap();
    assert_eq!(
        again.revoked_at,
        Some(t(5)),
        "revoking twice keeps the first time"
    );
    assert_eq!(head_seq(&*s, "ws").await, seq);
    assert!(matches!(
        s.revoke_key("ws", "nope", t(4)).await,
        Err(StoreError::NotFound { .. })
    ));

    let events = s.events("ws", 0, 0).await.unwrap();
    assert_eq!(
        kinds(&events),
        [
            EventKind::KeyCreated,
            EventKind::KeyCreated,
            EventKind::KeyRevoked
        ]
    );
    for e in &events {
        assert!(
            !e.data.to_string().contains(hash),
            "a key hash leaked into the log"
        );
        assert!(!e.data.to_string().contains("hash-2"));
    }
}

/// Issue 16: an agent key can be bound to an actor; the binding is stored
/// with the key, listed, and recorded in the key_created event.
pub async fn keys_bound_to_an_actor(b: &impl Backend) {
    let s = b.store();
    let bound = s
        .create_bound_key(
            "ws",
            "k1",
            "hash-1",
            Role::Agent,
            Some("ci".into()),
            Some("deploy-bot".into()),
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(bound.actor.as_deref(), Some("deploy-bot"));
    assert_eq!(s.find_key("hash-1").await.unwrap(), Some(bound.clone()));
    let unbound = s
        .create_key("ws", "k2", "hash-2", Role::Agent, None, t(2))
        .await
        .unwrap();
    assert_eq!(unbound.actor, None);
    let actors: Vec<Option<String>> = s
        .list_keys("ws")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.actor)
        .collect();
    assert_eq!(actors, [Some("deploy-bot".to_owned()), None]);
    for (id, role, actor) in [
        ("k3", Role::Admin, "deploy-bot"),
        ("k4", Role::Agent, ""),
        ("k5", Role::Agent, "\u{200b}\u{2066}"),
        ("k6", Role::Agent, "bot\nname"),
    ] {
        let err = s
            .create_bound_key("ws", id, id, role, None, Some(actor.into()), t(3))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidInput { .. }),
            "{actor:?}: {err:?}"
        );
    }
    let events = s.events("ws", 0, 0).await.unwrap();
    assert_eq!(
        kinds(&events),
        [EventKind::KeyCreated, EventKind::KeyCreated]
    );
    assert_eq!(events[0].data["actor"], json!("deploy-bot"));
    assert!(
        events[1].data.get("actor").is_none(),
        "unbound keys keep the old shape"
    );
    s.verify_chain("ws").await.unwrap();
}

pub async fn policy_reload_and_events_paging(b: &impl Backend) {
    let s = b.store();
    let e = s
        .record_policy_reload("ws", "v2", false, vec!["line 3: bad".into()], t(1))
        .await
        .unwrap();
    assert_eq!(e.kind, EventKind::PolicyReloaded);
    assert_eq!(e.seq, 1);
    assert_eq!(e.prev_hash, GENESIS_HASH);
    assert_eq!(e.data["ok"], json!(false));
    assert_eq!(e.data["diagnostics"], json!(["line 3: bad"]));
    for i in 0..9 {
        s.record_policy_reload("ws", &format!("v{i}"), true, vec![], t(2 + i))
            .await
            .unwrap();
    }
    let page = s.events("ws", 3, 4).await.unwrap();
    let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [4, 5, 6, 7]);
    assert_eq!(s.events("ws", 0, 0).await.unwrap()[0], e);
    assert!(s.events("ws", 10, 5).await.unwrap().is_empty());
    assert_eq!(s.workspaces().await.unwrap(), ["ws"]);
}

/// Runs a mixed workload in two workspaces.
async fn workload(s: &dyn Store) {
    for ws in ["w1", "w2"] {
        s.create_key(ws, "k", &format!("h-{ws}"), Role::Agent, None, t(0))
            .await
            .unwrap();
        for i in 0..6 {
            let id = format!("r{i}");
            s.create_run(pending(ws, &id, &["a", "b"], 2, t(100)))
                .await
                .unwrap();
            s.record_answer(ws, &id, answer("a", Approve), t(i + 1))
                .await
                .unwrap();
            if i % 2 == 0 {
                s.record_answer(ws, &id, answer("b", Approve), t(i + 2))
                    .await
                    .unwrap();
                s.report_execution(
                    ws,
                    &id,
                    ExecutionOutcome::Executed {
                        result: json!({"i": i, "f": 1.5e-7, "s": "\u{1}é"}),
                    },
                    t(i + 3),
                )
                .await
                .unwrap();
            }
        }
        s.create_run(run(ws, "allowed", GovernanceStatus::Allowed))
            .await
            .unwrap();
        s.record_policy_reload(ws, "v1", true, vec![], t(50))
            .await
            .unwrap();
        s.revoke_key(ws, "k", t(60)).await.unwrap();
    }
    s.expire_due(t(100)).await.unwrap();
}

pub async fn chain_verifies_after_many_operations(b: &impl Backend) {
    let s = b.store();
    workload(&*s).await;
    for ws in ["w1", "w2"] {
        let report = s.verify_chain(ws).await.unwrap();
        let events = s.events(ws, 0, 1000).await.unwrap();
        assert_eq!(report.events, events.len() as u64);
        assert!(report.events > 30);
        assert_eq!(Some(&report.head_hash), events.last().map(|e| &e.hash));
        let mut prev = GENESIS_HASH.to_owned();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1, "gapless");
            assert_eq!(e.prev_hash, prev, "linked");
            assert_eq!(
                compute_hash(e),
                e.hash,
                "recomputable from the public fields"
            );
            prev.clone_from(&e.hash);
        }
        let expired = s.get_run(ws, "r1").await.unwrap().unwrap();
        assert_eq!(expired.governance_status, GovernanceStatus::Expired);
    }
    assert_eq!(s.verify_chain("empty").await.unwrap().events, 0);
    assert_eq!(
        s.verify_chain("empty").await.unwrap().head_hash,
        GENESIS_HASH
    );
}

fn broken(r: Result<countersign_store::ChainReport, StoreError>) -> (u64, ChainBreak) {
    match r {
        Err(StoreError::ChainBroken { seq, reason, .. }) => (seq, reason),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

pub async fn tampering_is_detected(b: &impl Backend) {
    let s = b.store();
    for ws in ["t1", "t2", "t3", "t4", "t5"] {
        for i in 0..3 {
            s.create_run(run(ws, &format!("r{i}"), GovernanceStatus::Allowed))
                .await
                .unwrap();
        }
        assert_eq!(s.verify_chain(ws).await.unwrap().events, 6);
    }
    // The table refuses edits while its triggers are in place.
    let refused = b
        .raw_execute("UPDATE events SET data = '{}' WHERE workspace = 't1' AND seq = 3")
        .await;
    assert!(refused.is_err(), "events accepted an UPDATE");
    let refused = b
        .raw_execute("DELETE FROM events WHERE workspace = 't1' AND seq = 6")
        .await;
    assert!(refused.is_err(), "events accepted a DELETE");
    assert_eq!(s.verify_chain("t1").await.unwrap().events, 6);

    b.drop_append_only_triggers().await;
    b.raw_execute(
        "UPDATE events SET data = replace(data, 'db.migrate', 'db.drop') \
         WHERE workspace = 't1' AND seq = 3",
    )
    .await
    .unwrap();
    let (seq, reason) = broken(s.verify_chain("t1").await);
    assert_eq!(seq, 3);
    assert!(
        matches!(reason, ChainBreak::HashMismatch { .. }),
        "{reason}"
    );

    b.raw_execute(&format!(
        "UPDATE events SET hash = '{}' WHERE workspace = 't2' AND seq = 4",
        "ab".repeat(32)
    ))
    .await
    .unwrap();
    let (seq, reason) = broken(s.verify_chain("t2").await);
    assert_eq!(seq, 4, "the first broken seq is named, not the later ones");
    assert!(
        matches!(reason, ChainBreak::HashMismatch { .. }),
        "{reason}"
    );

    b.raw_execute("DELETE FROM events WHERE workspace = 't3' AND seq = 2")
        .await
        .unwrap();
    let (seq, reason) = broken(s.verify_chain("t3").await);
    assert_eq!(seq, 2);
    assert_eq!(
        reason,
        ChainBreak::SeqGap {
            expected: 2,
            found: 3
        }
    );

    b.raw_execute("DELETE FROM events WHERE workspace = 't4' AND seq = 6")
        .await
        .unwrap();
    let (seq, reason) = broken(s.verify_chain("t4").await);
    assert_eq!(seq, 6);
    assert!(matches!(
        reason,
        ChainBreak::Truncated {
            head_seq: 6,
            last_seq: 5
        }
    ));

    b.raw_execute(&format!(
        "UPDATE events SET prev_hash = '{}' WHERE workspace = 't5' AND seq = 5",
        "cd".repeat(32)
    ))
    .await
    .unwrap();
    let (seq, reason) = broken(s.verify_chain("t5").await);
    assert_eq!(seq, 5);
    assert!(
        matches!(reason, ChainBreak::PrevHashMismatch { .. }),
        "{reason}"
    );

    // The error's message names the workspace and the seq too.
    let err = s.verify_chain("t1").await.unwrap_err();
    assert!(err.to_string().contains("`t1`"), "{err}");
    assert!(err.to_string().contains("seq 3"), "{err}");
}

pub async fn concurrent_creates(b: &impl Backend) {
    let s = b.store();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut r = run("ws", &format!("r{i:03}"), GovernanceStatus::Allowed);
            r.proposal.created_at = t(i);
            s.create_run(r).await
        }));
    }
    let mut chain_seqs = HashSet::new();
    for task in tasks {
        let created = task.await.unwrap().unwrap();
        assert!(chain_seqs.insert(created.run().chain.seq));
    }
    let report = s.verify_chain("ws").await.unwrap();
    assert_eq!(report.events, 400);
    let mut after = 0;
    let mut seqs = Vec::new();
    loop {
        let page = s.events("ws", after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        seqs.extend(page.iter().map(|e| e.seq));
    }
    assert_eq!(seqs, (1..=400).collect::<Vec<u64>>());
    let listed = s
        .list_runs(
            "ws",
            RunFilter {
                limit: Some(500),
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.runs.len(), 200);

    if b.batches() {
        let stats = s.batch_stats().unwrap();
        assert!(stats.sum >= 200, "{stats:?}");
        assert!(stats.max > 1, "no batching happened: {stats:?}");
        assert!(stats.count < stats.sum, "{stats:?}");
        assert_eq!(stats.buckets.last().map(|b| b.1), Some(stats.count));
    } else {
        assert!(s.batch_stats().is_none());
    }
}

pub async fn health(b: &impl Backend) {
    b.store().health().await.unwrap();
}
