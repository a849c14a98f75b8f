//! The workspace pages: overview, runs, run detail, receipt, policies.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use countersign_store::{
    Event, EventKind, ExecutionStatus, GovernanceStatus, Run, RunFilter, compute_hash,
};
use serde_json::Value;

use super::render::{UiError, page, secure, see_other};
use super::session::{self, Session};
use super::view::{
    Chrome, RunRow, Tab, enc, execution_label, governance_label, reveal, reveal_opt, tone, when,
};
use crate::run_id::RunId;
use crate::state::AppState;

/// Loads a run of a workspace the viewer may see.
pub async fn load_run(state: &AppState, ws: &str, run_id: &str) -> Result<Run, UiError> {
    if RunId::parse(run_id).is_err() {
        return Err(UiError::not_found("This run"));
    }
    state
        .store
        .get_run(ws, run_id)
        .await?
        .ok_or_else(|| UiError::not_found("This run"))
}

/// The session of this request and a run of a workspace it may see.
async fn visible_run(
    state: &AppState,
    headers: &HeaderMap,
    ws: &str,
    run_id: &str,
) -> Result<(Session, Run), UiError> {
    let (s, _) = session::require_in(state, headers, ws).await?;
    let run = load_run(state, ws, run_id).await?;
    Ok((s, run))
}

