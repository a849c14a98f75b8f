//! What a button carries: the contract between the message `blocks` builds
//! and the click `inbound` reads back.

use serde::{Deserialize, Serialize};

/// `action_id` of the Approve button.
pub const APPROVE_ACTION_ID: &str = "countersign_approve";

/// `action_id` of the Reject button.
pub const REJECT_ACTION_ID: &str = "countersign_reject";

/// The answer a button stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The Approve button.
    Approve,
    /// The Reject button.
    Reject,
}

impl Decision {
    /// The `action_id` of this decision's button.
    pub fn action_id(self) -> &'static str {
        match self {
            Decision::Approve => APPROVE_ACTION_ID,
            Decision::Reject => REJECT_ACTION_ID,
        }
    }
}

/// What a button's `value` carries, as JSON: enough for the gate to find the
/// request the click answers. It is not a credential: the gate must still
/// check the signature and that the clicking user may answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonValue {
    /// Run being approved or rejected.
    pub run_id: String,
    /// Workspace of the run.
    pub workspace: String,
    /// Which button this is.
    pub decision: Decision,
    /// Delivery the message belongs to.
    pub delivery_id: String,
}
