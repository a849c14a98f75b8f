//! HTTP handlers of the `/v1` API, and the JSON shapes they return.

pub mod answers;
pub mod audit;
pub mod intercept;
pub mod runs;
pub mod system;

use axum::body::Body;
use countersign_store::{
    AnswerDecision, ExecutionOutcome, ExecutionStatus, GovernanceStatus, Run, format_ts,
};
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::http::read_body;

/// Parses a small JSON control body (report and answer bodies) strictly:
/// numbers keep their digits (an execution result is stored and hashed
/// exactly as sent) and a duplicated key is refused, so the gate and the
/// client can never read two different results out of one body.
pub fn control_json(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::validation("body", "malformed JSON: the body is not UTF-8"))?;
    match countersign_store::parse_strict_json(text) {
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

/// The JSON shape of a run in API responses, as a value.
pub fn run_view(run: &Run) -> Value {
    // Serializing plain structs and strings cannot fail.
    serde_json::to_value(RunView::new(run)).unwrap_or(Value::Null)
}

/// The JSON shape of a run in API responses, serialized straight from the
/// run (no intermediate [`Value`]).
#[derive(Debug, Serialize)]
pub struct RunView<'a> {
    run_id: &'a str,
    workspace: &'a str,
    action: &'a str,
    actor: Option<&'a str>,
    reasoning: Option<&'a str>,
    source: Option<&'a Value>,
    context: Option<&'a Value>,
    governance_status: GovernanceStatus,
    execution_status: ExecutionStatus,
    executable: bool,
    governance_reason: &'a str,
    rule: Option<&'a str>,
    risk: Option<&'a str>,
    policy_version: &'a str,
    decision_details: &'a Value,
    approval: Option<ApprovalView<'a>>,
    approvals: Vec<AnswerView<'a>>,
    execution: Option<ExecutionView<'a>>,
    payload_summary: &'a str,
    payload_sha256: &'a str,
    idempotency_key: Option<&'a str>,
    created_at: String,
    updated_at: String,
    audit: AuditView<'a>,
}

#[derive(Debug, Serialize)]
struct ApprovalView<'a> {
    group: &'a str,
    quorum: u32,
    expires_at: String,
    approvers: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
struct AnswerView<'a> {
    approver: &'a str,
    decision: AnswerDecision,
    channel: &'a str,
    comment: Option<&'a str>,
    answered_at: String,
    counted: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ExecutionView<'a> {
    Executed {
        execution_result: &'a Value,
        reported_at: String,
    },
    Failed {
        execution_error: &'a str,
        reported_at: String,
    },
}

#[derive(Debug, Serialize)]
struct AuditView<'a> {
    seq: u64,
    hash: &'a str,
}

impl<'a> RunView<'a> {
    /// The view of `run`.
    pub fn new(run: &'a Run) -> Self {
        Self {
            run_id: &run.proposal.run_id,
            workspace: &run.proposal.workspace,
            action: &run.proposal.action,
            actor: run.proposal.actor.as_deref(),
            reasoning: run.proposal.reasoning.as_deref(),
            source: run.proposal.source.as_ref(),
            context: run.proposal.context.as_ref(),
            governance_status: run.governance_status,
            execution_status: run.execution_status,
            executable: run.executable,
            governance_reason: &run.proposal.decision.reason,
            rule: run.proposal.decision.rule.as_deref(),
            risk: run.proposal.decision.risk.as_deref(),
            policy_version: &run.proposal.decision.policy_version,
            decision_details: &run.proposal.decision.details,
            approval: run.proposal.approval.as_ref().map(|a| ApprovalView {
                group: &a.group,
                quorum: a.quorum,
                expires_at: format_ts(a.expires_at),
                approvers: a.approvers.iter().map(|m| m.id.as_str()).collect(),
            }),
            approvals: run
                .approvals
                .iter()
                .map(|a| AnswerView {
                    approver: &a.approver_id,
                    decision: a.decision,
                    channel: &a.channel,
                    comment: a.comment.as_deref(),
                    answered_at: format_ts(a.answered_at),
                    counted: a.counted,
                })
                .collect(),
            execution: run.execution.as_ref().map(|e| match &e.outcome {
                ExecutionOutcome::Executed { result } => ExecutionView::Executed {
                    execution_result: result,
                    reported_at: format_ts(e.reported_at),
                },
                ExecutionOutcome::Failed { error } => ExecutionView::Failed {
                    execution_error: error,
                    reported_at: format_ts(e.reported_at),
                },
            }),
            payload_summary: &run.proposal.payload_summary,
            payload_sha256: &run.proposal.payload_hash,
            idempotency_key: run.proposal.idempotency_key.as_deref(),
            created_at: format_ts(run.proposal.created_at),
            updated_at: format_ts(run.updated_at),
            audit: AuditView {
                seq: run.chain.seq,
                hash: &run.chain.hash,
            },
        }
    }
}
