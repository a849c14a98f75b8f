//! A run's receipt: signed now, shown as a page and offered as JSON.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign_store::Run;
use serde_json::Value;

use super::common::{respond, visible_run};
use crate::state::AppState;
use crate::ui::render::{page, secure};
use crate::ui::view::{Chrome, Tab, execution_label, governance_label, reveal, tone, when};

/// One approval line of a receipt.
pub struct ReceiptApproval {
    /// Who.
    pub approver: String,
    /// Approve or reject.
    pub decision: String,
    /// Channel.
    pub channel: String,
    /// When.
    pub at: String,
    /// Comment.
    pub comment: String,
    /// Counted toward the decision.
    pub counted: bool,
}

#[derive(Template)]
#[template(path = "ui/receipt.html")]
pub struct ReceiptPage {
    /// Frame.
    pub chrome: Chrome,
    /// Back link.
    pub back: String,
    /// JSON download link.
    pub json_href: String,
    /// Run id.
    pub run_id: String,
    /// Workspace.
    pub workspace: String,
    /// Action.
    pub action: String,
    /// Actor.
    pub actor: String,
    /// Governance status label.
    pub governance: String,
    /// Its tone.
    pub governance_tone: &'static str,
    /// Execution status label.
    pub execution: String,
    /// Its tone.
    pub execution_tone: &'static str,
    /// Execution detail.
    pub execution_detail: Option<String>,
    /// What the action returned, pretty-printed (executed runs).
    pub execution_result: Option<String>,
    /// Rule.
    pub rule: String,
    /// Reason.
    pub reason: String,
    /// Risk.
    pub risk: String,
    /// Policy version.
    pub policy_version: String,
    /// Payload hash.
    pub payload_sha256: String,
    /// Payload summary.
    pub payload_summary: String,
    /// Approval requirement, if any.
    pub approval: Option<String>,
    /// Answers.
    pub approvals: Vec<ReceiptApproval>,
    /// Created.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Audit seq.
    pub audit_seq: u64,
    /// Audit hash.
    pub audit_hash: String,
    /// Signing key id.
    pub key_id: String,
    /// Signature.
    pub signature: String,
    /// Verified against the gate's key as rendered.
    pub signature_ok: bool,
}

/// The receipt page of a run, signed now.
pub fn receipt_page(
    state: &AppState,
    run: &Run,
    chrome: Chrome,
    back: String,
    json_href: String,
) -> ReceiptPage {
    let signed = state.signer.sign(crate::receipts::receipt_body(run));
    let signature_ok =
        crate::receipts::verify(&signed, std::slice::from_ref(state.signer.public())).is_ok();
    let sig = signed.get("signature").cloned().unwrap_or(Value::Null);
    let g = run.governance_status;
    let e = run.execution_status;
    ReceiptPage {
        chrome,
        back,
        json_href,
        run_id: run.proposal.run_id.clone(),
        workspace: run.proposal.workspace.clone(),
        action: reveal(&run.proposal.action),
        actor: run
            .proposal
            .actor
            .as_deref()
            .map_or_else(|| "—".into(), reveal),
        governance: governance_label(g).to_owned(),
        governance_tone: tone(g.as_str()),
        execution: execution_label(e).to_owned(),
        execution_tone: tone(e.as_str()),
        execution_result: run.execution.as_ref().and_then(|x| match &x.outcome {
            countersign_store::ExecutionOutcome::Executed { result } if !result.is_null() => {
                Some(crate::ui::view::pretty_json(&result.to_string(), 5_000))
            }
            _ => None,
        }),
        execution_detail: run.execution.as_ref().map(|x| {
            reveal(&match &x.outcome {
                countersign_store::ExecutionOutcome::Executed { .. } => {
                    format!("reported {}", when(x.reported_at))
                }
                countersign_store::ExecutionOutcome::Failed { error } => format!(
                    "reported {}: {}",
                    when(x.reported_at),
                    crate::http::summarize_text(error, 300)
                ),
            })
        }),
        rule: run
            .proposal
            .decision
            .rule
            .as_deref()
            .map_or_else(|| "—".into(), reveal),
        reason: reveal(&run.proposal.decision.reason),
        risk: run
            .proposal
            .decision
            .risk
            .as_deref()
            .map_or_else(|| "—".into(), reveal),
        policy_version: run.proposal.decision.policy_version.clone(),
        payload_sha256: run.proposal.payload_hash.clone(),
        payload_summary: reveal(&run.proposal.payload_summary),
        approval: run.proposal.approval.as_ref().map(|a| {
            format!(
                "{} {} from {}, by {}",
                a.quorum,
                if a.quorum == 1 {
                    "approval"
                } else {
                    "approvals"
                },
                a.group,
                when(a.expires_at)
            )
        }),
        approvals: run
            .approvals
            .iter()
            .map(|a| ReceiptApproval {
                approver: reveal(&a.approver_id),
                decision: a.decision.as_str().to_owned(),
                channel: a.channel.clone(),
                at: when(a.answered_at),
                comment: a.comment.as_deref().map(reveal).unwrap_or_default(),
                counted: a.counted,
            })
            .collect(),
        created_at: when(run.proposal.created_at),
        updated_at: when(run.updated_at),
        audit_seq: run.chain.seq,
        audit_hash: run.chain.hash.clone(),
        key_id: sig
            .get("key_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        signature: sig
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        signature_ok,
    }
}

/// The signed receipt JSON as a download.
pub fn receipt_download(state: &AppState, run: &Run) -> Response {
    let signed = state.signer.sign(crate::receipts::receipt_body(run));
    let body = serde_json::to_string_pretty(&signed).unwrap_or_default();
    let mut r = secure((StatusCode::OK, body).into_response());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Run ids are [A-Za-z0-9_], so the file name needs no quoting rules.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"countersign-receipt-{}.json\"",
        run.proposal.run_id
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /ui/w/{ws}/runs/{run_id}/receipt`
pub async fn receipt(
    State(state): State<AppState>,
    Path((ws, run_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let (s, run) = visible_run(&state, &headers, &ws, &run_id).await?;
            let chrome = s.chrome(&state, &format!("Receipt {run_id}"), Some(&ws), Tab::Runs);
            let base = format!("/ui/w/{ws}/runs/{run_id}");
            Ok(page(
                StatusCode::OK,
                &receipt_page(
                    &state,
                    &run,
                    chrome,
                    base.clone(),
                    format!("{base}/receipt.json"),
                ),
            ))
        }
        .await,
    )
}

/// `GET /ui/w/{ws}/runs/{run_id}/receipt.json`
pub async fn receipt_json(
    State(state): State<AppState>,
    Path((ws, run_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let (_, run) = visible_run(&state, &headers, &ws, &run_id).await?;
            Ok(receipt_download(&state, &run))
        }
        .await,
    )
}
