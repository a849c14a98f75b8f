//! Events: the hash-chained audit log of a workspace, and what its
//! verification reports.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

string_enum! {
    /// The kind of an audit event. Marked non-exhaustive: new kinds are added
    /// as the product grows.
    #[non_exhaustive]
    pub enum EventKind {
        /// An agent proposed a run.
        RunProposed => "run_proposed",
        /// The policy decided on a run.
        PolicyDecided => "policy_decided",
        /// The run needs approval from a group.
        ApprovalRequested => "approval_requested",
        /// An approver approved (the data says whether the answer counted).
        ApprovalGranted => "approval_granted",
        /// An approver rejected (the data says whether the answer counted).
        ApprovalRejected => "approval_rejected",
        /// A pending run expired.
        RunExpired => "run_expired",
        /// The application reported the run's execution.
        ExecutionReported => "execution_reported",
        /// An API key was created.
        KeyCreated => "key_created",
        /// An API key was revoked.
        KeyRevoked => "key_revoked",
        /// A policy set was (re)loaded.
        PolicyReloaded => "policy_reloaded",
        /// An admin created a read-only client share link.
        ShareLinkCreated => "share_link_created",
        /// An admin revoked a client share link.
        ShareLinkRevoked => "share_link_revoked",
    }
}

/// One audit event of a workspace's hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Workspace whose chain this event belongs to.
    pub workspace: String,
    /// 1-based, gapless per workspace.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// The run concerned, if any.
    pub run_id: Option<String>,
    /// When it happened (microsecond precision).
    pub at: DateTime<Utc>,
    /// Event-specific data.
    pub data: Value,
    /// Hash of the previous event (64 zeros for seq 1).
    pub prev_hash: String,
    /// `hex(SHA-256(prev_hash || canonical JSON of this event without hash))`.
    pub hash: String,
}

/// Where a run stands in its workspace's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPosition {
    /// Seq of the run's latest event.
    pub seq: u64,
    /// Hash of the run's latest event.
    pub hash: String,
}

/// Result of a successful [`crate::Store::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// Number of events verified.
    pub events: u64,
    /// Hash of the last event (64 zeros when there is none).
    pub head_hash: String,
}
