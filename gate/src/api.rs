//! HTTP handlers of the `/v1` API, and the JSON shapes they return.

pub mod answers;
pub mod intercept;
pub mod runs;
pub mod system;

use axum::body::Body;
use countersign_store::{ExecutionOutcome, Run, format_ts};
use serde_json::{Value, json};

use crate::error::ApiError;

/// Reads a request body, refusing more than `limit` bytes with 413.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // to_bytes reports both "too long" and transport errors; only the
        // first is the client's size problem.
        let text = e.to_string();
        if text.contains("length limit") {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadRequest {
                code: "bad_body",
                message: format!("could not read the request body: {text}"),
            }
        }
    })
}

/// Parses a small JSON control body (report bodies) with serde_json.
pub fn control_json(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::validation(
            "body",
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::validation("body", format!("malformed JSON: {e}"))),
    }
}

/// Reads a small JSON control body that may carry only `allowed` fields
/// (report and answer bodies); anything else is a 422 naming the field.
pub async fn control_body(
    body: Body,
    limit: usize,
    allowed: &[&str],
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let bytes = read_body(body, limit).await?;
    let m = control_json(&bytes)?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::validation(
            k.as_str(),
            format!("unknown field `{k}`; expected {}", allowed.join(", ")),
        ));
    }
    Ok(m)
}

/// Shortens text to at most `max` characters, marking the cut.
pub fn summarize_text(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A short, human-readable summary of a payload: `amount=1250.1, customer={…}`.
pub fn summarize_payload(payload: &countersign_engine::Value) -> String {
    use countersign_engine::Value as V;
    let Some(map) = payload.as_object() else {
        return summarize_text(&payload.to_json(), 240);
    };
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            let shown = match v {
                V::Object(m) if !m.is_empty() => "{…}".to_owned(),
                V::List(items) if !items.is_empty() => format!("[{} items]", items.len()),
                V::String(s) => summarize_text(s, 40),
                other => summarize_text(&other.to_json(), 40),
            };
            format!("{k}={shown}")
        })
        .collect();
    summarize_text(&parts.join(", "), 240)
}

/// The JSON shape of a run in API responses.
pub fn run_view(run: &Run) -> Value {
    let execution = run.execution.as_ref().map(|e| match &e.outcome {
        ExecutionOutcome::Executed { result } => json!({
            "status": "executed", "execution_result": result, "reported_at": format_ts(e.reported_at)
        }),
        ExecutionOutcome::Failed { error } => json!({
            "status": "failed", "execution_error": error, "reported_at": format_ts(e.reported_at)
        }),
    });
    let approvals: Vec<Value> = run
        .approvals
        .iter()
        .map(|a| {
            json!({
                "approver": a.approver_id,
                "decision": a.decision,
                "channel": a.channel,
                "comment": a.comment,
                "answered_at": format_ts(a.answered_at),
                "counted": a.counted,
            })
        })
        .collect();
    json!({
        "run_id": run.run_id,
        "workspace": run.workspace,
        "action": run.action,
        "actor": run.actor,
        "reasoning": run.reasoning,
        "source": run.source,
        "governance_status": run.governance_status,
        "execution_status": run.execution_status,
        "executable": run.executable,
        "governance_reason": run.decision.reason,
        "rule": run.decision.rule,
        "risk": run.decision.risk,
        "policy_version": run.decision.policy_version,
        "decision_details": run.decision.details,
        "approval": run.approval.as_ref().map(|a| json!({
            "group": a.group,
            "quorum": a.quorum,
            "expires_at": format_ts(a.expires_at),
            "approvers": a.approvers.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        })),
        "approvals": approvals,
        "execution": execution,
        "payload_summary": run.payload_summary,
        "payload_sha256": run.payload_hash,
        "idempotency_key": run.idempotency_key,
        "created_at": format_ts(run.created_at),
        "updated_at": format_ts(run.updated_at),
        "audit": { "seq": run.chain.seq, "hash": run.chain.hash },
    })
}
