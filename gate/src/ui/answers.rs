//! The approvals inbox: the runs waiting on the signed-in approver, answered
//! under the same rules as every other channel (the store checks
//! membership, quorum, self-approval and expiry atomically).

use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_store::{AnswerDecision, GovernanceStatus, Run, RunFilter};

use super::login::form;
use super::pages::{approver_id_for, listed_as, load_run};
use super::render::{UiError, page, see_other};
use super::session::{self, Session};
use super::view::{
    Chrome, PayloadField, Tab, ago, payload_fields, pretty_json, reveal, reveal_opt, risk_class,
    short_id, until, when,
};
use crate::approvals::record::{self, Answer, Outcome};
use crate::http::{ClientAddr, user_agent};
use crate::run_id::RunId;
use crate::state::AppState;

/// Pending runs examined per workspace for one inbox.
const MAX_SCAN: usize = 2000;

/// A run waiting on the viewer.
pub struct InboxItem {
    /// Workspace.
    pub ws: String,
    /// Run id.
    pub run_id: String,
    /// Run id, shortened.
    pub short_id: String,
    /// Action.
    pub action: String,
    /// The card's title: the action's `summary:` filled in, its
    /// description, or the action name.
    pub title: String,
    /// Actor.
    pub actor: String,
    /// The payload as key/value rows, what the rule reads marked.
    pub fields: Vec<PayloadField>,
    /// Fields left out of `fields`.
    pub more_fields: usize,
    /// Some field is marked as read by the rule.
    pub any_read: bool,
    /// The whole payload, pretty-printed.
    pub payload_json: String,
    /// Risk badge class.
    pub risk_class: &'static str,
    /// Expiry, relative ("in 23 h").
    pub expires_in: String,
    /// Expiry, RFC 3339 (for `<time datetime>`).
    pub expires_at: String,
    /// Answers so far: (who, what, when, comment).
    pub answers: Vec<(String, &'static str, String, Option<String>)>,
    /// Reasoning.
    pub reasoning: Option<String>,
    /// Rule and reason.
    pub why: String,
    /// Risk.
    pub risk: Option<String>,
    /// "1 of 2 approvals".
    pub progress: String,
    /// Expiry.
    pub expires: String,
    /// The viewer proposed it: shown, but cannot be approved.
    pub own: bool,
    /// The viewer may answer (an approver, not yet answered).
    pub can_answer: bool,
    /// A member of the escalation group, before their time: when they may
    /// answer (no buttons until then).
    pub later: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/inbox.html")]
struct InboxPage {
    chrome: Chrome,
    items: Vec<InboxItem>,
    flash: Option<String>,
    flash_tone: &'static str,
    admin: bool,
    truncated: bool,
    max_comment: usize,
}

/// Pending runs of a workspace, and whether there were more than
/// [`MAX_SCAN`] (then the oldest are not shown, and the page says so).
async fn pending_runs(state: &AppState, ws: &str) -> Result<(Vec<Run>, bool), UiError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .store
            .list_runs(
                ws,
                RunFilter {
                    governance_status: Some(GovernanceStatus::PendingApproval),
                    limit: Some(RunFilter::MAX_LIMIT),
                    cursor,
                    ..RunFilter::default()
                },
            )
            .await?;
        out.extend(page.runs);
        match page.next_cursor {
            Some(c) if out.len() < MAX_SCAN => cursor = Some(c),
            Some(_) => return Ok((out, true)),
            None => return Ok((out, false)),
        }
    }
}

