//! The runs table, with its filters.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use countersign_store::{ExecutionStatus, GovernanceStatus, RunFilter};

use super::common::respond;
use crate::state::AppState;
use crate::ui::render::{UiError, page};
use crate::ui::session::{self};
use crate::ui::view::{Chrome, RunRow, Tab, enc, execution_label, governance_label};

/// The longest action or actor filter, in bytes; the form's fields have
/// this `maxlength`.
const MAX_FILTER: usize = 200;

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
    filtered: bool,
    live_url: String,
    max_filter: usize,
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
    if action.as_ref().is_some_and(|a| a.len() > MAX_FILTER)
        || actor.as_ref().is_some_and(|a| a.len() > MAX_FILTER)
    {
        return Err(UiError::bad_form(format!(
            "Filters are at most {MAX_FILTER} characters."
        )));
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
            let (s, workspace) = session::require_in(&state, &headers, &ws).await?;
            let policies = workspace.policies();
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
                .map(|r| {
                    RunRow::new(r, format!("/ui/w/{ws}/runs/{}", r.proposal.run_id), now)
                        .titled(&policies, r)
                })
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
                filtered: !query.is_empty(),
                live_url,
                max_filter: MAX_FILTER,
            };
            Ok(page(StatusCode::OK, &p))
        }
        .await,
    )
}
