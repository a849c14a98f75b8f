//! Runs: what an agent proposes, what the policy decided, and where the run stands now.

use super::approvals::{ApprovalAnswer, ApprovalRequirement};
use super::deliveries::NewDelivery;
use super::events::ChainPosition;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

string_enum! {
    /// The governance state of a run.
    pub enum GovernanceStatus {
        /// The policy allowed the action outright.
        Allowed => "allowed",
        /// Waiting for approvers.
        PendingApproval => "pending_approval",
        /// The policy blocked the action.
        Blocked => "blocked",
        /// Approvers reached the quorum.
        Approved => "approved",
        /// An approver rejected the action.
        Rejected => "rejected",
        /// Nobody decided before the approval expired.
        Expired => "expired",
    }
}

string_enum! {
    /// The execution state of a run, as reported by the agent's application.
    pub enum ExecutionStatus {
        /// The run may not be executed (blocked, pending, rejected, expired).
        NotExecuted => "not_executed",
        /// The run may be executed and its outcome has not been reported.
        AwaitingExecution => "awaiting_execution",
        /// The application reported a successful execution.
        Executed => "executed",
        /// The application reported a failed execution.
        Failed => "failed",
    }
}

/// The policy's decision on a new run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Allowed, PendingApproval or Blocked.
    pub governance_status: GovernanceStatus,
    /// The rule that decided, if any.
    pub rule: Option<String>,
    /// Human-readable reason.
    pub reason: String,
    /// Version of the policy set that decided.
    pub policy_version: String,
    /// Risk label, if the policy gave one.
    pub risk: Option<String>,
    /// Matched, shadow and error details, stored as given.
    pub details: Value,
}

/// What a run is created with and keeps for its whole life: the agent's
/// request and the policy's decision on it. [`NewRun`] and [`Run`] both
/// carry it, flattened, so their JSON keeps every field at the top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Workspace (tenant).
    pub workspace: String,
    /// Run id chosen by the caller, unique in the workspace.
    pub run_id: String,
    /// Action name.
    pub action: String,
    /// Who proposed the action (cannot approve it).
    pub actor: Option<String>,
    /// Where the proposal came from.
    pub source: Option<Value>,
    /// What the surface the proposal came through adds about it (the MCP
    /// proxy's `{"mcp": {"server", "tool", "client"}}`), an object; `None`
    /// for requests without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The agent's reasoning.
    pub reasoning: Option<String>,
    /// The payload as JSON text, stored verbatim.
    pub payload_json: String,
    /// Hash of the payload.
    pub payload_hash: String,
    /// Short human-readable summary of the payload.
    pub payload_summary: String,
    /// Idempotency key, unique per workspace.
    pub idempotency_key: Option<String>,
    /// Hash of the whole request, compared on idempotent retries.
    pub request_hash: String,
    /// The policy's decision at creation.
    pub decision: DecisionRecord,
    /// The approval requirement: present iff the decision is
    /// PendingApproval.
    pub approval: Option<ApprovalRequirement>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A run to create, as decided by the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    /// The request and the policy's decision.
    #[serde(flatten)]
    pub proposal: Proposal,
    /// Approval deliveries to queue (only for pending runs).
    #[serde(default)]
    pub deliveries: Vec<NewDelivery>,
}

/// A run, as readers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The request and the policy's decision, as created.
    #[serde(flatten)]
    pub proposal: Proposal,
    /// Current governance status.
    pub governance_status: GovernanceStatus,
    /// Current execution status.
    pub execution_status: ExecutionStatus,
    /// True iff governance is Allowed/Approved and execution is AwaitingExecution.
    pub executable: bool,
    /// Every recorded answer, oldest first.
    pub approvals: Vec<ApprovalAnswer>,
    /// The execution report, once reported.
    pub execution: Option<ExecutionReport>,
    /// Time of the latest change.
    pub updated_at: DateTime<Utc>,
    /// The run's latest event in the hash chain.
    pub chain: ChainPosition,
}

/// Whether a run in these states may be executed.
#[must_use]
pub fn is_executable(governance: GovernanceStatus, execution: ExecutionStatus) -> bool {
    matches!(
        governance,
        GovernanceStatus::Allowed | GovernanceStatus::Approved
    ) && execution == ExecutionStatus::AwaitingExecution
}

