//! Bearer API keys: who is calling, for which workspace, with which role.
//!
//! Verified keys are kept in a small in-memory cache
//! ([`KeyCache`](crate::keys::KeyCache)) for [`KEY_CACHE_TTL`](crate::keys::KEY_CACHE_TTL), so a busy agent's requests do not each wait on a
//! database read. The price is bounded staleness: a key revoked while the
//! gate runs (with `countersign keys revoke`, possibly from another process)
//! is refused at most [`KEY_CACHE_TTL`](crate::keys::KEY_CACHE_TTL) later. Unknown and revoked keys are
//! never cached: they are looked up on every request.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use countersign_store::{ApiKeyRecord, Role};

use crate::error::ApiError;
use crate::keys::hash_key;
use crate::state::AppState;
use crate::workspace::Workspace;

/// The longest Authorization value considered, and the longest key the
/// dashboard's sign-in form takes.
pub const MAX_KEY_LEN: usize = 256;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key used.
    pub key: ApiKeyRecord,
    /// Its workspace.
    pub workspace: Arc<Workspace>,
}

impl Caller {
    /// Refuses anything but an admin key.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.key.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                code: "admin_required",
                message: "this endpoint needs an admin key".to_owned(),
            })
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("missing `Authorization: Bearer <key>` header".to_owned())
        })?;
        let value = header
            .to_str()
            .ok()
            .filter(|v| v.len() <= MAX_KEY_LEN)
            .ok_or_else(|| ApiError::Unauthorized("malformed Authorization header".to_owned()))?;
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".to_owned())
            })?;
        // Lookup by hash: the secret itself is never compared.
        let key_hash = hash_key(key);
        let now = Instant::now();
        let record = match state.keys.get(&key_hash, now) {
            Some(record) => record,
            None => {
                let record = state
                    .store
                    .find_key(&key_hash)
                    .await?
                    .ok_or_else(|| ApiError::Unauthorized("unknown API key".to_owned()))?;
                state.keys.put(key_hash, &record, now);
                record
            }
        };
        if record.revoked_at.is_some() {
            return Err(ApiError::Unauthorized(
                "this API key was revoked".to_owned(),
            ));
        }
        let workspace = state
            .workspaces
            .get(&record.workspace)
            .cloned()
            .ok_or_else(|| ApiError::Forbidden {
                code: "workspace_not_configured",
                message: format!(
                    "workspace `{}` is not configured on this gate",
                    record.workspace
                ),
            })?;
        state
            .limiter
            .check(&format!("{}/{}", record.workspace, record.key_id))
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
        Ok(Caller {
            key: record,
            workspace,
        })
    }
}
