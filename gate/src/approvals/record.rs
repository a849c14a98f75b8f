//! Recording an answer, whatever channel it came through.

use chrono::{DateTime, Utc};
use countersign_store::{
    AnswerDecision, AnswerInput, AnswerOutcome, Run, StoreError, TokenAnswer, TokenOutcome,
};

use crate::error::ApiError;
use crate::state::AppState;

/// The longest comment kept with an answer, in characters (Unicode scalar
/// values), on every channel: the JSON API refuses a longer one, the forms
/// (whose textarea has this `maxlength`) keep its first characters.
pub const MAX_COMMENT: usize = 2000;

/// The longest approver id an answer may name (the store's id limit).
pub const MAX_APPROVER_ID: usize = 256;

// A body holding the longest comment must fit the form/control body limit in
// its most expensive encoding: a character outside the BMP is 12 bytes as a
// JSON `\uXXXX\uXXXX` pair and as a URL-encoded form (`%XX` for each of
// its 4 UTF-8 bytes); 1 KiB covers the other fields.
const _: () = assert!(crate::http::MAX_FORM_BYTES >= MAX_COMMENT * 12 + 1024);

/// A comment from an answer form: trimmed, `None` when empty, cut to
/// [`MAX_COMMENT`] characters with the cut marked.
pub fn form_comment(comment: Option<&str>) -> Option<String> {
    comment
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| crate::http::summarize_text(c, MAX_COMMENT))
}

/// What happened to an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The answer counted.
    Recorded,
    /// The approver had already answered; recorded, not counted.
    Duplicate,
    /// The run was no longer pending; recorded, not counted.
    AlreadyDecided,
}

/// One answer to record.
pub struct Answer<'a> {
    /// The workspace of the run.
    pub workspace: &'a str,
    /// The run.
    pub run_id: &'a str,
    /// Who answers.
    pub approver_id: &'a str,
    /// Approve or reject.
    pub decision: AnswerDecision,
    /// Through which channel.
    pub channel: &'a str,
    /// Optional comment.
    pub comment: Option<String>,
    /// The client address, for link answers.
    pub client_addr: Option<String>,
    /// The client's user agent, for link answers.
    pub user_agent: Option<String>,
}

/// Why an approver may not answer a run at all, found before a single-use
/// token is spent. Each surface words it for its audience; the API answers
/// with the store's error of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of the run's approvers.
    NotAnApprover {
        /// Who tried to answer.
        approver_id: String,
        /// The run.
        run_id: String,
    },
    /// The run's own actor: nobody approves their own request.
    SelfApproval {
        /// Who tried to answer.
        approver_id: String,
        /// The run.
        run_id: String,
    },
    /// A member of the escalation group, before `escalate_after` has
    /// passed: escalation means later, on every channel.
    NotYetEligible {
        /// Who tried to answer.
        approver_id: String,
        /// The run.
        run_id: String,
        /// When they may answer.
        eligible_from: DateTime<Utc>,
    },
}

impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotAnApprover {
                approver_id,
                run_id,
            } => StoreError::NotAnApprover {
                approver_id,
                run_id,
            },
            Refusal::SelfApproval {
                approver_id,
                run_id,
            } => StoreError::SelfApproval {
                approver_id,
                run_id,
            },
            Refusal::NotYetEligible {
                approver_id,
                run_id,
                eligible_from,
            } => StoreError::NotYetEligible {
                approver_id,
                run_id,
                eligible_from,
            },
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        StoreError::from(r).into()
    }
}

impl std::fmt::Display for Refusal {
    // The store's wording, so every surface says the same thing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        StoreError::from(self.clone()).fmt(f)
    }
}

impl std::error::Error for Refusal {}

/// Checks, before a single-use token is spent, that this approver may
/// answer this run at `now`: a member of its approvers, not its actor, and
/// past their escalation time if they were added by escalation. The store
/// checks the same again when it records the answer.
pub fn may_answer(run: &Run, approver_id: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
    let listed = run
        .proposal
        .approval
        .as_ref()
        .is_some_and(|a| a.approvers.iter().any(|m| m.id == approver_id));
    if !listed {
        return Err(Refusal::NotAnApprover {
            approver_id: approver_id.to_owned(),
            run_id: run.proposal.run_id.clone(),
        });
    }
    if countersign_store::is_actor(run, approver_id) {
        return Err(Refusal::SelfApproval {
            approver_id: approver_id.to_owned(),
            run_id: run.proposal.run_id.clone(),
        });
    }
    if let Some(eligible_from) = run
        .proposal
        .approval
        .as_ref()
        .and_then(|a| a.not_yet_eligible(approver_id, now))
    {
        return Err(Refusal::NotYetEligible {
            approver_id: approver_id.to_owned(),
            run_id: run.proposal.run_id.clone(),
            eligible_from,
        });
    }
    Ok(())
}

