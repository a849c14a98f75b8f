//! The run state machine, shared by both backends: every transition of a
//! run's governance and execution status, and the events that record it.
//!
//! It owns these transitions, and no other module changes a run's status:
//! - creation ([`initial_run`]): `allowed` runs start `awaiting_execution`,
//!   `pending_approval` and `blocked` runs `not_executed`;
//! - an answer ([`plan_answer`]): `pending_approval` becomes `rejected` on
//!   one counted reject, `approved` (and `awaiting_execution`) once the
//!   quorum of distinct approvers is reached; answers to a decided or
//!   duplicate run are recorded uncounted; the actor may not answer;
//! - expiry ([`plan_expire`], when [`is_due`]): `pending_approval` becomes
//!   `expired`;
//! - an execution report ([`plan_report`]): an executable run becomes
//!   `executed` or `failed`, once.
//!
//! Everything here is pure: a backend loads the current state inside its
//! transaction, asks these functions what changes and which events to
//! append, then writes both. So the rules live in one place, and SQLite and
//! PostgreSQL cannot drift apart.

use crate::chain::PendingEvent;
use crate::error::StoreError;
use crate::identity::same_identity;
use crate::model::{
    AnswerDecision, AnswerInput, ApprovalAnswer, ChainPosition, EventKind, ExecutionOutcome,
    ExecutionReport, ExecutionStatus, GovernanceStatus, NewDelivery, Proposal, Run, is_executable,
};
use crate::ts::format_ts;
use crate::validate::check_id;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Whether `approver_id` names the run's actor: the actor has the same
/// identity skeleton ([`crate::identity_skeleton`]: compatibility forms, case,
/// accents, invisible characters and confusable letters ignored) as the
/// approver's id, email address, Slack id or policy name. An agent cannot
/// dodge the no-self-approval rule by sending `ALİCE`, `ａｌｉｃｅ`,
/// `alice@example.com` or `Alice Ng` for approver `alice`.
pub fn is_actor(run: &Run, approver_id: &str) -> bool {
    let Some(actor) = run.proposal.actor.as_deref() else {
        return false;
    };
    let approver = run
        .proposal
        .approval
        .as_ref()
        .and_then(|a| a.approvers.iter().find(|r| r.id == approver_id));
    let mut names = vec![approver_id];
    if let Some(r) = approver {
        names.extend(r.email.as_deref());
        names.extend(r.slack.as_deref());
        names.extend(r.name.as_deref());
    }
    names.into_iter().any(|name| same_identity(actor, name))
}

fn chain_placeholder() -> ChainPosition {
    ChainPosition {
        seq: 0,
        hash: String::new(),
    }
}

