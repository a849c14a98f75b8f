//! The store's public data types: runs, answers, keys, events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Defines a fieldless enum stored as a snake_case string, with `as_str`,
/// `parse` and the list of all values kept in one place, so adding a variant
/// is a one-line change.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The snake_case name, as serialized and stored.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }

            /// Parses the snake_case name.
            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What an API key may do.
    pub enum Role {
        /// Proposes runs and reports their execution.
        Agent => "agent",
        /// Manages keys, policies and reads the audit log.
        Admin => "admin",
    }
}

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

string_enum! {
    /// An approver's answer.
    pub enum AnswerDecision {
        /// Approve the action.
        Approve => "approve",
        /// Reject the action.
        Reject => "reject",
    }
}

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

/// An API key as the store keeps it: never the secret, only its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Short public id of the key.
    pub key_id: String,
    /// Workspace the key belongs to.
    pub workspace: String,
    /// What the key may do.
    pub role: Role,
    /// Free-form label.
    pub label: Option<String>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
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

/// Someone who may answer an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverRef {
    /// Approver id, matched against [`AnswerInput::approver_id`].
    pub id: String,
    /// E-mail address for delivery.
    pub email: Option<String>,
    /// Slack handle or id for delivery.
    pub slack: Option<String>,
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

/// An approval request to deliver, queued in the same transaction as the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelivery {
    /// Unique id of the delivery, chosen by the caller.
    pub delivery_id: String,
    /// Approver to deliver to (must be one of the run's approvers).
    pub approver_id: String,
    /// Channel name ("email", "slack"...).
    pub channel: String,
    /// SHA-256 (hex) of the single-use approval token sent in this delivery, if any.
    pub token_hash: Option<String>,
    /// First time the delivery may be attempted.
    pub next_attempt_at: DateTime<Utc>,
}

/// A run to create, as decided by the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
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
    /// The policy's decision.
    pub decision: DecisionRecord,
    /// Required iff the decision is PendingApproval.
    pub approval: Option<ApprovalRequirement>,
    /// Approval deliveries to queue (only for pending runs).
    #[serde(default)]
    pub deliveries: Vec<NewDelivery>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
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

/// Where a run stands in its workspace's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPosition {
    /// Seq of the run's latest event.
    pub seq: u64,
    /// Hash of the run's latest event.
    pub hash: String,
}

/// A run, as readers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Workspace (tenant).
    pub workspace: String,
    /// Run id.
    pub run_id: String,
    /// Action name.
    pub action: String,
    /// Who proposed the action.
    pub actor: Option<String>,
    /// Where the proposal came from.
    pub source: Option<Value>,
    /// The agent's reasoning.
    pub reasoning: Option<String>,
    /// The payload as JSON text, verbatim.
    pub payload_json: String,
    /// Hash of the payload.
    pub payload_hash: String,
    /// Short summary of the payload.
    pub payload_summary: String,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Hash of the creating request.
    pub request_hash: String,
    /// The policy's decision at creation.
    pub decision: DecisionRecord,
    /// The approval requirement, for runs that needed approval.
    pub approval: Option<ApprovalRequirement>,
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
    /// Creation time.
    pub created_at: DateTime<Utc>,
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

/// Result of [`crate::Store::create_run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "run", rename_all = "snake_case")]
pub enum CreateRunOutcome {
    /// A new run was created.
    Created(Run),
    /// An idempotent retry: the run created by the first request, as it is now.
    Existing(Run),
}

impl CreateRunOutcome {
    /// The run, created or existing.
    #[must_use]
    pub fn run(&self) -> &Run {
        match self {
            Self::Created(run) | Self::Existing(run) => run,
        }
    }

    /// The run, created or existing.
    #[must_use]
    pub fn into_run(self) -> Run {
        match self {
            Self::Created(run) | Self::Existing(run) => run,
        }
    }
}

/// Result of [`crate::Store::record_answer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "run", rename_all = "snake_case")]
pub enum AnswerOutcome {
    /// The answer counted; the run may now be approved, rejected or still pending.
    Recorded(Run),
    /// The approver had already answered; recorded with counted=false.
    Duplicate(Run),
    /// The run was already decided (or had expired); recorded with counted=false.
    AlreadyDecided(Run),
}

