//! What every transport shares: the message to send, its recipient, the
//! outcome of a delivery, and the [`Transport`] trait itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The person an approval request is addressed to, with the handles each
/// transport may need to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The approver's id in Countersign's configuration.
    pub approver_id: String,
    /// Display name, used in greetings and the email `To:` header.
    pub name: Option<String>,
    /// Email address; required by the email transport.
    pub email: Option<String>,
    /// Slack user id (`U…`); the Slack transport sends a direct message to it
    /// when no channel is configured.
    pub slack: Option<String>,
}

/// Someone who may answer a request, as a shared destination (a webhook)
/// lists them: its answer URL takes one answer from each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibleApprover {
    /// The approver's id, to name in the answer's `approver` field.
    pub id: String,
    /// When they may first answer (a member of the escalation group), or
    /// `None` when they may answer now.
    pub eligible_from: Option<DateTime<Utc>>,
}

/// One approval request, addressed to one recipient, ready to be sent.
///
/// Everything here is data to show: the transports never act on it beyond
/// formatting and sending. Text that came from the agent (`actor`, `risk`,
/// `reasoning`, `payload_summary`, `action`) is hostile until escaped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalMessage {
    /// Stable id of this delivery; transports use it for idempotency (the
    /// webhook `webhook-id` header, the email `Message-ID`).
    pub delivery_id: String,
    /// Workspace the run belongs to.
    pub workspace: String,
    /// Run whose action awaits approval.
    pub run_id: String,
    /// The action the agent proposes, e.g. `send_invoice_reminder`.
    pub action: String,
    /// Who (which agent or user) proposed it, as the agent reported it.
    pub actor: Option<String>,
    /// Risk level as reported, e.g. `medium`.
    pub risk: Option<String>,
    /// The agent's own reasoning, as reported.
    pub reasoning: Option<String>,
    /// A short human-readable summary of the action's payload.
    pub payload_summary: String,
    /// The request's one-line title, made from the action's `summary:`
    /// template in the policy (e.g. "Refund 250 EUR to Ada Lovelace"), or
    /// its description; agent text inside, so hostile until escaped.
    #[serde(default)]
    pub summary: Option<String>,
    /// The run's page in the dashboard (a sign-in leads back to it).
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// Name of the policy rule that required approval, if any.
    pub rule: Option<String>,
    /// Why approval is required, in the policy's words.
    pub reason: String,
    /// Approver group asked.
    pub group: String,
    /// How many approvals from the group are needed.
    pub quorum: u32,
    /// When the request expires unanswered.
    pub expires_at: DateTime<Utc>,
    /// Who this copy of the request is for.
    pub recipient: Recipient,
    /// Link to the approve confirmation page. A GET shows a page and never
    /// changes state; the page's own form does.
    pub approve_url: Option<String>,
    /// Link to the reject confirmation page (GET never changes state).
    pub reject_url: Option<String>,
    /// For webhooks: where the receiver POSTs
    /// `{decision, approver, comment}`; once per approver.
    pub answer_url: Option<String>,
    /// Who may answer: the run's approvers, less its actor. Webhook events
    /// list them, so a receiver knows whom it may answer for.
    #[serde(default)]
    pub approvers: Vec<EligibleApprover>,
}

/// What a transport reports after a successful send.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delivered {
    /// Id the other side gave (or that was set) for the sent message, if any:
    /// `"{channel}:{ts}"` for Slack, the `Message-ID` for email.
    pub external_id: Option<String>,
}

/// A failed delivery: what went wrong, and whether trying again later may
/// succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(countersign::transport))]
pub struct TransportError {
    message: String,
    retryable: bool,
}

impl TransportError {
    /// A failure with an explicit retry classification.
    pub fn new(message: impl Into<String>, retryable: bool) -> Self {
        Self {
            message: message.into(),
            retryable,
        }
    }

    /// A failure that may succeed if tried again later (timeouts, connection
    /// errors, 5xx, 429, SMTP 4xx).
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(message, true)
    }

    /// A failure that will fail the same way again (bad configuration, a
    /// recipient without an address, 4xx, SMTP 5xx, a redirect).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(message, false)
    }

    /// What went wrong, in words fit for a log or an operator.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying the same delivery again later may succeed.
    pub fn retryable(&self) -> bool {
        self.retryable
    }
}

/// A way to deliver an approval request to a person.
///
/// Implementations format and send; they never decide, never store, and
/// classify failures with [`TransportError::retryable`] so that the caller
/// can schedule retries. Delivering the same [`ApprovalMessage`] twice sends
/// twice, but with the same idempotency key (`delivery_id`) so the receiving
/// side can tell.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// The channel name: `"email"`, `"slack"`, `"webhook"`, `"teams"` or
    /// `"console"`.
    fn channel(&self) -> &'static str;

    /// Sends `msg` to its recipient.
    async fn deliver(&self, msg: &ApprovalMessage) -> Result<Delivered, TransportError>;
}
