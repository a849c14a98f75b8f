//! What the store accepts: the identifier rules and the checks of a new
//! run. [`crate::checked::Checked`] applies them before any backend sees a
//! call, so SQLite and PostgreSQL refuse exactly the same input.

use crate::error::StoreError;
use crate::identity::identity_skeleton;
use crate::model::{GovernanceStatus, NewRun, Recipient, Role};
use crate::ts::normalize;
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

/// Checks the actor an API key is bound to: only agent keys propose runs,
/// and the actor must name someone (a name of invisible characters would
/// bind the key to nobody).
pub(crate) fn check_key_actor(role: Role, actor: &str) -> Result<(), StoreError> {
    if role != Role::Agent {
        return Err(StoreError::invalid(
            "only an agent key can be bound to an actor",
        ));
    }
    check_id("actor", actor)?;
    if actor.chars().any(char::is_control) || identity_skeleton(actor).is_empty() {
        return Err(StoreError::invalid(
            "actor must be a visible name without control characters",
        ));
    }
    Ok(())
}

/// Validates a new run and normalizes its timestamps to microseconds.
pub(crate) fn validate_new_run(run: &mut NewRun) -> Result<(), StoreError> {
    check_id("workspace", &run.proposal.workspace)?;
    check_id("run_id", &run.proposal.run_id)?;
    check_id("action", &run.proposal.action)?;
    if let Some(key) = &run.proposal.idempotency_key {
        check_id("idempotency_key", key)?;
    }
    // A null context is no context; anything else must be an object.
    if run
        .proposal
        .context
        .as_ref()
        .is_some_and(serde_json::Value::is_null)
    {
        run.proposal.context = None;
    }
    if run
        .proposal
        .context
        .as_ref()
        .is_some_and(|c| !c.is_object())
    {
        return Err(StoreError::invalid("a run's context must be a JSON object"));
    }
    run.proposal.created_at = normalize(run.proposal.created_at)?;
    let status = run.proposal.decision.governance_status;
    match (status, &mut run.proposal.approval) {
        (GovernanceStatus::PendingApproval, Some(approval)) => {
            approval.expires_at = normalize(approval.expires_at)?;
            // Stored in the row and in the approval_requested event: both
            // must hold the same microsecond time, or the row would differ
            // from what the log says.
            for approver in &mut approval.approvers {
                if let Some(from) = approver.eligible_from {
                    approver.eligible_from = Some(normalize(from)?);
                }
            }
            check_id("approval group", &approval.group)?;
            let mut seen = HashSet::new();
            for approver in &approval.approvers {
                check_id("approver id", &approver.id)?;
                if Recipient::parse(&approver.id).is_shared() {
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
            .proposal
            .approval
            .as_ref()
            .is_some_and(|a| a.approvers.iter().any(|r| r.id == delivery.approver_id));
        // `@name` is a shared destination (a workspace webhook, a Slack
        // channel), not a person: its answers name their approver, who is
        // checked when the answer is recorded.
        let shared = delivery.recipient().is_shared() && run.proposal.approval.is_some();
        if !is_approver && !shared {
            return Err(StoreError::invalid(format!(
                "delivery `{}` goes to `{}`, who is not an approver of the run",
                delivery.delivery_id, delivery.approver_id
            )));
        }
    }
    Ok(())
}
