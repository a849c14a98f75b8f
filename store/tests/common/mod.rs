//! Shared harness for the backend test suites: a [`Backend`] gives the
//! suite a store plus raw database access (to tamper with rows the way an
//! attacker with database access would), and [`suite`] holds the tests,
//! written once against `Arc<dyn Store>`.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod suite;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use countersign_store::{
    AnswerDecision, AnswerInput, ApprovalRequirement, ApproverRef, DecisionRecord,
    GovernanceStatus, LogKey, NewRun, Proposal, Store,
};
use serde_json::json;
use std::sync::Arc;

/// A store under test, with raw access to its database.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The store.
    fn store(&self) -> Arc<dyn Store>;
    /// Runs SQL directly on the database, bypassing the store.
    async fn raw_execute(&self, sql: &str) -> Result<(), String>;
    /// Drops the triggers that make `events` (and `tree_hashes`,
    /// `checkpoints`) append-only.
    async fn drop_append_only_triggers(&self);
    /// An SQL literal of a hash column's type holding `bytes`.
    fn blob_literal(&self, bytes: &[u8]) -> String;
    /// Another store on the same database, opened with `key`.
    async fn reopen(&self, key: LogKey) -> Arc<dyn Store>;
    /// Whether the writer batches commits (SQLite).
    fn batches(&self) -> bool;
}

/// The log key every test store is opened with.
pub fn log_key() -> LogKey {
    LogKey::from_bytes([42; 32])
}

/// Generates one `#[tokio::test]` per suite function for a backend.
/// `$make` is an async fn returning `Option<impl Backend>` (None = skipped).
#[macro_export]
macro_rules! backend_tests {
    ($make:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(backend) = $make().await else { return };
                common::suite::$name(&backend).await;
            }
        )+
    };
}

/// The suite's clock: a fixed base time plus `secs` seconds.
pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

fn decision(status: GovernanceStatus) -> DecisionRecord {
    DecisionRecord {
        governance_status: status,
        rule: Some(format!("rule-{status}")),
        reason: format!("decided {status}"),
        policy_version: "v1".into(),
        risk: Some("low".into()),
        details: json!({"matched": ["r1"], "shadow": [], "errors": [], "score": 0.25}),
    }
}

/// A run decided `status` (pending runs get approvers a, b, c, quorum 1).
pub fn run(workspace: &str, run_id: &str, status: GovernanceStatus) -> NewRun {
    let approval = (status == GovernanceStatus::PendingApproval).then(|| ApprovalRequirement {
        group: "ops".into(),
        quorum: 1,
        expires_at: t(3600),
        approvers: ["a", "b", "c"]
            .iter()
            .map(|id| ApproverRef {
                id: (*id).into(),
                email: Some(format!("{id}@example.test")),
                slack: None,
                name: None,
                eligible_from: None,
            })
            .collect(),
    });
    NewRun {
        proposal: Proposal {
            workspace: workspace.into(),
            run_id: run_id.into(),
            action: "db.migrate".into(),
            actor: Some("agent-1".into()),
            source: Some(json!({"agent": "builder", "session": 7})),
            context: None,
            reasoning: Some("because".into()),
            payload_json: r#"{"amount": 12.50, "big": 123456789012345678901234567890}"#.into(),
            payload_hash: "ph".into(),
            payload_summary: "migrate".into(),
            idempotency_key: None,
            request_hash: format!("rh-{run_id}"),
            decision: decision(status),
            approval,
            created_at: t(0),
        },
        deliveries: Vec::new(),
    }
}

/// A pending run needing `quorum` of `approvers`, expiring at `expires_at`.
pub fn pending(
    workspace: &str,
    run_id: &str,
    approvers: &[&str],
    quorum: u32,
    expires_at: DateTime<Utc>,
) -> NewRun {
    let mut r = run(workspace, run_id, GovernanceStatus::PendingApproval);
    if let Some(a) = r.proposal.approval.as_mut() {
        a.quorum = quorum;
        a.expires_at = expires_at;
        a.approvers = approvers
            .iter()
            .map(|id| ApproverRef {
                id: (*id).into(),
                email: None,
                slack: Some(format!("@{id}")),
                name: None,
                eligible_from: None,
            })
            .collect();
    }
    r
}

/// An answer through the web channel.
pub fn answer(approver: &str, decision: AnswerDecision) -> AnswerInput {
    AnswerInput {
        approver_id: approver.into(),
        decision,
        channel: "web".into(),
        comment: Some("ok".into()),
        client_addr: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
    }
}
