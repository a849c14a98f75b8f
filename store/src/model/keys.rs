//! API keys: their roles and records (never their secrets).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

string_enum! {
    /// What an API key may do.
    pub enum Role {
        /// Proposes runs and reports their execution.
        Agent => "agent",
        /// Manages keys, policies and reads the audit log.
        Admin => "admin",
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
    /// The actor this agent key is bound to, if any: every run the key
    /// proposes is this actor's, and a request naming another is refused.
    /// None for an unbound key, whose requests name their own actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}
