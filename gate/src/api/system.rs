//! Health, metrics, the OpenAPI document, receipt keys, policies and the
//! audit chain.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.health().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => ApiError::Unavailable(format!("store not ready: {e}")).into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.store.batch_stats()),
    )
        .into_response()
}

/// `GET /openapi.json`
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
        .into_response()
}

/// `GET /v1/receipt-keys`: public keys for offline receipt verification.
pub async fn receipt_keys(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "keys": [state.signer.public()],
        "note_verifier": state.checkpoints.verifier().to_string(),
    }))
}

/// `GET /v1/policies`: the workspace's policy set in force.
pub async fn policies(State(_state): State<AppState>, caller: Caller) -> Json<Value> {
    let set = caller.workspace.policies();
    let actions: Vec<Value> = set
        .actions()
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "description": a.description,
                "risk": a.risk,
                "approvers": set.action_group(a).map(|g| g.name.clone()),
                "default": a.default,
                "on_error": a.on_error,
                "rules": a.rules.iter().map(|r| json!({
                    "name": r.name, "decision": r.decision, "mode": r.mode, "origin": r.origin.to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "workspace": caller.workspace.name(),
        "policy_version": set.version(),
        "actions": actions,
        "last_reload_error": caller.workspace.last_error(),
    }))
}

/// `POST /v1/policies/reload` (admin): reload now; invalid files keep the
/// old set and come back as 422 with every diagnostic.
pub async fn reload(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let report = caller.workspace.reload_with_store(&*state.store).await;
    state.metrics.record_reload(report.ok);
    state
        .store
        .record_policy_reload(
            caller.workspace.name(),
            &report.policy_version,
            report.ok,
            report.diagnostics.clone(),
            state.clock.now(),
        )
        .await?;
    if report.ok {
        Ok(Json(json!(report)).into_response())
    } else {
        Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": {
                    "code": "policy_invalid",
                    "message": format!("the new policy files are invalid; version {} stays in force", report.policy_version),
                    "diagnostics": report.diagnostics,
                }
            })),
        )
            .into_response())
    }
}

/// `GET /v1/audit/verify` (admin): walk the workspace's hash chain.
pub async fn audit_verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    match state.store.verify_chain(caller.workspace.name()).await {
        Ok(r) => Ok(Json(
            json!({ "ok": true, "events": r.events, "head_hash": r.head_hash }),
        )),
        Err(countersign_store::StoreError::ChainBroken { seq, reason, .. }) => Ok(Json(json!({
            "ok": false, "broken_at_seq": seq, "reason": reason.to_string(),
        }))),
        Err(e) => Err(e.into()),
    }
}