/// The run as created from the proposal `new` (its chain position is filled in once the
/// events are appended) and the events that record its creation.
/// `approval_requested` lists the run's `deliveries` (id, recipient,
/// channel, token hash): the delivery rows are a projection of it, checked
/// before a token is acted on and by the audit.
pub(crate) fn initial_run(new: &Proposal, deliveries: &[NewDelivery]) -> (Run, Vec<PendingEvent>) {
    let governance = new.decision.governance_status;
    let execution = if governance == GovernanceStatus::Allowed {
        ExecutionStatus::AwaitingExecution
    } else {
        ExecutionStatus::NotExecuted
    };
    let run = Run {
        proposal: new.clone(),
        governance_status: governance,
        execution_status: execution,
        executable: is_executable(governance, execution),
        approvals: Vec::new(),
        execution: None,
        updated_at: new.created_at,
        chain: chain_placeholder(),
    };
    let at = new.created_at;
    let run_id = Some(new.run_id.clone());
    let mut proposed = json!({
        "action": new.action,
        "actor": new.actor,
        "source": new.source,
        "reasoning": new.reasoning,
        "payload_json": new.payload_json,
        "payload_hash": new.payload_hash,
        "payload_summary": new.payload_summary,
        "idempotency_key": new.idempotency_key,
        "request_hash": new.request_hash,
        "created_at": format_ts(new.created_at),
    });
    // Only runs that have a context carry the key, so the events of every
    // other run keep their shape.
    if let (Some(context), Some(map)) = (&new.context, proposed.as_object_mut()) {
        map.insert("context".to_owned(), context.clone());
    }
    let mut events = vec![
        PendingEvent {
            kind: EventKind::RunProposed,
            run_id: run_id.clone(),
            at,
            data: proposed,
        },
        PendingEvent {
            kind: EventKind::PolicyDecided,
            run_id: run_id.clone(),
            at,
            data: json!({
                "governance_status": governance.as_str(),
                "rule": new.decision.rule,
                "reason": new.decision.reason,
                "policy_version": new.decision.policy_version,
                "risk": new.decision.risk,
                "details": new.decision.details,
                "execution_status": execution.as_str(),
            }),
        },
    ];
    if let Some(approval) = &new.approval {
        let approvers: Vec<Value> = approval
            .approvers
            .iter()
            .map(|a| {
                let mut entry = json!({"id": a.id, "email": a.email, "slack": a.slack});
                // Only when known or set, so events of unnamed members and of
                // runs without escalation keep their shape (and hash).
                if let Some(map) = entry.as_object_mut() {
                    if let Some(name) = &a.name {
                        map.insert("name".to_owned(), json!(name));
                    }
                    if let Some(from) = a.eligible_from {
                        map.insert("eligible_from".to_owned(), json!(format_ts(from)));
                    }
                }
                entry
            })
            .collect();
        events.push(PendingEvent {
            kind: EventKind::ApprovalRequested,
            run_id,
            at,
            data: json!({
                "group": approval.group,
                "quorum": approval.quorum,
                "expires_at": format_ts(approval.expires_at),
                "approvers": approvers,
                "deliveries": deliveries.iter().map(|d| json!({
                    "id": d.delivery_id,
                    "to": d.approver_id,
                    "channel": d.channel,
                    "token_hash": d.token_hash,
                })).collect::<Vec<_>>(),
            }),
        });
    }
    (run, events)
}

fn set_status(run: &mut Run, governance: GovernanceStatus, execution: ExecutionStatus) {
    run.governance_status = governance;
    run.execution_status = execution;
    run.executable = is_executable(governance, execution);
}

fn outcome_status(outcome: &ExecutionOutcome) -> ExecutionStatus {
    match outcome {
        ExecutionOutcome::Executed { .. } => ExecutionStatus::Executed,
        ExecutionOutcome::Failed { .. } => ExecutionStatus::Failed,
    }
}

/// Applies an execution report to `run`. An empty event list means the
/// report repeats the recorded one exactly and nothing changes.
pub(crate) fn plan_report(
    run: &mut Run,
    outcome: ExecutionOutcome,
    now: DateTime<Utc>,
) -> Result<Vec<PendingEvent>, StoreError> {
    if let Some(existing) = &run.execution {
        if existing.outcome == outcome {
            return Ok(Vec::new());
        }
        return Err(StoreError::conflict(format!(
            "run `{}` already has a different execution report ({})",
            run.proposal.run_id, run.execution_status
        )));
    }
    if !run.executable {
        return Err(StoreError::conflict(format!(
            "run `{}` is not executable (governance {}, execution {})",
            run.proposal.run_id, run.governance_status, run.execution_status
        )));
    }
    let status = outcome_status(&outcome);
    let governance = run.governance_status;
    set_status(run, governance, status);
    run.updated_at = now;
    let data = json!({
        "outcome": outcome,
        "reported_at": format_ts(now),
        "execution_status": status.as_str(),
    });
    run.execution = Some(ExecutionReport {
        outcome,
        reported_at: now,
    });
    Ok(vec![PendingEvent {
        kind: EventKind::ExecutionReported,
        run_id: Some(run.proposal.run_id.clone()),
        at: now,
        data,
    }])
}

/// Whether a pending run is due to expire at `now`.
pub(crate) fn is_due(run: &Run, now: DateTime<Utc>) -> bool {
    run.governance_status == GovernanceStatus::PendingApproval
        && run
            .proposal
            .approval
            .as_ref()
            .is_some_and(|a| now >= a.expires_at)
}

