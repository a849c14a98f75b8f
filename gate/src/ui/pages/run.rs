//! One run's page: its decision, approvals, deliveries and timeline, with
//! every audit event's hash checked.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use countersign_store::{Event, EventKind, ExecutionStatus, GovernanceStatus, compute_hash};
use serde_json::Value;

use super::common::{approver_id_for, respond, visible_run};
use crate::state::AppState;
use crate::ui::render::{UiError, page};
use crate::ui::view::{
    Chrome, PayloadField, RunRow, Tab, execution_label, governance_label, payload_fields,
    pretty_json, reveal, reveal_opt, risk_class, tone, until, when,
};

/// One entry of a run's timeline.
pub struct TimelineItem {
    /// When.
    pub at: String,
    /// What happened, briefly.
    pub title: String,
    /// Details lines.
    pub lines: Vec<String>,
    /// Badge tone.
    pub tone: &'static str,
    /// Its seq in the chain.
    pub seq: u64,
    /// Its hash recomputes and links to its predecessor.
    pub verified: bool,
    /// Delivery lines (under approval_requested).
    pub deliveries: Vec<DeliveryLine>,
}

/// One approval delivery, as shown.
pub struct DeliveryLine {
    /// Approver id.
    pub approver: String,
    /// Channel.
    pub channel: String,
    /// Sent, retrying, failed, waiting.
    pub state: String,
    /// Badge tone.
    pub tone: &'static str,
    /// Last error, if any.
    pub error: Option<String>,
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn describe_event(e: &Event) -> (String, Vec<String>, &'static str) {
    let d = &e.data;
    match e.kind {
        EventKind::RunProposed => (
            format!(
                "Proposed by {}",
                str_of(d, "actor").unwrap_or("an unnamed actor")
            ),
            str_of(d, "payload_summary")
                .map(|s| vec![s.to_owned()])
                .unwrap_or_default(),
            "muted",
        ),
        EventKind::PolicyDecided => {
            let status = str_of(d, "governance_status").unwrap_or("");
            (
                format!(
                    "Policy decided: {}",
                    GovernanceStatus::parse(status).map_or(status, |s| governance_label(s))
                ),
                [
                    str_of(d, "rule").map(|r| format!("rule {r}")),
                    str_of(d, "reason").map(str::to_owned),
                    str_of(d, "policy_version").map(|v| format!("policy version {}", short(v))),
                ]
                .into_iter()
                .flatten()
                .collect(),
                tone(status),
            )
        }
        EventKind::ApprovalRequested => (
            format!(
                "Approval requested from {} (quorum {})",
                str_of(d, "group").unwrap_or("?"),
                d.get("quorum").and_then(Value::as_u64).unwrap_or(1)
            ),
            str_of(d, "expires_at")
                .map(|x| vec![format!("expires {}", readable_ts(x))])
                .unwrap_or_default(),
            "wait",
        ),
        EventKind::ApprovalGranted | EventKind::ApprovalRejected => {
            let verb = if e.kind == EventKind::ApprovalGranted {
                "Approved"
            } else {
                "Rejected"
            };
            let counted = d.get("counted").and_then(Value::as_bool).unwrap_or(true);
            let mut lines = vec![format!("through {}", str_of(d, "channel").unwrap_or("?"))];
            if let Some(c) = str_of(d, "comment") {
                lines.push(format!("“{c}”"));
            }
            if !counted {
                lines.push("not counted (already answered or decided)".to_owned());
            }
            (
                format!("{verb} by {}", str_of(d, "approver_id").unwrap_or("?")),
                lines,
                if !counted {
                    "muted"
                } else if e.kind == EventKind::ApprovalGranted {
                    "good"
                } else {
                    "bad"
                },
            )
        }
        EventKind::RunExpired => ("Expired unanswered".to_owned(), Vec::new(), "bad"),
        EventKind::ExecutionReported => {
            let status = str_of(d, "execution_status").unwrap_or("");
            let mut lines = Vec::new();
            if let Some(err) = d.get("outcome").and_then(|o| str_of(o, "error")) {
                lines.push(crate::http::summarize_text(err, 300));
            }
            (
                format!(
                    "Execution reported: {}",
                    ExecutionStatus::parse(status).map_or(status, |s| execution_label(s))
                ),
                lines,
                tone(status),
            )
        }
        _ => (e.kind.as_str().replace('_', " "), Vec::new(), "muted"),
    }
}

/// An RFC 3339 timestamp from event data, as the pages show times.
fn readable_ts(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| when(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| s.to_owned())
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Recomputes each event's hash and checks it links to the event before it.
async fn verify_events(state: &AppState, ws: &str, events: &[Event]) -> Result<Vec<bool>, UiError> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let own = compute_hash(e) == e.hash;
        let linked = if e.seq <= 1 {
            e.prev_hash == countersign_store::GENESIS_HASH
        } else {
            state
                .store
                .events(ws, e.seq - 2, 1)
                .await?
                .first()
                .is_some_and(|p| p.seq + 1 == e.seq && p.hash == e.prev_hash)
        };
        out.push(own && linked);
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "ui/run.html")]
struct RunPage {
    chrome: Chrome,
    ws: String,
    run: RunRow,
    created: String,
    reasoning: Option<String>,
    payload_hash: String,
    fields: Vec<PayloadField>,
    more_fields: usize,
    payload_json: String,
    title: String,
    source: Option<String>,
    reason: String,
    risk: Option<String>,
    risk_class: &'static str,
    policy_version: String,
    approval: Option<String>,
    timeline: Vec<TimelineItem>,
    chain_seq: u64,
    chain_hash: String,
    chain_ok: bool,
    execution: Option<String>,
    result: Option<String>,
    can_answer: bool,
}

