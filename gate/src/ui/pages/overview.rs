//! The overview page: a workspace's runs per day and what waits.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use countersign_store::{ExecutionStatus, GovernanceStatus};

use super::common::respond;
use crate::state::AppState;
use crate::ui::render::{UiError, page};
use crate::ui::session::{self};
use crate::ui::view::{Chrome, Tab};

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