/// When a refused escalation member may answer, for people: `14:00 UTC`
/// with the date.
pub fn eligible_text(eligible_from: DateTime<Utc>) -> String {
    eligible_from.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Reads `approve` or `reject`, the words every answer form and body uses.
pub fn parse_decision(s: &str) -> Option<AnswerDecision> {
    match s {
        "approve" => Some(AnswerDecision::Approve),
        "reject" => Some(AnswerDecision::Reject),
        _ => None,
    }
}

fn input(a: Answer<'_>) -> AnswerInput {
    AnswerInput {
        approver_id: a.approver_id.to_owned(),
        decision: a.decision,
        channel: a.channel.to_owned(),
        comment: a.comment,
        client_addr: a.client_addr,
        user_agent: a.user_agent,
    }
}

fn outcome(o: AnswerOutcome) -> (Outcome, Run) {
    match o {
        AnswerOutcome::Recorded(run) => (Outcome::Recorded, run),
        AnswerOutcome::Duplicate(run) => (Outcome::Duplicate, run),
        AnswerOutcome::AlreadyDecided(run) => (Outcome::AlreadyDecided, run),
    }
}

/// Records the answer; the store applies quorum, rejection, expiry and the
/// self-approval rule atomically.
pub async fn record_answer(state: &AppState, a: Answer<'_>) -> Result<(Outcome, Run), ApiError> {
    let (workspace, run_id) = (a.workspace, a.run_id);
    let recorded = state
        .store
        .record_answer(workspace, run_id, input(a), state.clock.now())
        .await?;
    Ok(outcome(recorded))
}

/// Spends the single-use token with hash `token_hash` and records the
/// answer it carries on the token's run, in one store transaction: a crash
/// or a refused answer never leaves the token spent with no answer.
/// `Ok(Err(_))` says why the token could not be spent; then nothing was
/// written.
pub async fn answer_with_token(
    state: &AppState,
    token_hash: &str,
    a: Answer<'_>,
) -> Result<Result<(Outcome, Run), TokenOutcome>, ApiError> {
    let answered = state
        .store
        .answer_with_token(token_hash, input(a), state.clock.now())
        .await?;
    Ok(token_outcome(answered))
}

fn token_outcome(answered: TokenAnswer) -> Result<(Outcome, Run), TokenOutcome> {
    match answered {
        TokenAnswer::Answered(o) => Ok(outcome(*o)),
        TokenAnswer::Refused(t) => Err(t),
    }
}

/// Records the answer given through a shared destination's link token
/// (stored under `token_hash`), after the store has checked the token
/// against the run's log; the token is not spent (each approver of the
/// destination answers once). `Ok(Err(_))`: the token is unknown or
/// expired, and nothing was written.
pub async fn answer_with_shared_token(
    state: &AppState,
    token_hash: &str,
    a: Answer<'_>,
) -> Result<Result<(Outcome, Run), TokenOutcome>, ApiError> {
    let answered = state
        .store
        .answer_with_shared_token(token_hash, input(a), state.clock.now())
        .await?;
    Ok(token_outcome(answered))
}

/// The channel of the delivery whose link token is stored under `key` (an
/// [`approval_token_key`](super::tokens::approval_token_key)): what is
/// recorded with an answer given through that token. It comes from the
/// gate's own record, never from the client, so an email link cannot be
/// recorded as a Teams answer. A token with no delivery (none is made that
/// way) is recorded as `link`.
pub async fn token_channel(
    state: &AppState,
    token: &countersign_store::ApprovalToken,
    key: &str,
) -> Result<String, ApiError> {
    let deliveries = state
        .store
        .deliveries_for_run(&token.workspace, &token.run_id)
        .await?;
    Ok(deliveries
        .into_iter()
        .find(|d| d.token_hash.as_deref() == Some(key))
        .map_or_else(|| "link".to_owned(), |d| d.channel))
}

/// Counted approvals so far, and the quorum the run needs.
pub fn progress(run: &Run) -> (usize, u32) {
    let approvals = run
        .approvals
        .iter()
        .filter(|a| a.counted && a.decision == AnswerDecision::Approve)
        .count();
    (
        approvals,
        run.proposal.approval.as_ref().map_or(1, |a| a.quorum),
    )
}

/// A one-line account of where a run stands after an answer.
pub fn describe(outcome: Outcome, run: &Run, approver: &str, decision: AnswerDecision) -> String {
    use countersign_store::GovernanceStatus as G;
    let (approvals, quorum) = progress(run);
    match (outcome, run.governance_status) {
        (Outcome::AlreadyDecided, status) => format!(
            "This request was already decided ({}); your answer was recorded but changes nothing.",
            status.as_str().replace('_', " ")
        ),
        (Outcome::Duplicate, _) => format!(
            "{approver} had already answered; this answer was recorded but not counted again."
        ),
        (_, G::Approved) => format!(
            "Approved by {approver}: {approvals} of {quorum} approvals reached. The action may now run."
        ),
        (_, G::Rejected) => format!("Rejected by {approver}. The action will not run."),
        (_, G::Expired) => "This request expired before it was decided.".to_owned(),
        _ if decision == AnswerDecision::Approve => {
            format!(
                "Approved by {approver}: {approvals} of {quorum} approvals so far; waiting for more."
            )
        }
        _ => format!("Answer recorded for {approver}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_comment_is_counted_in_characters() {
        let longest = "é".repeat(MAX_COMMENT);
        assert_eq!(form_comment(Some(&longest)), Some(longest.clone()));
        let cut = form_comment(Some(&"é".repeat(MAX_COMMENT + 1))).unwrap_or_default();
        assert_eq!(cut.chars().count(), MAX_COMMENT);
        assert!(cut.ends_with('…'));
        assert_eq!(form_comment(Some("  ")), None);
        assert_eq!(form_comment(Some(" ok ")), Some("ok".to_owned()));
    }
}
