//! The run state machine, shared by both backends.
//!
//! Everything here is pure: a backend loads the current state inside its
//! transaction, asks these functions what changes and which events to
//! append, then writes both. So the rules live in one place, and SQLite and
//! PostgreSQL cannot drift apart.

use crate::StoreError;
use crate::chain::PendingEvent;
use crate::model::{
    AnswerDecision, AnswerInput, ApiKeyRecord, ApprovalAnswer, ChainPosition, EventKind,
    ExecutionOutcome, ExecutionReport, ExecutionStatus, GovernanceStatus, NewRun, Role, Run,
    is_executable,
};
use crate::ts::{format_ts, normalize};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Longest id (workspace, run, key, approver...) the store accepts.
const MAX_ID_LEN: usize = 256;

/// Checks an identifier is non-empty and of sane length.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(StoreError::invalid(format!("{what} must not be empty")));
    }
    if id.len() > MAX_ID_LEN {
        return Err(StoreError::invalid(format!(
            "{what} is longer than {MAX_ID_LEN} bytes"
        )));
    }
    Ok(())
}

/// Folds an identity for comparison: trimmed, case-insensitive.
fn fold_identity(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Whether `approver_id` names the run's actor: the actor string equals
/// (trimmed, ignoring case) the approver's id, email address or Slack id.
/// An agent cannot dodge the no-self-approval rule by sending `Alice` or
/// `alice@example.com` for approver `alice`.
pub fn is_actor(run: &Run, approver_id: &str) -> bool {
    let Some(actor) = run
        .actor
        .as_deref()
        .map(fold_identity)
        .filter(|a| !a.is_empty())
    else {
        return false;
    };
    let approver = run
        .approval
        .as_ref()
        .and_then(|a| a.approvers.iter().find(|r| r.id == approver_id));
    let mut names = vec![fold_identity(approver_id)];
    if let Some(r) = approver {
        names.extend(r.email.as_deref().map(fold_identity));
        names.extend(r.slack.as_deref().map(fold_identity));
    }
    names.contains(&actor)
}

/// Validates a new run and normalizes its timestamps to microseconds.
pub(crate) fn validate_new_run(run: &mut NewRun) -> Result<(), StoreError> {
    check_id("workspace", &run.workspace)?;
    check_id("run_id", &run.run_id)?;
    check_id("action", &run.action)?;
    if let Some(key) = &run.idempotency_key {
        check_id("idempotency_key", key)?;
    }
    run.created_at = normalize(run.created_at)?;
    let status = run.decision.governance_status;
    match (status, &mut run.approval) {
        (GovernanceStatus::PendingApproval, Some(approval)) => {
            approval.expires_at = normalize(approval.expires_at)?;
            check_id("approval group", &approval.group)?;
            let mut seen = HashSet::new();
            for approver in &approval.approvers {
                check_id("approver id", &approver.id)?;
                if approver.id.starts_with('@') {
                    return Err(StoreError::invalid(format!(
                        "approver id `{}` may not start with `@` (reserved for shared destinations)",
                        approver.id
                    )));
                }
                if !seen.insert(approver.id.as_str()) {
                    return Err(StoreError::invalid(format!(
                        "approver `{}` is listed twice",
                        approver.id
                    )));
                }
            }
            let count = approval.approvers.len();
            if approval.quorum == 0
                || usize::try_from(approval.quorum).unwrap_or(usize::MAX) > count
            {
                return Err(StoreError::invalid(format!(
                    "quorum {} is impossible with {count} approver(s)",
                    approval.quorum
                )));
            }
        }
        (GovernanceStatus::PendingApproval, None) => {
            return Err(StoreError::invalid(
                "a pending_approval decision needs an approval requirement",
            ));
        }
        (GovernanceStatus::Allowed | GovernanceStatus::Blocked, None) => {}
        (GovernanceStatus::Allowed | GovernanceStatus::Blocked, Some(_)) => {
            return Err(StoreError::invalid(format!(
                "an approval requirement makes no sense for a {status} decision"
            )));
        }
        (other, _) => {
            return Err(StoreError::invalid(format!(
                "a policy decision is allowed, pending_approval or blocked, not {other}"
            )));
        }
    }
    let mut delivery_ids = HashSet::new();
    for delivery in &mut run.deliveries {
        check_id("delivery_id", &delivery.delivery_id)?;
        if !delivery_ids.insert(delivery.delivery_id.clone()) {
            return Err(StoreError::invalid(format!(
                "delivery `{}` is listed twice",
                delivery.delivery_id
            )));
        }
        delivery.next_attempt_at = normalize(delivery.next_attempt_at)?;
        let is_approver = run
            .approval
            .as_ref()
            .is_some_and(|a| a.approvers.iter().any(|r| r.id == delivery.approver_id));
        // `@name` is a shared destination (a workspace webhook, a Slack
        // channel), not a person: its answers name their approver, who is
        // checked when the answer is recorded.
        let shared = delivery.approver_id.starts_with('@') && run.approval.is_some();
        if !is_approver && !shared {
            return Err(StoreError::invalid(format!(
                "delivery `{}` goes to `{}`, who is not an approver of the run",
                delivery.delivery_id, delivery.approver_id
            )));
        }
    }
    Ok(())
}

fn chain_placeholder() -> ChainPosition {
    ChainPosition {
        seq: 0,
        hash: String::new(),
    }
}

/// The run as created from `new` (its chain position is filled in once the
/// events are appended) and the events that record its creation.
pub(crate) fn initial_run(new: &NewRun) -> (Run, Vec<PendingEvent>) {
    let governance = new.decision.governance_status;
    let execution = if governance == GovernanceStatus::Allowed {
        ExecutionStatus::AwaitingExecution
    } else {
        ExecutionStatus::NotExecuted
    };
    let run = Run {
        workspace: new.workspace.clone(),
        run_id: new.run_id.clone(),
        action: new.action.clone(),
        actor: new.actor.clone(),
        source: new.source.clone(),
        reasoning: new.reasoning.clone(),
        payload_json: new.payload_json.clone(),
        payload_hash: new.payload_hash.clone(),
        payload_summary: new.payload_summary.clone(),
        idempotency_key: new.idempotency_key.clone(),
        request_hash: new.request_hash.clone(),
        decision: new.decision.clone(),
        approval: new.approval.clone(),
        governance_status: governance,
        execution_status: execution,
        executable: is_executable(governance, execution),
        approvals: Vec::new(),
        execution: None,
        created_at: new.created_at,
        updated_at: new.created_at,
        chain: chain_placeholder(),
    };
    let at = new.created_at;
    let run_id = Some(new.run_id.clone());
    let mut events = vec![
        PendingEvent {
            kind: EventKind::RunProposed,
            run_id: run_id.clone(),
            at,
            data: json!({
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
            }),
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
            .map(|a| json!({"id": a.id, "email": a.email, "slack": a.slack}))
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
            run.run_id, run.execution_status
        )));
    }
    if !run.executable {
        return Err(StoreError::conflict(format!(
            "run `{}` is not executable (governance {}, execution {})",
            run.run_id, run.governance_status, run.execution_status
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
        run_id: Some(run.run_id.clone()),
        at: now,
        data,
    }])
}