/// `GET /ui/w/{ws}/runs/{run_id}`
pub async fn run_detail(
    State(state): State<AppState>,
    Path((ws, run_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let (s, run) = visible_run(&state, &headers, &ws, &run_id).await?;
            let events = state.store.run_events(&ws, &run_id).await?;
            let verified = verify_events(&state, &ws, &events).await?;
            let deliveries = state.store.deliveries_for_run(&ws, &run_id).await?;
            let now = state.clock.now();
            let mut timeline: Vec<TimelineItem> = events
                .iter()
                .zip(&verified)
                .map(|(e, ok)| {
                    let (title, lines, tone) = describe_event(e);
                    TimelineItem {
                        at: when(e.at),
                        title: reveal(&title),
                        lines: lines.iter().map(|l| reveal(l)).collect(),
                        tone,
                        seq: e.seq,
                        verified: *ok,
                        deliveries: Vec::new(),
                    }
                })
                .collect();
            if let Some(item) = events
                .iter()
                .position(|e| e.kind == EventKind::ApprovalRequested)
                .and_then(|i| timeline.get_mut(i))
            {
                item.deliveries = deliveries
                    .iter()
                    .map(|d| {
                        let (state_text, tone) = match (d.sent_at, d.next_attempt_at) {
                            (Some(t), _) => (format!("sent {}", when(t)), "good"),
                            (None, Some(t)) if d.attempts == 0 => {
                                (format!("queued for {}", when(t)), "wait")
                            }
                            (None, Some(t)) => (
                                format!("failed {} time(s), retrying {}", d.attempts, when(t)),
                                "wait",
                            ),
                            (None, None) => {
                                (format!("gave up after {} attempt(s)", d.attempts), "bad")
                            }
                        };
                        DeliveryLine {
                            approver: reveal(&d.approver_id),
                            channel: d.channel.clone(),
                            state: state_text,
                            tone,
                            error: reveal_opt(d.last_error.as_deref()),
                        }
                    })
                    .collect();
            }
            let chain_ok = !verified.is_empty()
                && verified.iter().all(|v| *v)
                && events
                    .last()
                    .is_some_and(|e| e.seq == run.chain.seq && e.hash == run.chain.hash);
            let policies = state.workspaces.get(&ws).map(|w| w.policies());
            let read = policies
                .as_deref()
                .map(|p| crate::title::deciding_paths(p, &run))
                .unwrap_or_default();
            let (fields, more_fields) = payload_fields(&run.proposal.payload_json, &read);
            let title = policies
                .as_deref()
                .and_then(|p| crate::title::run_title(p, &run))
                .unwrap_or_else(|| run.proposal.action.clone());
            let pending = run.governance_status == GovernanceStatus::PendingApproval;
            let can_answer = run.governance_status == GovernanceStatus::PendingApproval
                && s.email()
                    .is_some_and(|email| approver_id_for(&run, email).is_some());
            let p = RunPage {
                chrome: s.chrome(&state, &format!("Run {run_id}"), Some(&ws), Tab::Runs),
                ws: ws.clone(),
                run: RunRow::new(&run, format!("/ui/w/{ws}/runs/{run_id}"), now),
                created: when(run.proposal.created_at),
                reasoning: reveal_opt(run.proposal.reasoning.as_deref()),
                payload_hash: run.proposal.payload_hash.clone(),
                fields,
                more_fields,
                payload_json: pretty_json(&run.proposal.payload_json, 20_000),
                title: reveal(&title),
                source: run
                    .proposal
                    .source
                    .as_ref()
                    .map(|v| reveal(&crate::http::summarize_text(&v.to_string(), 500))),
                reason: reveal(&run.proposal.decision.reason),
                risk: reveal_opt(run.proposal.decision.risk.as_deref()),
                risk_class: risk_class(run.proposal.decision.risk.as_deref().unwrap_or("")),
                policy_version: run.proposal.decision.policy_version.clone(),
                // Once decided, what it needed is history (the timeline
                // keeps it); only a pending run says what it still needs.
                approval: run.proposal.approval.as_ref().filter(|_| pending).map(|a| {
                    let ids: Vec<&str> = a.approvers.iter().map(|m| m.id.as_str()).collect();
                    let (got, _) = crate::approvals::record::progress(&run);
                    reveal(&format!(
                        "{} of {} ({}); {got} so far; expires {} ({})",
                        a.quorum,
                        a.group,
                        ids.join(", "),
                        until(a.expires_at, now),
                        when(a.expires_at)
                    ))
                }),
                timeline,
                chain_seq: run.chain.seq,
                chain_hash: run.chain.hash.clone(),
                chain_ok,
                result: run.execution.as_ref().and_then(|e| match &e.outcome {
                    countersign_store::ExecutionOutcome::Executed { result }
                        if !result.is_null() =>
                    {
                        Some(pretty_json(&result.to_string(), 5_000))
                    }
                    _ => None,
                }),
                execution: run.execution.as_ref().map(|e| {
                    reveal(&match &e.outcome {
                        countersign_store::ExecutionOutcome::Executed { .. } => {
                            format!("executed, reported {}", when(e.reported_at))
                        }
                        countersign_store::ExecutionOutcome::Failed { error } => format!(
                            "failed {}: {}",
                            when(e.reported_at),
                            crate::http::summarize_text(error, 300)
                        ),
                    })
                }),
                can_answer,
            };
            Ok(page(StatusCode::OK, &p))
        }
        .await,
    )
}
