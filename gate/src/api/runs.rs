//! Reading runs, reporting their execution, and their receipts.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use countersign_store::{ExecutionOutcome, ExecutionStatus, GovernanceStatus, RunFilter};
use serde_json::{Value, json};

use super::{control_body, run_view};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::run_id::RunId;
use crate::state::AppState;

/// The longest `execution_error` accepted.
const MAX_EXECUTION_ERROR: usize = 8 * 1024;

/// The run id of a path, or 404 naming it (shortened).
fn check_run_id(id: &str) -> Result<RunId, ApiError> {
    RunId::parse(id).map_err(|_| {
        ApiError::NotFound(format!(
            "run `{}` not found",
            crate::http::summarize_text(id, RunId::MAX_LEN)
        ))
    })
}

/// `GET /v1/runs/{id}`
pub async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = check_run_id(&id)?;
    let run = state
        .store
        .get_run(caller.workspace.name(), id.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("run `{id}` not found")))?;
    let deliveries = state
        .store
        .deliveries_for_run(caller.workspace.name(), id.as_str())
        .await?;
    let mut view = run_view(&run);
    view["deliveries"] = deliveries
        .iter()
        .map(|d| {
            json!({
                "delivery_id": d.delivery_id,
                "approver": d.approver_id,
                "channel": d.channel,
                "attempts": d.attempts + u32::from(d.sent_at.is_some()),
                "status": if d.sent_at.is_some() { "sent" } else if d.next_attempt_at.is_none() { "failed" } else { "pending" },
                "sent_at": d.sent_at.map(countersign_store::format_ts),
                "next_attempt_at": d.next_attempt_at.map(countersign_store::format_ts),
                "last_error": d.last_error,
            })
        })
        .collect();
    Ok(Json(view))
}

fn parse_enum<T: serde::de::DeserializeOwned>(name: &str, v: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::String(v.to_owned())).map_err(|_| ApiError::BadRequest {
        code: "invalid_query",
        message: format!("`{v}` is not a valid {name}"),
    })
}

/// `GET /v1/runs?governance_status=&execution_status=&action=&actor=&limit=&cursor=`
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    const KNOWN: [&str; 6] = [
        "governance_status",
        "execution_status",
        "action",
        "actor",
        "limit",
        "cursor",
    ];
    if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::BadRequest {
            code: "invalid_query",
            message: format!("unknown query parameter `{k}`"),
        });
    }
    let limit = match q.get("limit") {
        None => None,
        Some(l) => Some(
            l.parse::<u32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| ApiError::BadRequest {
                    code: "invalid_query",
                    message: "limit must be a number from 1 to 500".to_owned(),
                })?,
        ),
    };
    let filter = RunFilter {
        governance_status: q
            .get("governance_status")
            .map(|v| parse_enum::<GovernanceStatus>("governance_status", v))
            .transpose()?,
        execution_status: q
            .get("execution_status")
            .map(|v| parse_enum::<ExecutionStatus>("execution_status", v))
            .transpose()?,
        action: q.get("action").cloned(),
        actor: q.get("actor").cloned(),
        limit,
        cursor: q.get("cursor").cloned(),
    };
    let page = state
        .store
        .list_runs(caller.workspace.name(), filter)
        .await?;
    Ok(Json(json!({
        "runs": page.runs.iter().map(run_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

async fn report(
    state: &AppState,
    caller: &Caller,
    id: &str,
    outcome: ExecutionOutcome,
) -> Result<Json<Value>, ApiError> {
    let id = check_run_id(id)?;
    let run = state
        .store
        .report_execution(
            caller.workspace.name(),
            id.as_str(),
            outcome,
            state.clock.now(),
        )
        .await?;
    Ok(Json(run_view(&run)))
}

/// `POST /v1/runs/{id}/executed` `{"execution_result": …}`
pub async fn report_executed(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let mut m = control_body(body, state.config.max_body_bytes, &["execution_result"]).await?;
    let result = m.remove("execution_result").ok_or_else(|| {
        ApiError::validation(
            "execution_result",
            "`execution_result` is required (use null for none)",
        )
    })?;
    report(&state, &caller, &id, ExecutionOutcome::Executed { result }).await
}

/// `POST /v1/runs/{id}/failed` `{"execution_error": "…"}`
pub async fn report_failed(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let mut m = control_body(body, state.config.max_body_bytes, &["execution_error"]).await?;
    let error = match m.remove("execution_error") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_EXECUTION_ERROR => s,
        Some(_) => {
            return Err(ApiError::validation(
                "execution_error",
                format!(
                    "`execution_error` must be a non-empty string of at most {MAX_EXECUTION_ERROR} bytes"
                ),
            ));
        }
        None => {
            return Err(ApiError::validation(
                "execution_error",
                "`execution_error` is required",
            ));
        }
    };
    report(&state, &caller, &id, ExecutionOutcome::Failed { error }).await
}

/// `GET /v1/runs/{id}/receipt`
pub async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = check_run_id(&id)?;
    // Never sign what the log does not say: the row is checked against
    // the run's own authenticated events first.
    let run = state
        .store
        .verified_run(caller.workspace.name(), id.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("run `{id}` not found")))?;
    let mut body = crate::receipts::receipt_body(&run);
    body["version"] = json!(2);
    body["log"] = audit_proof(&state, caller.workspace.name(), id.as_str()).await?;
    Ok(Json(state.signer.sign(body)))
}

/// The receipt's `log` member: a checkpoint covering every event of the
/// run (signed now if the latest does not yet), and each event's inclusion
/// proof in it, checked here before anything is signed.
async fn audit_proof(state: &AppState, workspace: &str, run_id: &str) -> Result<Value, ApiError> {
    let store = state.store.as_ref();
    let events = store.run_events(workspace, run_id).await?;
    let last = events.last().map_or(0, |e| e.seq);
    let checkpoint = state
        .checkpoints
        .covering(store, workspace, last, state.clock.now())
        .await
        .map_err(super::audit::checkpoint_error)?;
    let mut proven = Vec::with_capacity(events.len());
    for event in events {
        let index = event.seq.saturating_sub(1);
        let proof = store
            .inclusion_proof(workspace, index, checkpoint.size)
            .await?;
        let leaf = countersign_store::tlog::leaf_hash(&countersign_store::event_leaf_data(&event));
        countersign_store::tlog::verify_inclusion(
            &leaf,
            index,
            checkpoint.size,
            &proof,
            &checkpoint.root,
        )
        .map_err(|e| {
            ApiError::AuditMismatch(format!(
                "run `{run_id}`: event seq {} is not in the signed tree of size {}: {e}",
                event.seq, checkpoint.size
            ))
        })?;
        proven.push((event, proof));
    }
    Ok(crate::receipt_proof::log_section(&checkpoint, &proven))
}
