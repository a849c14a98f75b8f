//! Approvals: who must answer a pending run, and their answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

string_enum! {
    /// An approver's answer.
    pub enum AnswerDecision {
        /// Approve the action.
        Approve => "approve",
        /// Reject the action.
        Reject => "reject",
    }
}

/// Someone who may answer an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverRef {
    /// Approver id, matched against [`AnswerInput::approver_id`].
    pub id: String,
    /// E-mail address for delivery.
    pub email: Option<String>,
    /// Slack handle or id for delivery.
    pub slack: Option<String>,
    /// The member's name in the policy (`name:`), one of their identities
    /// for the no-self-approval rule. Absent in runs recorded before it was
    /// kept, and left out of the stored JSON when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When this approver may first answer: set for the members of an
    /// escalation group, who may answer only once `escalate_after` has
    /// passed; `None` for those who may answer from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligible_from: Option<DateTime<Utc>>,
}

/// What approval a pending run needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequirement {
    /// Approver group name.
    pub group: String,
    /// Number of distinct approvals needed (at least 1, at most the number of approvers).
    pub quorum: u32,
    /// When the request expires (the run expires at this instant).
    pub expires_at: DateTime<Utc>,
    /// Who may answer.
    pub approvers: Vec<ApproverRef>,
}

impl ApprovalRequirement {
    /// When `approver_id` may first answer, if that is after `now`: the
    /// store refuses their answer until then.
    #[must_use]
    pub fn not_yet_eligible(&self, approver_id: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.approvers
            .iter()
            .find(|r| r.id == approver_id)
            .and_then(|r| r.eligible_from)
            .filter(|from| now < *from)
    }
}

/// An approver's answer as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerInput {
    /// Who answers.
    pub approver_id: String,
    /// Approve or reject.
    pub decision: AnswerDecision,
    /// Channel the answer came through ("web", "slack"...).
    pub channel: String,
    /// Optional comment.
    pub comment: Option<String>,
    /// Client address, for the audit log.
    pub client_addr: Option<String>,
    /// Client user agent, for the audit log.
    pub user_agent: Option<String>,
}

/// A recorded answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalAnswer {
    /// Who answered.
    pub approver_id: String,
    /// Approve or reject.
    pub decision: AnswerDecision,
    /// Channel the answer came through.
    pub channel: String,
    /// Optional comment.
    pub comment: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// When the answer was recorded.
    pub answered_at: DateTime<Utc>,
    /// False for answers that came after the run was decided, and duplicates.
    pub counted: bool,
}
