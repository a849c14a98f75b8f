//! Access grants: sign-in links, dashboard sessions and client share links
//! (only their tokens' hashes are stored).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
