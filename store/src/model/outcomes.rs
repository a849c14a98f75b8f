//! Outcomes: what the calls that create or answer a run return, each
//! carrying the run as it is afterwards.

use super::deliveries::TokenOutcome;
use super::runs::Run;
use serde::{Deserialize, Serialize};

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

/// Result of [`crate::Store::answer_with_token`].
#[derive(Debug, Clone, PartialEq)]
pub enum TokenAnswer {
    /// The token was spent and the answer recorded on the token's run.
    Answered(Box<AnswerOutcome>),
    /// The token could not be spent (used, expired or unknown); nothing
    /// was written.
    Refused(TokenOutcome),
}