fn item(
    state: &AppState,
    run: &Run,
    email: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> InboxItem {
    let policies = state
        .workspaces
        .get(&run.proposal.workspace)
        .map(|w| w.policies());
    let read = policies
        .as_deref()
        .map(|p| crate::title::deciding_paths(p, run))
        .unwrap_or_default();
    let (fields, more_fields) = payload_fields(&run.proposal.payload_json, &read);
    let title = policies
        .as_deref()
        .and_then(|p| crate::title::run_title(p, run))
        .unwrap_or_else(|| run.proposal.action.clone());
    let expires = run.proposal.approval.as_ref().map(|a| a.expires_at);
    let (approvals, quorum) = record::progress(run);
    let id = email.and_then(|e| approver_id_for(run, e));
    let own = id.is_none() && email.is_some_and(|e| listed_as(run, e));
    let later = id
        .as_deref()
        .and_then(|id| {
            run.proposal
                .approval
                .as_ref()
                .and_then(|a| a.not_yet_eligible(id, now))
        })
        .map(record::eligible_text);
    let answered = id.is_some_and(|id| run.approvals.iter().any(|a| a.approver_id == id));
    InboxItem {
        ws: run.proposal.workspace.clone(),
        run_id: run.proposal.run_id.clone(),
        short_id: short_id(&run.proposal.run_id),
        action: reveal(&run.proposal.action),
        title: reveal(&title),
        actor: run
            .proposal
            .actor
            .as_deref()
            .map_or_else(|| "—".into(), reveal),
        any_read: fields.iter().any(|f| f.read),
        fields,
        more_fields,
        payload_json: pretty_json(&run.proposal.payload_json, 20_000),
        risk_class: risk_class(run.proposal.decision.risk.as_deref().unwrap_or("")),
        expires_in: expires.map(|t| until(t, now)).unwrap_or_default(),
        expires_at: expires
            .map(countersign_store::format_ts)
            .unwrap_or_default(),
        answers: run
            .approvals
            .iter()
            .map(|a| {
                (
                    reveal(&a.approver_id),
                    match (a.decision, a.counted) {
                        (AnswerDecision::Approve, true) => "approved",
                        (AnswerDecision::Reject, true) => "rejected",
                        (AnswerDecision::Approve, false) => "approved (not counted)",
                        (AnswerDecision::Reject, false) => "rejected (not counted)",
                    },
                    ago(a.answered_at, now),
                    reveal_opt(a.comment.as_deref()),
                )
            })
            .collect(),
        reasoning: reveal_opt(run.proposal.reasoning.as_deref()),
        why: reveal(&format!(
            "{}: {}",
            run.proposal.decision.rule.as_deref().unwrap_or("default"),
            run.proposal.decision.reason
        )),
        risk: reveal_opt(run.proposal.decision.risk.as_deref()),
        progress: format!(
            "{approvals} of {quorum} {}",
            if quorum == 1 { "approval" } else { "approvals" }
        ),
        expires: run
            .proposal
            .approval
            .as_ref()
            .map(|a| when(a.expires_at))
            .unwrap_or_default(),
        own,
        can_answer: email.is_some() && !own && !answered && later.is_none(),
        later,
    }
}

/// `GET /ui/inbox`
pub async fn inbox(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let s = session::require(&state, &headers).await?;
        let email = s.email().map(str::to_owned);
        let mut items = Vec::new();
        let mut truncated = false;
        let workspaces = s.workspaces(&state);
        for ws in &workspaces {
            let (runs, more) = pending_runs(&state, ws).await?;
            truncated |= more;
            for run in runs {
                // Approvers see what waits on them; admins see everything pending.
                let relevant = match &email {
                    Some(e) => listed_as(&run, e),
                    None => true,
                };
                if relevant {
                    items.push(item(&state, &run, email.as_deref(), state.clock.now()));
                }
            }
        }
        // Soonest expiry first: what needs an answer soonest.
        items.sort_by(|a, b| a.expires_at.cmp(&b.expires_at));
        let (flash, flash_tone) = flash(&q);
        let p = InboxPage {
            chrome: s.chrome(
                &state,
                "Approvals",
                workspaces.first().map(String::as_str),
                Tab::Inbox,
            ),
            items,
            flash,
            flash_tone,
            admin: s.is_admin(),
            truncated,
            max_comment: record::MAX_COMMENT,
        };
        Ok::<_, UiError>(page(StatusCode::OK, &p))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The message after an answer, from fixed texts (never echoing the URL).
fn flash(q: &HashMap<String, String>) -> (Option<String>, &'static str) {
    let run = q
        .get("run")
        .filter(|r| RunId::parse(r).is_ok())
        .cloned()
        .unwrap_or_default();
    let text = match q.get("answered").map(String::as_str) {
        Some("approved") => (
            format!("You approved {run}. The action may now run."),
            "good",
        ),
        Some("approved_waiting") => (
            format!("You approved {run}; it still waits for more approvals."),
            "good",
        ),
        Some("rejected") => (
            format!("You rejected {run}. The action will not run."),
            "bad",
        ),
        Some("duplicate") => (
            format!("You had already answered {run}; your first answer stands."),
            "muted",
        ),
        Some("decided") => (
            format!("{run} was already decided or has expired; nothing was recorded."),
            "muted",
        ),
        _ => return (None, "muted"),
    };
    (Some(text.0), text.1)
}

/// `POST /ui/inbox/{ws}/{run_id}` (csrf, decision, comment)
pub async fn answer(
    State(state): State<AppState>,
    Path((ws, run_id)): Path<(String, String)>,
    ClientAddr(client_addr): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let form = form(body).await?;
        let s: Session = session::require(&state, &headers).await?;
        s.check_form(&state, &headers, form.get("csrf").map(String::as_str))?;
        s.workspace(&state, &ws)?;
        let decision = match form.get("decision").map(String::as_str) {
            Some("approve") => AnswerDecision::Approve,
            Some("reject") => AnswerDecision::Reject,
            _ => return Err(UiError::bad_form("Choose Approve or Reject.")),
        };
        let Some(email) = s.email() else {
            return Err(UiError::new(
                StatusCode::FORBIDDEN,
                "Approvers answer for themselves",
                "An admin key cannot answer approval requests. Approvers sign in with the link \
                 emailed to the address the policy gives them.",
            ));
        };
        let run = load_run(&state, &ws, &run_id).await?;
        let approver_id = match approver_id_for(&run, email) {
            Some(id) => id,
            None if listed_as(&run, email) => {
                return Err(UiError::new(
                    StatusCode::FORBIDDEN,
                    "You cannot approve your own request",
                    "You proposed this action; another approver has to answer.",
                ));
            }
            None => {
                return Err(UiError::new(
                    StatusCode::FORBIDDEN,
                    "You may not answer this request",
                    "You are not one of its approvers.",
                ));
            }
        };
        // One answer per approver from the dashboard, and none once the run
        // is decided: nothing is recorded (link answers are capped by their
        // single-use token; here the session could repeat forever). The
        // store still decides atomically if two answers race.
        if run.governance_status != GovernanceStatus::PendingApproval
            || state.clock.now()
                >= run
                    .proposal
                    .approval
                    .as_ref()
                    .map_or(run.proposal.created_at, |a| a.expires_at)
        {
            return Ok(see_other(&format!(
                "/ui/inbox?answered=decided&run={run_id}"
            )));
        }
        if run.approvals.iter().any(|a| a.approver_id == approver_id) {
            return Ok(see_other(&format!(
                "/ui/inbox?answered=duplicate&run={run_id}"
            )));
        }
        // Same checks as the other channels, then the store's atomic ones.
        record::may_answer(&run, &approver_id, state.clock.now()).map_err(|e| {
            UiError::new(
                StatusCode::FORBIDDEN,
                "You may not answer this request",
                e.to_string(),
            )
        })?;
        let comment = record::form_comment(form.get("comment").map(String::as_str));
        let user_agent = user_agent(&headers);
        let (outcome, after) = record::record_answer(
            &state,
            Answer {
                workspace: &ws,
                run_id: &run_id,
                approver_id: &approver_id,
                decision,
                channel: "dashboard",
                comment,
                client_addr,
                user_agent,
            },
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, run = %run_id, "dashboard answer not recorded");
            UiError::new(e.status(), "Your answer was not recorded", e.to_string())
        })?;
        let code = match (outcome, after.governance_status) {
            (Outcome::Duplicate, _) => "duplicate",
            (Outcome::AlreadyDecided, _) => "decided",
            (Outcome::Recorded, GovernanceStatus::Approved) => "approved",
            (Outcome::Recorded, GovernanceStatus::Rejected) => "rejected",
            (Outcome::Recorded, _) if decision == AnswerDecision::Approve => "approved_waiting",
            (Outcome::Recorded, _) => "rejected",
        };
        Ok(see_other(&format!(
            "/ui/inbox?answered={code}&run={run_id}"
        )))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