impl AnswerOutcome {
    /// The run after the answer.
    #[must_use]
    pub fn run(&self) -> &Run {
        match self {
            Self::Recorded(run) | Self::Duplicate(run) | Self::AlreadyDecided(run) => run,
        }
    }
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

/// Result of a successful [`crate::Store::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// Number of events verified.
    pub events: u64,
    /// Hash of the last event (64 zeros when there is none).
    pub head_hash: String,
}

/// An approval delivery waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Unique id.
    pub delivery_id: String,
    /// Workspace of the run.
    pub workspace: String,
    /// The run to approve.
    pub run_id: String,
    /// Approver to deliver to.
    pub approver_id: String,
    /// Channel name.
    pub channel: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When to try next; None once given up or sent.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// Hash of the token carried by this delivery, if any.
    pub token_hash: Option<String>,
}

/// A single-use approval token's record (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalToken {
    /// Workspace of the run.
    pub workspace: String,
    /// The run the token answers.
    pub run_id: String,
    /// The approver the token was issued to.
    pub approver_id: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was used, if it was.
    pub used_at: Option<DateTime<Utc>>,
}

/// Result of [`crate::Store::consume_token`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "token", rename_all = "snake_case")]
pub enum TokenOutcome {
    /// The token was valid and is now used.
    Consumed(ApprovalToken),
    /// The token had been used before.
    AlreadyUsed(ApprovalToken),
    /// The token is past its expiry.
    Expired(ApprovalToken),
    /// No token has this hash.
    Unknown,
}

/// Result of [`crate::Store::answer_with_token`].
#[derive(Debug, Clone, PartialEq)]
pub enum TokenAnswer {
    /// The token was spent and the answer recorded on the token's run.
    Answered(Box<AnswerOutcome>),
    /// The token could not be spent (used, expired or unknown); nothing
    /// was written.
    Refused(TokenOutcome),
}

/// Batch-size statistics of a group-committing writer, for metrics export.
///
/// `buckets` are cumulative like a Prometheus histogram: `count` of the
/// bucket with bound `le` is the number of batches of at most `le` commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Cumulative (le, count) buckets.
    pub buckets: Vec<(u64, u64)>,
    /// Number of batches committed (or attempted).
    pub count: u64,
    /// Total commands over all batches.
    pub sum: u64,
    /// Largest batch seen.
    pub max: u64,
}

string_enum! {
    /// What an access grant is for. Grants are the dashboard's secrets:
    /// like API keys, only the SHA-256 of their token is stored.
    pub enum GrantKind {
        /// A one-time sign-in link sent to an approver by email.
        SignIn => "sign_in",
        /// A dashboard session (the cookie's token).
        Session => "session",
        /// A read-only client share link for one workspace (audited).
        ShareLink => "share_link",
    }
}

/// An access grant to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGrant {
    /// Unique public id (never the token).
    pub grant_id: String,
    /// What the grant is for.
    pub kind: GrantKind,
    /// SHA-256 (hex) of the secret token.
    pub token_hash: String,
    /// The workspace it is limited to; required for share links.
    pub workspace: Option<String>,
    /// Who it is for or who made it (an email, `admin:<key id>`...).
    pub subject: String,
    /// Free-form label shown to admins.
    pub label: Option<String>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// An access grant as stored (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Unique public id.
    pub grant_id: String,
    /// What the grant is for.
    pub kind: GrantKind,
    /// The workspace it is limited to, if any.
    pub workspace: Option<String>,
    /// Who it is for or who made it.
    pub subject: String,
    /// Free-form label.
    pub label: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When a single-use grant was used.
    pub used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Grant {
    /// True if the grant may be used at `now`: not revoked, not expired (a
    /// used sign-in link is checked by [`crate::Store::consume_grant`]).
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// Result of [`crate::Store::consume_grant`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "grant", rename_all = "snake_case")]
pub enum GrantOutcome {
    /// The grant was valid and is now used.
    Consumed(Grant),
    /// The grant had been used before.
    AlreadyUsed(Grant),
    /// The grant is past its expiry.
    Expired(Grant),
    /// The grant was revoked.
    Revoked(Grant),
    /// No grant has this token.
    Unknown,
}

/// One group of [`crate::Store::run_stats`]: how many runs created on `day`
/// (UTC) are now in these states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRow {
    /// The UTC day the runs were created, `YYYY-MM-DD`.
    pub day: String,
    /// Their governance status now.
    pub governance_status: GovernanceStatus,
    /// Their execution status now.
    pub execution_status: ExecutionStatus,
    /// How many.
    pub count: u64,
}
