//! The store's public data types, one file per entity. `lib.rs` re-exports
//! them, so each has one public path: `countersign_store::Run`.

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

mod approvals;
mod audit;
mod deliveries;
mod events;
mod grants;
mod keys;
mod outcomes;
mod runs;
mod stats;

pub use approvals::{
    AnswerDecision, AnswerInput, ApprovalAnswer, ApprovalRequirement, ApproverRef,
};
pub use audit::{
    AuditProblem, AuditReport, AuditSubject, StoredCheckpoint, TreeExtension, TreeHead,
};
pub use deliveries::{ApprovalToken, Delivery, NewDelivery, Recipient, TokenOutcome};
pub use events::{ChainPosition, ChainReport, Event, EventKind};
pub use grants::{Grant, GrantKind, GrantOutcome, NewGrant};
pub use keys::{ApiKeyRecord, Role};
pub use outcomes::{AnswerOutcome, CreateRunOutcome, TokenAnswer};
pub use runs::{
    DecisionRecord, ExecutionOutcome, ExecutionReport, ExecutionStatus, GovernanceStatus, NewRun,
    Proposal, Run, RunFilter, RunPage, is_executable,
};
pub use stats::{BatchStats, StatsRow};
