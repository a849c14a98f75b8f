//! The verifiable log's records: tree heads, stored checkpoints, and what a
//! full audit of a workspace reports.

use crate::tlog::Hash;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Size and root hash of a workspace's Merkle tree (RFC 9162 §2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// Number of leaves: the workspace's number of events.
    pub size: u64,
    /// Root hash (the empty tree's hash for size 0).
    pub root: Hash,
}

/// A stretch of a workspace's log checked by
/// [`crate::Store::verify_extension`]: the root recomputed from the stored
/// frontier at `from.size`, and the root of that frontier with the checked
/// events appended (equal to the stored root at `to.size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeExtension {
    /// The tree before the checked events, from stored hashes: the caller
    /// compares it with what it signed before.
    pub from: TreeHead,
    /// The tree after them, recomputed from the authenticated events.
    pub to: TreeHead,
}

/// A checkpoint the gate signed, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    /// The workspace whose tree it covers.
    pub workspace: String,
    /// Tree size it commits to.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// The signed note exactly as signed and served (C2SP signed-note).
    pub note: String,
    /// When it was signed.
    pub created_at: DateTime<Utc>,
}

/// What an audit problem is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "subject", rename_all = "snake_case")]
pub enum AuditSubject {
    /// The workspace as a whole (missing events, head...).
    Workspace,
    /// One event, by seq.
    Event {
        /// The event's seq.
        seq: u64,
    },
    /// One stored Merkle tree hash, by its stored index.
    TreeHash {
        /// The stored-hash index.
        index: u64,
    },
    /// One stored checkpoint, by tree size.
    Checkpoint {
        /// The checkpoint's tree size.
        size: u64,
    },
    /// A row of `runs`.
    Run {
        /// The run.
        run_id: String,
    },
    /// A row of `approvals`.
    Approval {
        /// The run.
        run_id: String,
        /// 0-based position of the answer.
        answer_no: u64,
    },
    /// A row of `api_keys`.
    Key {
        /// The key.
        key_id: String,
    },
    /// A row of `deliveries`.
    Delivery {
        /// The run it belongs to.
        run_id: String,
        /// The delivery.
        delivery_id: String,
    },
}

impl std::fmt::Display for AuditSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Workspace => f.write_str("workspace"),
            Self::Event { seq } => write!(f, "event seq {seq}"),
            Self::TreeHash { index } => write!(f, "tree hash {index}"),
            Self::Checkpoint { size } => write!(f, "checkpoint at size {size}"),
            Self::Run { run_id } => write!(f, "run `{run_id}`"),
            Self::Approval { run_id, answer_no } => {
                write!(f, "approval #{answer_no} of run `{run_id}`")
            }
            Self::Key { key_id } => write!(f, "key `{key_id}`"),
            Self::Delivery {
                run_id,
                delivery_id,
            } => write!(f, "delivery `{delivery_id}` of run `{run_id}`"),
        }
    }
}

/// One thing a full audit found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditProblem {
    /// What is wrong.
    pub subject: AuditSubject,
    /// The differing column, for a projection row.
    pub column: Option<String>,
    /// What was found and what the log says.
    pub message: String,
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(f, "{} column {column}: {}", self.subject, self.message),
            None => write!(f, "{}: {}", self.subject, self.message),
        }
    }
}

/// The result of [`crate::Store::audit`]: everything checked, and every
/// problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The workspace audited.
    pub workspace: String,
    /// Events read.
    pub events: u64,
    /// Hash of the last event read (64 zeros when there is none).
    pub head_hash: String,
    /// The tree recomputed from the events.
    pub tree: TreeHead,
    /// Stored checkpoints checked.
    pub checkpoints: u64,
    /// Run rows checked.
    pub runs: u64,
    /// Key rows checked.
    pub keys: u64,
    /// The problems, in the order found, at most [`crate::MAX_AUDIT_PROBLEMS`].
    pub problems: Vec<AuditProblem>,
    /// Problems found beyond those listed.
    pub more_problems: u64,
}

impl AuditReport {
    /// Whether nothing was found wrong.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.more_problems == 0
    }
}