/// Whether a pending run is due to expire at `now`.
pub(crate) fn is_due(run: &Run, now: DateTime<Utc>) -> bool {
    run.governance_status == GovernanceStatus::PendingApproval
        && run.approval.as_ref().is_some_and(|a| now >= a.expires_at)
}

/// Marks a pending run expired.
pub(crate) fn plan_expire(run: &mut Run, now: DateTime<Utc>) -> PendingEvent {
    set_status(run, GovernanceStatus::Expired, ExecutionStatus::NotExecuted);
    run.updated_at = now;
    let expires_at = run.approval.as_ref().map(|a| format_ts(a.expires_at));
    PendingEvent {
        kind: EventKind::RunExpired,
        run_id: Some(run.run_id.clone()),
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
        .approval
        .as_ref()
        .is_some_and(|a| a.approvers.iter().any(|r| r.id == input.approver_id));
    if !listed {
        return Err(StoreError::NotAnApprover {
            approver_id: input.approver_id,
            run_id: run.run_id.clone(),
        });
    }
    if is_actor(run, &input.approver_id) {
        return Err(StoreError::SelfApproval {
            approver_id: input.approver_id,
            run_id: run.run_id.clone(),
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
                let quorum = run.approval.as_ref().map_or(1, |a| a.quorum);
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
        run_id: Some(run.run_id.clone()),
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

/// The key_created event (never carries the key's hash).
pub(crate) fn key_created_event(key: &ApiKeyRecord) -> PendingEvent {
    PendingEvent {
        kind: EventKind::KeyCreated,
        run_id: None,
        at: key.created_at,
        data: json!({
            "key_id": key.key_id,
            "role": key.role.as_str(),
            "label": key.label,
            "created_at": format_ts(key.created_at),
        }),
    }
}

/// The key_revoked event.
pub(crate) fn key_revoked_event(key_id: &str, now: DateTime<Utc>) -> PendingEvent {
    PendingEvent {
        kind: EventKind::KeyRevoked,
        run_id: None,
        at: now,
        data: json!({"key_id": key_id, "revoked_at": format_ts(now)}),
    }
}

/// A new key record.
pub(crate) fn new_key(
    workspace: &str,
    key_id: &str,
    role: Role,
    label: Option<String>,
    now: DateTime<Utc>,
) -> ApiKeyRecord {
    ApiKeyRecord {
        key_id: key_id.to_owned(),
        workspace: workspace.to_owned(),
        role,
        label,
        created_at: now,
        revoked_at: None,
    }
}

/// The policy_reloaded event.
pub(crate) fn policy_reloaded_event(
    policy_version: &str,
    ok: bool,
    diagnostics: &[String],
    now: DateTime<Utc>,
) -> PendingEvent {
    PendingEvent {
        kind: EventKind::PolicyReloaded,
        run_id: None,
        at: now,
        data: json!({
            "policy_version": policy_version,
            "ok": ok,
            "diagnostics": diagnostics,
        }),
    }
}
