//! Recording an answer, whatever channel it came through.

use countersign_store::{
    AnswerDecision, AnswerInput, AnswerOutcome, Run, StoreError, TokenAnswer, TokenOutcome,
};

use crate::error::ApiError;
use crate::state::AppState;

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

/// Checks, before a single-use token is spent, that this approver may
/// answer this run at all: a member of its approvers and not its actor.
pub fn may_answer(run: &Run, approver_id: &str) -> Result<(), ApiError> {
    let listed = run
        .proposal
        .approval
        .as_ref()
        .is_some_and(|a| a.approvers.iter().any(|m| m.id == approver_id));
    if !listed {
        return Err(StoreError::NotAnApprover {
            approver_id: approver_id.to_owned(),
            run_id: run.proposal.run_id.clone(),
        }
        .into());
    }
    if countersign_store::is_actor(run, approver_id) {
        return Err(StoreError::SelfApproval {
            approver_id: approver_id.to_owned(),
            run_id: run.proposal.run_id.clone(),
        }
        .into());
    }
    Ok(())
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
    Ok(match answered {
        TokenAnswer::Answered(o) => Ok(outcome(*o)),
        TokenAnswer::Refused(t) => Err(t),
    })
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