/// What the application reports about a run's execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExecutionOutcome {
    /// The action ran.
    Executed {
        /// What it returned.
        result: Value,
    },
    /// The action failed.
    Failed {
        /// Why.
        error: String,
    },
}

/// A recorded execution report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionReport {
    /// The reported outcome.
    pub outcome: ExecutionOutcome,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
}

/// Filters and paging for [`crate::Store::list_runs`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    /// Only runs in this governance status.
    pub governance_status: Option<GovernanceStatus>,
    /// Only runs in this execution status.
    pub execution_status: Option<ExecutionStatus>,
    /// Only runs of this action.
    pub action: Option<String>,
    /// Only runs proposed by this actor.
    pub actor: Option<String>,
    /// Page size: default [`RunFilter::DEFAULT_LIMIT`], at most [`RunFilter::MAX_LIMIT`].
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl RunFilter {
    /// Page size when none is given.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 500;

    /// The page size to use: the default for none or 0, capped at the maximum.
    #[must_use]
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            None | Some(0) => Self::DEFAULT_LIMIT,
            Some(n) => n.min(Self::MAX_LIMIT),
        }
    }
}

/// One page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    /// The runs of this page.
    pub runs: Vec<Run>,
    /// Cursor of the next page; None on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn proposal() -> Proposal {
        Proposal {
            workspace: "w".into(),
            run_id: "r1".into(),
            action: "db.migrate".into(),
            actor: Some("agent".into()),
            source: Some(json!({"session": 7})),
            context: None,
            reasoning: None,
            payload_json: "{}".into(),
            payload_hash: "ph".into(),
            payload_summary: "migrate".into(),
            idempotency_key: None,
            request_hash: "rh".into(),
            decision: DecisionRecord {
                governance_status: GovernanceStatus::Allowed,
                rule: None,
                reason: "ok".into(),
                policy_version: "v1".into(),
                risk: None,
                details: json!({}),
            },
            approval: None,
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        }
    }

    /// The proposal is flattened: a run's JSON has every field at the top
    /// level, as it had before `Proposal` existed, and reads back the same.
    #[test]
    fn run_json_keeps_the_proposal_fields_at_the_top_level() {
        let run = Run {
            proposal: proposal(),
            governance_status: GovernanceStatus::Allowed,
            execution_status: ExecutionStatus::AwaitingExecution,
            executable: true,
            approvals: Vec::new(),
            execution: None,
            updated_at: DateTime::from_timestamp(1_700_000_001, 0).unwrap_or_default(),
            chain: ChainPosition {
                seq: 3,
                hash: "h".into(),
            },
        };
        let value = serde_json::to_value(&run).unwrap_or_default();
        let mut keys: Vec<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "action",
                "actor",
                "approval",
                "approvals",
                "chain",
                "created_at",
                "decision",
                "executable",
                "execution",
                "execution_status",
                "governance_status",
                "idempotency_key",
                "payload_hash",
                "payload_json",
                "payload_summary",
                "reasoning",
                "request_hash",
                "run_id",
                "source",
                "updated_at",
                "workspace",
            ]
        );
        assert_eq!(value["run_id"], "r1");
        assert_eq!(value["source"], json!({"session": 7}));
        let back: Option<Run> = serde_json::from_value(value).ok();
        assert_eq!(back, Some(run));
    }

    /// A new run's JSON: the proposal's fields and `deliveries`, which may
    /// be left out.
    #[test]
    fn new_run_json_keeps_the_proposal_fields_at_the_top_level() {
        let new = NewRun {
            proposal: proposal(),
            deliveries: Vec::new(),
        };
        let mut value = serde_json::to_value(&new).unwrap_or_default();
        assert_eq!(value["action"], "db.migrate");
        assert_eq!(value["deliveries"], json!([]));
        assert!(value.get("proposal").is_none());
        if let Some(o) = value.as_object_mut() {
            o.remove("deliveries");
        }
        let back: Option<NewRun> = serde_json::from_value(value).ok();
        assert_eq!(back, Some(new));
    }
}
