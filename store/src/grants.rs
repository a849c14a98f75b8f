//! Access grants (sign-in links, dashboard sessions, client share links):
//! the checks and events both backends share.

use crate::chain::PendingEvent;
use crate::error::StoreError;
use crate::model::{EventKind, Grant, GrantKind, GrantOutcome, NewGrant};
use crate::ts::{format_ts, normalize};
use crate::validate::check_id;
use chrono::{DateTime, Utc};
use serde_json::json;

/// Longest label kept on a grant.
const MAX_LABEL_LEN: usize = 200;

/// Validates a new grant and builds its record (times normalized).
pub(crate) fn prepare(grant: &NewGrant, now: DateTime<Utc>) -> Result<Grant, StoreError> {
    check_id("grant_id", &grant.grant_id)?;
    check_id("token_hash", &grant.token_hash)?;
    check_id("subject", &grant.subject)?;
    if let Some(ws) = &grant.workspace {
        check_id("workspace", ws)?;
    } else if grant.kind == GrantKind::ShareLink {
        return Err(StoreError::invalid("a share link needs a workspace"));
    }
    if grant
        .label
        .as_ref()
        .is_some_and(|l| l.len() > MAX_LABEL_LEN)
    {
        return Err(StoreError::invalid(format!(
            "label is longer than {MAX_LABEL_LEN} bytes"
        )));
    }
    let now = normalize(now)?;
    let expires_at = normalize(grant.expires_at)?;
    if expires_at <= now {
        return Err(StoreError::invalid("expires_at must be in the future"));
    }
    Ok(Grant {
        grant_id: grant.grant_id.clone(),
        kind: grant.kind,
        workspace: grant.workspace.clone(),
        subject: grant.subject.clone(),
        label: grant.label.clone(),
        created_at: now,
        expires_at,
        used_at: None,
        revoked_at: None,
    })
}

/// The audit event a new grant appends, if its kind is audited, with the
/// workspace whose chain it goes to.
pub(crate) fn created_event(grant: &Grant) -> Option<(String, PendingEvent)> {
    let workspace = audited_workspace(grant)?;
    Some((
        workspace,
        PendingEvent {
            kind: EventKind::ShareLinkCreated,
            run_id: None,
            at: grant.created_at,
            data: json!({
                "grant_id": grant.grant_id,
                "label": grant.label,
                "created_by": grant.subject,
                "expires_at": format_ts(grant.expires_at),
            }),
        },
    ))
}

/// The audit event a revocation appends, if the grant's kind is audited.
pub(crate) fn revoked_event(grant: &Grant, now: DateTime<Utc>) -> Option<(String, PendingEvent)> {
    let workspace = audited_workspace(grant)?;
    Some((
        workspace,
        PendingEvent {
            kind: EventKind::ShareLinkRevoked,
            run_id: None,
            at: now,
            data: json!({"grant_id": grant.grant_id, "revoked_at": format_ts(now)}),
        },
    ))
}

fn audited_workspace(grant: &Grant) -> Option<String> {
    match grant.kind {
        GrantKind::ShareLink => grant.workspace.clone(),
        GrantKind::SignIn | GrantKind::Session => None,
    }
}

/// Why a grant of the right kind cannot be used now: the outcome to
/// answer with (revoked, already used, expired), or None if it can be.
pub(crate) fn refusal(grant: &Grant, now: DateTime<Utc>) -> Option<fn(Grant) -> GrantOutcome> {
    if grant.revoked_at.is_some() {
        Some(GrantOutcome::Revoked)
    } else if grant.used_at.is_some() {
        Some(GrantOutcome::AlreadyUsed)
    } else if now >= grant.expires_at {
        Some(GrantOutcome::Expired)
    } else {
        None
    }
}

/// The error for an unknown grant id.
pub(crate) fn not_found(grant_id: &str) -> StoreError {
    StoreError::NotFound {
        entity: "grant",
        id: grant_id.to_owned(),
    }
}