fn respond(r: Result<Response, UiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /ui`: where a visitor starts.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            Ok(match session::current(&state, &headers).await? {
                None => see_other("/ui/login"),
                Some(s) => match &s.viewer {
                    session::Viewer::Admin { workspace, .. } => {
                        see_other(&format!("/ui/w/{workspace}"))
                    }
                    session::Viewer::Approver { .. } => see_other("/ui/inbox"),
                },
            })
        }
        .await,
    )
}

// ---------------------------------------------------------------- overview

/// One day's bar of the chart.
pub struct Bar {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Short label under the bar.
    pub label: String,
    /// x of the bar.
    pub x: u32,
    /// Segments bottom-up: (class, y, height, count).
    pub segments: Vec<(&'static str, u32, u32, u64)>,
    /// Runs that day.
    pub total: u64,
}

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    ws: String,
    days: i64,
    periods: Vec<(i64, bool)>,
    runs: u64,
    pending: u64,
    executed: u64,
    blocked: u64,
    failed: u64,
    approved: u64,
    rejected: u64,
    expired: u64,
    allowed: u64,
    bars: Vec<Bar>,
    chart_width: u32,
    max_total: u64,
    policy_version: String,
    reload_error: bool,
}

const CHART_HEIGHT: u32 = 140;

/// `GET /ui/w/{ws}?days=7|30|90`
pub async fn overview(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let (s, workspace) = session::require_in(&state, &headers, &ws).await?;
            let days: i64 = match q.get("days").map(String::as_str) {
                None | Some("7") => 7,
                Some("1") => 1,
                Some("30") => 30,
                Some("90") => 90,
                Some(_) => {
                    return Err(UiError::bad_form("The period must be 1, 7, 30 or 90 days."));
                }
            };
            let now = state.clock.now();
            let today = now.date_naive();
            let first = today - Duration::days(days - 1);
            let since = first
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or(now);
            let rows = state
                .store
                .run_stats(&ws, since, now + Duration::seconds(1))
                .await?;
            let mut p = OverviewPage {
                chrome: s.chrome(&state, "Overview", Some(&ws), Tab::Overview),
                ws: ws.clone(),
                days,
                periods: [1, 7, 30, 90].iter().map(|d| (*d, *d == days)).collect(),
                runs: 0,
                pending: 0,
                executed: 0,
                blocked: 0,
                failed: 0,
                approved: 0,
                rejected: 0,
                expired: 0,
                allowed: 0,
                bars: Vec::new(),
                chart_width: 0,
                max_total: 0,
                policy_version: workspace.policies().version().to_owned(),
                reload_error: workspace.last_error().is_some(),
            };
            // Per day: (allowed or approved, pending, refused).
            let mut per_day: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
            for r in &rows {
                p.runs += r.count;
                match r.governance_status {
                    GovernanceStatus::PendingApproval => p.pending += r.count,
                    GovernanceStatus::Blocked => p.blocked += r.count,
                    GovernanceStatus::Approved => p.approved += r.count,
                    GovernanceStatus::Rejected => p.rejected += r.count,
                    GovernanceStatus::Expired => p.expired += r.count,
                    GovernanceStatus::Allowed => p.allowed += r.count,
                }
                match r.execution_status {
                    ExecutionStatus::Executed => p.executed += r.count,
                    ExecutionStatus::Failed => p.failed += r.count,
                    ExecutionStatus::NotExecuted | ExecutionStatus::AwaitingExecution => {}
                }
                let e = per_day.entry(r.day.clone()).or_default();
                match r.governance_status {
                    GovernanceStatus::Allowed | GovernanceStatus::Approved => e.0 += r.count,
                    GovernanceStatus::PendingApproval => e.1 += r.count,
                    _ => e.2 += r.count,
                }
            }
            p.max_total = per_day
                .values()
                .map(|(a, b, c)| a + b + c)
                .max()
                .unwrap_or(0);
            let bar_w: u32 = if days > 30 {
                8
            } else if days > 7 {
                18
            } else {
                48
            };
            let gap: u32 = if days > 30 { 2 } else { 6 };
            let mut x = 0;
            let mut day = first;
            while day <= today {
                let key = day.format("%Y-%m-%d").to_string();
                let (ok, wait, bad) = per_day.get(&key).copied().unwrap_or_default();
                let total = ok + wait + bad;
                let mut segments = Vec::new();
                let mut y = CHART_HEIGHT;
                for (class, count) in [("ok", ok), ("wait", wait), ("bad", bad)] {
                    if count == 0 || p.max_total == 0 {
                        continue;
                    }
                    let h = u32::try_from(count * u64::from(CHART_HEIGHT) / p.max_total)
                        .unwrap_or(CHART_HEIGHT)
                        .max(2);
                    y = y.saturating_sub(h);
                    segments.push((class, y, h, count));
                }
                p.bars.push(Bar {
                    label: short_day(day, days),
                    day: key,
                    x,
                    segments,
                    total,
                });
                x += bar_w + gap;
                day = match day.succ_opt() {
                    Some(d) => d,
                    None => break,
                };
            }
            p.chart_width = x.max(1);
            Ok(page(StatusCode::OK, &p))
        }
        .await,
    )
}

fn short_day(day: NaiveDate, period: i64) -> String {
    if period <= 7 {
        day.format("%a %d").to_string()
    } else {
        day.format("%d").to_string()
    }
}

// -------------------------------------------------------------------- runs

#[derive(Template)]
#[template(path = "ui/runs.html")]
struct RunsPage {
    chrome: Chrome,
    ws: String,
    rows: Vec<RunRow>,
    governance: Vec<(&'static str, &'static str, bool)>,
    execution: Vec<(&'static str, &'static str, bool)>,
    action: String,
    actor: String,
    next: Option<String>,
    first_page: bool,
    live_url: String,
}

/// The run filter of a query string; 400 for unknown statuses.
pub fn parse_filter(q: &HashMap<String, String>) -> Result<RunFilter, UiError> {
    let text = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let governance_status = match text("governance_status") {
        None => None,
        Some(v) => Some(
            GovernanceStatus::parse(&v)
                .ok_or_else(|| UiError::bad_form(format!("Unknown governance status `{v}`.")))?,
        ),
    };
    let execution_status = match text("execution_status") {
        None => None,
        Some(v) => Some(
            ExecutionStatus::parse(&v)
                .ok_or_else(|| UiError::bad_form(format!("Unknown execution status `{v}`.")))?,
        ),
    };
    let action = text("action");
    let actor = text("actor");
    if action.as_ref().is_some_and(|a| a.len() > 200)
        || actor.as_ref().is_some_and(|a| a.len() > 200)
    {
        return Err(UiError::bad_form("Filters are at most 200 characters."));
    }
    let cursor = text("cursor");
    if cursor.as_ref().is_some_and(|c| c.len() > 512) {
        return Err(UiError::bad_form("That page cursor is not valid."));
    }
    Ok(RunFilter {
        governance_status,
        execution_status,
        action,
        actor,
        limit: Some(50),
        cursor,
    })
}

/// The filter as a query string (without the cursor).
pub fn filter_query(f: &RunFilter) -> String {
    let mut parts = Vec::new();
    if let Some(g) = f.governance_status {
        parts.push(format!("governance_status={}", g.as_str()));
    }
    if let Some(e) = f.execution_status {
        parts.push(format!("execution_status={}", e.as_str()));
    }
    if let Some(a) = &f.action {
        parts.push(format!("action={}", enc(a)));
    }
    if let Some(a) = &f.actor {
        parts.push(format!("actor={}", enc(a)));
    }
    parts.join("&")
}

/// `GET /ui/w/{ws}/runs`
pub async fn runs(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let (s, _) = session::require_in(&state, &headers, &ws).await?;
            let filter = parse_filter(&q)?;
            let first_page = filter.cursor.is_none();
            // The live stream starts after the chain head read before the
            // page, so nothing that happens while rendering is missed.
            let head = state.store.chain_head(&ws).await?;
            let page_of_runs = state.store.list_runs(&ws, filter.clone()).await?;
            let now = state.clock.now();
            let query = filter_query(&filter);
            let rows = page_of_runs
                .runs
                .iter()
                .map(|r| RunRow::new(r, format!("/ui/w/{ws}/runs/{}", r.run_id), now))
                .collect();
            let next = page_of_runs.next_cursor.map(|c| {
                let sep = if query.is_empty() { "" } else { "&" };
                format!("/ui/w/{ws}/runs?{query}{sep}cursor={}", enc(&c))
            });
            let live_url = format!(
                "/ui/w/{ws}/live?after={}{}{}",
                head.seq,
                if query.is_empty() { "" } else { "&" },
                query
            );
            let p = RunsPage {
                chrome: s.chrome(&state, "Runs", Some(&ws), Tab::Runs),
                ws: ws.clone(),
                rows,
                governance: GovernanceStatus::ALL
                    .iter()
                    .map(|g| {
                        (
                            g.as_str(),
                            governance_label(*g),
                            filter.governance_status == Some(*g),
                        )
                    })
                    .collect(),
                execution: ExecutionStatus::ALL
                    .iter()
                    .map(|e| {
                        (
                            e.as_str(),
                            execution_label(*e),
                            filter.execution_status == Some(*e),
                        )
                    })
                    .collect(),
                action: filter.action.clone().unwrap_or_default(),
                actor: filter.actor.clone().unwrap_or_default(),
                next,
                first_page,
                live_url,
            };
            Ok(page(StatusCode::OK, &p))
        }
        .await,
    )
}

// -------------------------------------------------------------- run detail

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
    payload_summary: String,
    payload_hash: String,
    source: Option<String>,
    reason: String,
    risk: Option<String>,
    policy_version: String,
    approval: Option<String>,
    timeline: Vec<TimelineItem>,
    chain_seq: u64,
    chain_hash: String,
    chain_ok: bool,
    execution: Option<String>,
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
            let can_answer = run.governance_status == GovernanceStatus::PendingApproval
                && s.email()
                    .is_some_and(|email| approver_id_for(&run, email).is_some());
            let p = RunPage {
                chrome: s.chrome(&state, &format!("Run {run_id}"), Some(&ws), Tab::Runs),
                ws: ws.clone(),
                run: RunRow::new(&run, format!("/ui/w/{ws}/runs/{run_id}"), now),
                created: when(run.created_at),
                reasoning: reveal_opt(run.reasoning.as_deref()),
                payload_summary: reveal(&run.payload_summary),
                payload_hash: run.payload_hash.clone(),
                source: run
                    .source
                    .as_ref()
                    .map(|v| reveal(&crate::http::summarize_text(&v.to_string(), 500))),
                reason: reveal(&run.decision.reason),
                risk: reveal_opt(run.decision.risk.as_deref()),
                policy_version: run.decision.policy_version.clone(),
                approval: run.approval.as_ref().map(|a| {
                    let ids: Vec<&str> = a.approvers.iter().map(|m| m.id.as_str()).collect();
                    format!(
                        "{} of {} ({}), expires {}",
                        a.quorum,
                        a.group,
                        ids.join(", "),
                        when(a.expires_at)
                    )
                }),
                timeline,
                chain_seq: run.chain.seq,
                chain_hash: run.chain.hash.clone(),
                chain_ok,
                execution: run.execution.as_ref().map(|e| {
                    reveal(&match &e.outcome {
                        countersign_store::ExecutionOutcome::Executed { result } => format!(
                            "executed {}: {}",
                            when(e.reported_at),
                            crate::http::summarize_text(&result.to_string(), 300)
                        ),
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

/// The ids of the run's recorded approvers whose address is `email`.
fn ids_with_email<'a>(run: &'a Run, email: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    run.approval
        .iter()
        .flat_map(|a| a.approvers.iter())
        .filter(move |m| {
            m.email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
        })
        .map(|m| m.id.as_str())
}

/// The approver id under which `email` may answer `run`: one of the run's
/// recorded approvers with that address. None if there is none, or if any
/// entry with that address is the run's actor: the person who proved they
/// read this mailbox proposed the action, whatever id they answer under.
pub fn approver_id_for(run: &Run, email: &str) -> Option<String> {
    if ids_with_email(run, email).any(|id| countersign_store::is_actor(run, id)) {
        return None;
    }
    ids_with_email(run, email).next().map(str::to_owned)
}

/// Whether `email` is among a run's approvers (its actor or not).
pub fn listed_as(run: &Run, email: &str) -> bool {
    ids_with_email(run, email).next().is_some()
}

// ----------------------------------------------------------------- receipt

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
        run_id: run.run_id.clone(),
        workspace: run.workspace.clone(),
        action: reveal(&run.action),
        actor: run.actor.as_deref().map_or_else(|| "—".into(), reveal),
        governance: governance_label(g).to_owned(),
        governance_tone: tone(g.as_str()),
        execution: execution_label(e).to_owned(),
        execution_tone: tone(e.as_str()),
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
            .decision
            .rule
            .as_deref()
            .map_or_else(|| "—".into(), reveal),
        reason: reveal(&run.decision.reason),
        risk: run
            .decision
            .risk
            .as_deref()
            .map_or_else(|| "—".into(), reveal),
        policy_version: run.decision.policy_version.clone(),
        payload_sha256: run.payload_hash.clone(),
        payload_summary: reveal(&run.payload_summary),
        approval: run.approval.as_ref().map(|a| {
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
        created_at: when(run.created_at),
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
        run.run_id
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

// ---------------------------------------------------------------- policies

/// A group as shown.
pub struct GroupView {
    /// Name.
    pub name: String,
    /// Members: "id (name, email)".
    pub members: Vec<String>,
    /// Quorum.
    pub quorum: u32,
    /// Timeout.
    pub timeout: String,
    /// Escalation.
    pub escalation: Option<String>,
}

/// A rule as shown.
pub struct RuleView {
    /// Name.
    pub name: String,
    /// allow / require_approval / block.
    pub decision: String,
    /// Its tone.
    pub tone: &'static str,
    /// enforce / shadow.
    pub shadow: bool,
    /// Condition source.
    pub condition: String,
    /// Reason.
    pub reason: String,
    /// Approvers (group, quorum) when it requires approval.
    pub approvers: Option<String>,
    /// file:line:col.
    pub origin: String,
}

/// An action as shown.
pub struct ActionView {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Risk.
    pub risk: String,
    /// Approver group.
    pub approvers: String,
    /// Default decision.
    pub default: String,
    /// Rules in order.
    pub rules: Vec<RuleView>,
}

#[derive(Template)]
#[template(path = "ui/policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    version: String,
    files: Vec<String>,
    reload_error: Option<Vec<String>>,
    groups: Vec<GroupView>,
    actions: Vec<ActionView>,
}

fn verdict_tone(v: &str) -> &'static str {
    match v {
        "allow" => "good",
        "require_approval" => "wait",
        _ => "bad",
    }
}

/// `GET /ui/w/{ws}/policies`
pub async fn policies(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> Response {
    use countersign_engine::policy::{Condition, Mode, format_duration};
    respond(
        async {
            let (s, workspace) = session::require_in(&state, &headers, &ws).await?;
            let set = workspace.policies();
            let dir = workspace.policy_dir().to_path_buf();
            let rel = |p: &std::path::Path| p.strip_prefix(&dir).unwrap_or(p).display().to_string();
            let groups = set
                .groups()
                .iter()
                .map(|g| GroupView {
                    name: g.name.clone(),
                    members: g
                        .members
                        .iter()
                        .map(|m| {
                            let extra: Vec<&str> = [m.name.as_deref(), m.email.as_deref()]
                                .into_iter()
                                .flatten()
                                .collect();
                            if extra.is_empty() {
                                m.id.clone()
                            } else {
                                format!("{} ({})", m.id, extra.join(", "))
                            }
                        })
                        .collect(),
                    quorum: g.quorum,
                    timeout: format_duration(g.timeout),
                    escalation: g.escalate_to.as_ref().map(|to| {
                        format!(
                            "escalates to {to} after {}",
                            g.escalate_after.map(format_duration).unwrap_or_default()
                        )
                    }),
                })
                .collect();
            let actions = set
                .actions()
                .iter()
                .map(|a| ActionView {
                    name: a.name.clone(),
                    description: a.description.clone().unwrap_or_default(),
                    risk: a.risk.as_str().to_owned(),
                    approvers: set
                        .action_group(a)
                        .map(|g| g.name.clone())
                        .unwrap_or_else(|| "—".into()),
                    default: a.default.as_str().to_owned(),
                    rules: a
                        .rules
                        .iter()
                        .map(|r| RuleView {
                            name: r.name.clone(),
                            decision: r.decision.as_str().to_owned(),
                            tone: verdict_tone(r.decision.as_str()),
                            shadow: r.mode == Mode::Shadow,
                            condition: match &r.condition {
                                Condition::Always => "always".to_owned(),
                                Condition::Expr(e) => e.source().to_owned(),
                                Condition::Cel(c) => format!("CEL: {}", c.source()),
                            },
                            reason: r.reason.clone(),
                            approvers: (r.decision.as_str() == "require_approval").then(|| {
                                let g = set.rule_group(a, r);
                                format!(
                                    "{} (quorum {})",
                                    g.map_or("—", |g| g.name.as_str()),
                                    r.quorum.or(g.map(|g| g.quorum)).unwrap_or(1)
                                )
                            }),
                            origin: format!(
                                "{}:{}:{}",
                                rel(&r.origin.file),
                                r.origin.line,
                                r.origin.column
                            ),
                        })
                        .collect(),
                })
                .collect();
            let p = PoliciesPage {
                chrome: s.chrome(&state, "Policies", Some(&ws), Tab::Policies),
                version: set.version().to_owned(),
                files: set.files().iter().map(|f| rel(f)).collect(),
                reload_error: workspace.last_error(),
                groups,
                actions,
            };
            Ok(page(StatusCode::OK, &p))
        }
        .await,
    )
}
