//! The events of a workspace that concern no run: API keys created and
//! revoked, policy sets reloaded. Built here once, appended by either
//! backend.

use crate::chain::PendingEvent;
use crate::model::{ApiKeyRecord, EventKind, Role};
use crate::ts::format_ts;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The key_created event. It never carries the key's hash (events are
/// readable through the API), only its [`key_fingerprint`], which binds the
/// stored row's `key_hash` to the MACed event.
pub(crate) fn key_created_event(key: &ApiKeyRecord, key_hash: &str) -> PendingEvent {
    let mut data = json!({
        "key_id": key.key_id,
        "role": key.role.as_str(),
        "label": key.label,
        "created_at": format_ts(key.created_at),
        "key_fingerprint": key_fingerprint(key_hash),
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

/// Domain separation for [`key_fingerprint`], so the fingerprint is never
/// the hash of anything else the gate hashes.
const FINGERPRINT_DOMAIN: &[u8] = b"countersign api key fingerprint v1\0";

/// `hex(SHA-256("countersign api key fingerprint v1\0" ‖ key_hash))`: what
/// a key_created event records of the stored `key_hash` (the hex SHA-256 of
/// the secret). Knowing it gives nothing to look a key up with.
pub(crate) fn key_fingerprint(key_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(FINGERPRINT_DOMAIN);
    h.update(key_hash.as_bytes());
    hex::encode(h.finalize())
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
