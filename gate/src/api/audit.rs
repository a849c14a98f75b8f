//! The verifiable audit log over HTTP: the latest signed checkpoint and
//! RFC 9162 proofs, for a client's auditor and for witnesses.
//!
//! Each route exists twice: with an API key (`/v1/audit/...`, the key's
//! workspace) and without one (`/v1/audit/{workspace}/...`, any configured
//! workspace). The unauthenticated form is what a witness in another
//! account uses: it reveals the log's size and hashes, never an event.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

fn configured(state: &AppState, workspace: &str) -> Result<(), ApiError> {
    if state.workspaces.contains_key(workspace) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "workspace `{}` not found",
            crate::http::summarize_text(workspace, 64)
        )))
    }
}

fn number(q: &HashMap<String, String>, name: &str) -> Result<u64, ApiError> {
    let v = q.get(name).ok_or_else(|| ApiError::BadRequest {
        code: "invalid_query",
        message: format!("`{name}` is required"),
    })?;
    v.parse::<u64>().map_err(|_| ApiError::BadRequest {
        code: "invalid_query",
        message: format!("`{name}` must be a whole number"),
    })
}

fn b64_hashes(hashes: &[countersign_store::tlog::Hash]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

async fn checkpoint_text(state: &AppState, workspace: &str) -> Result<Response, ApiError> {
    let store = state.store.as_ref();
    let latest = match store.latest_checkpoint(workspace).await? {
        Some(c) => Some(c),
        // Nothing signed yet (a new gate): sign the first one now.
        None => state
            .checkpoints
            .advance(store, workspace, state.clock.now())
            .await
            .map_err(checkpoint_error)?,
    };
    let Some(c) = latest else {
        return Err(ApiError::NotFound(format!(
            "workspace `{workspace}` has no events yet, so no checkpoint"
        )));
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        c.note,
    )
        .into_response())
}

/// Maps a failed signing to the API: tampering is `audit_mismatch`.
pub fn checkpoint_error(e: crate::checkpoints::CheckpointFailure) -> ApiError {
    match e {
        crate::checkpoints::CheckpointFailure::Store(s) => s.into(),
        e if e.is_tampering() => ApiError::AuditMismatch(e.to_string()),
        e => ApiError::Internal(e.to_string()),
    }
}

async fn inclusion(
    state: &AppState,
    workspace: &str,
    q: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let (index, size) = (number(q, "index")?, number(q, "size")?);
    let hashes = state.store.inclusion_proof(workspace, index, size).await?;
    Ok(Json(json!({
        "workspace": workspace,
        "index": index,
        "size": size,
        "hashes": b64_hashes(&hashes),
    })))
}

async fn consistency(
    state: &AppState,
    workspace: &str,
    q: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (number(q, "from")?, number(q, "to")?);
    let hashes = state.store.consistency_proof(workspace, from, to).await?;
    Ok(Json(json!({
        "workspace": workspace,
        "from": from,
        "to": to,
        "hashes": b64_hashes(&hashes),
    })))
}

/// `GET /v1/audit/checkpoint`: the key's workspace's latest checkpoint,
/// the signed note exactly as signed (`text/plain`).
pub async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    checkpoint_text(&state, caller.workspace.name()).await
}

/// `GET /v1/audit/{workspace}/checkpoint`, without a key.
pub async fn public_checkpoint(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
) -> Result<Response, ApiError> {
    configured(&state, &workspace)?;
    checkpoint_text(&state, &workspace).await
}

/// `GET /v1/audit/proofs/inclusion?index=…&size=…`
pub async fn inclusion_proof(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    inclusion(&state, caller.workspace.name(), &q).await
}

/// `GET /v1/audit/{workspace}/proofs/inclusion?index=…&size=…`, without a key.
pub async fn public_inclusion_proof(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    configured(&state, &workspace)?;
    inclusion(&state, &workspace, &q).await
}

/// `GET /v1/audit/proofs/consistency?from=…&to=…`
pub async fn consistency_proof(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    consistency(&state, caller.workspace.name(), &q).await
}

/// `GET /v1/audit/{workspace}/proofs/consistency?from=…&to=…`, without a key.
pub async fn public_consistency_proof(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    configured(&state, &workspace)?;
    consistency(&state, &workspace, &q).await
}