/// Marks a pending run expired.
pub(crate) fn plan_expire(run: &mut Run, now: DateTime<Utc>) -> PendingEvent {
    set_status(run, GovernanceStatus::Expired, ExecutionStatus::NotExecuted);
    run.updated_at = now;
    let expires_at = run
        .proposal
        .approval
        .as_ref()
        .map(|a| format_ts(a.expires_at));
    PendingEvent {
        kind: EventKind::RunExpired,
        run_id: Some(run.proposal.run_id.clone()),
        at: now,
        data: json!({
            "expires_at": expires_at,
            "governance_status": GovernanceStatus::Expired.as_str(),
        }),
    }
}

/// How an answer was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerKind {
    Recorded,
    Duplicate,
    AlreadyDecided,
}

/// Applies an answer to `run`: the new answer is pushed onto
/// `run.approvals` (the backend inserts the last element).
pub(crate) fn plan_answer(
    run: &mut Run,
    input: AnswerInput,
    now: DateTime<Utc>,
) -> Result<(AnswerKind, Vec<PendingEvent>), StoreError> {
    check_id("approver_id", &input.approver_id)?;
    let listed = run
        .proposal
        .approval
        .as_ref()
        .is_some_and(|a| a.approvers.iter().any(|r| r.id == input.approver_id));
    if !listed {
        return Err(StoreError::NotAnApprover {
            approver_id: input.approver_id,
            run_id: run.proposal.run_id.clone(),
        });
    }
    if is_actor(run, &input.approver_id) {
        return Err(StoreError::SelfApproval {
            approver_id: input.approver_id,
            run_id: run.proposal.run_id.clone(),
        });
    }
    if let Some(eligible_from) = run
        .proposal
        .approval
        .as_ref()
        .and_then(|a| a.not_yet_eligible(&input.approver_id, now))
    {
        return Err(StoreError::NotYetEligible {
            approver_id: input.approver_id,
            run_id: run.proposal.run_id.clone(),
            eligible_from,
        });
    }
    let mut events = Vec::new();
    if is_due(run, now) {
        events.push(plan_expire(run, now));
    }
    let kind = if run.governance_status != GovernanceStatus::PendingApproval {
        AnswerKind::AlreadyDecided
    } else if run
        .approvals
        .iter()
        .any(|a| a.counted && a.approver_id == input.approver_id)
    {
        AnswerKind::Duplicate
    } else {
        AnswerKind::Recorded
    };
    let counted = kind == AnswerKind::Recorded;
    let answer = ApprovalAnswer {
        approver_id: input.approver_id,
        decision: input.decision,
        channel: input.channel,
        comment: input.comment,
        client_addr: input.client_addr,
        user_agent: input.user_agent,
        answered_at: now,
        counted,
    };
    run.approvals.push(answer.clone());
    if counted {
        match answer.decision {
            AnswerDecision::Reject => {
                set_status(
                    run,
                    GovernanceStatus::Rejected,
                    ExecutionStatus::NotExecuted,
                );
            }
            AnswerDecision::Approve => {
                let approvers: HashSet<&str> = run
                    .approvals
                    .iter()
                    .filter(|a| a.counted && a.decision == AnswerDecision::Approve)
                    .map(|a| a.approver_id.as_str())
                    .collect();
                let quorum = run.proposal.approval.as_ref().map_or(1, |a| a.quorum);
                if approvers.len() >= usize::try_from(quorum).unwrap_or(usize::MAX) {
                    set_status(
                        run,
                        GovernanceStatus::Approved,
                        ExecutionStatus::AwaitingExecution,
                    );
                }
            }
        }
    }
    run.updated_at = now;
    let event_kind = match answer.decision {
        AnswerDecision::Approve => EventKind::ApprovalGranted,
        AnswerDecision::Reject => EventKind::ApprovalRejected,
    };
    events.push(PendingEvent {
        kind: event_kind,
        run_id: Some(run.proposal.run_id.clone()),
        at: now,
        data: json!({
            "approver_id": answer.approver_id,
            "decision": answer.decision.as_str(),
            "channel": answer.channel,
            "comment": answer.comment,
            "client_addr": answer.client_addr,
            "user_agent": answer.user_agent,
            "answered_at": format_ts(now),
            "counted": counted,
            "governance_status": run.governance_status.as_str(),
            "execution_status": run.execution_status.as_str(),
        }),
    });
    Ok((kind, events))
}
