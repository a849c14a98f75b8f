//! The events of a workspace that concern no run: API keys created and
//! revoked, policy sets reloaded. Built here once, appended by either
//! backend.

use crate::chain::PendingEvent;
use crate::model::{ApiKeyRecord, EventKind, Role};
use crate::ts::format_ts;
use chrono::{DateTime, Utc};
use serde_json::json;

/// The key_created event (never carries the key's hash).
pub(crate) fn key_created_event(key: &ApiKeyRecord) -> PendingEvent {
    let mut data = json!({
        "key_id": key.key_id,
        "role": key.role.as_str(),
        "label": key.label,
        "created_at": format_ts(key.created_at),
    });
    // Only for a bound key, so events of unbound keys keep their shape.
    if let (Some(actor), Some(map)) = (&key.actor, data.as_object_mut()) {
        map.insert("actor".to_owned(), json!(actor));
    }
    PendingEvent {
        kind: EventKind::KeyCreated,
        run_id: None,
        at: key.created_at,
        data,
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
    actor: Option<String>,
    now: DateTime<Utc>,
) -> ApiKeyRecord {
    ApiKeyRecord {
        key_id: key_id.to_owned(),
        workspace: workspace.to_owned(),
        role,
        label,
        created_at: now,
        revoked_at: None,
        actor,
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
