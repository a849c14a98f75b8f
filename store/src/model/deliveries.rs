//! Deliveries: approval requests queued for sending, and the single-use
//! approval tokens they carry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who an approval request goes to. Stored as the `approver_id` string of
/// a delivery or token: a person as their approver id, a shared
/// destination as `@` followed by its name. [`Recipient::parse`] and
/// `Display` convert between the two, and the stored form never changes.
///
/// ```
/// use countersign_store::Recipient;
///
/// let channel = Recipient::parse("@slack:C024BE91L");
/// assert_eq!(channel, Recipient::Shared("slack:C024BE91L".to_owned()));
/// assert_eq!(channel.to_string(), "@slack:C024BE91L");
/// assert_eq!(Recipient::parse("alice").person(), Some("alice"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// One of the run's approvers, by approver id: what comes back through
    /// this delivery is that approver's answer.
    Person(String),
    /// A destination several approvers see (a Slack channel, a workspace
    /// webhook), by name without the `@`: each answer that comes back
    /// names its approver, who is checked when the answer is recorded.
    Shared(String),
}

impl Recipient {
    /// The mark that starts a shared destination's stored form; approver
    /// ids may not start with it.
    pub const SHARED_MARK: char = '@';

    /// Reads the stored form: `@name` is shared, anything else a person.
    #[must_use]
    pub fn parse(stored: &str) -> Self {
        match stored.strip_prefix(Self::SHARED_MARK) {
            Some(name) => Self::Shared(name.to_owned()),
            None => Self::Person(stored.to_owned()),
        }
    }

    /// Whether this is a shared destination rather than a person.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Shared(_))
    }

    /// The approver id of a person; `None` for a shared destination.
    #[must_use]
    pub fn person(&self) -> Option<&str> {
        match self {
            Self::Person(id) => Some(id),
            Self::Shared(_) => None,
        }
    }
}

/// The stored form: the approver id, or `@` and the destination's name.
impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(id) => f.write_str(id),
            Self::Shared(name) => write!(f, "{}{name}", Self::SHARED_MARK),
        }
    }
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

impl NewDelivery {
    /// Who the delivery goes to, read from `approver_id`.
    #[must_use]
    pub fn recipient(&self) -> Recipient {
        Recipient::parse(&self.approver_id)
    }
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

impl Delivery {
    /// Who the delivery goes to, read from `approver_id`.
    #[must_use]
    pub fn recipient(&self) -> Recipient {
        Recipient::parse(&self.approver_id)
    }
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

impl ApprovalToken {
    /// Who the token was issued to, read from `approver_id`.
    #[must_use]
    pub fn recipient(&self) -> Recipient {
        Recipient::parse(&self.approver_id)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored form reads back as it was written, for both kinds.
    #[test]
    fn recipient_round_trips_its_stored_form() {
        for stored in [
            "alice",
            "@slack:C024BE91L",
            "@webhook:ops",
            "@",
            "a@b.example",
        ] {
            assert_eq!(Recipient::parse(stored).to_string(), stored);
        }
        assert!(Recipient::parse("@webhook:ops").is_shared());
        assert_eq!(Recipient::parse("@webhook:ops").person(), None);
        assert_eq!(
            Recipient::parse("a@b.example"),
            Recipient::Person("a@b.example".into())
        );
    }

    #[test]
    fn deliveries_and_tokens_name_their_recipient() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let token = ApprovalToken {
            workspace: "w".into(),
            run_id: "r".into(),
            approver_id: "@slack:C1".into(),
            expires_at: at,
            used_at: None,
        };
        assert_eq!(token.recipient(), Recipient::Shared("slack:C1".into()));
        let delivery = NewDelivery {
            delivery_id: "d".into(),
            approver_id: "bob".into(),
            channel: "email".into(),
            token_hash: None,
            next_attempt_at: at,
        };
        assert_eq!(delivery.recipient(), Recipient::Person("bob".into()));
    }
}
