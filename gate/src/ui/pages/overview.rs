//! The overview page: a workspace's runs per day and what waits.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use countersign_store::{ExecutionStatus, GovernanceStatus, Run, RunFilter};

use super::common::respond;
use crate::state::AppState;
use crate::ui::render::{UiError, page};
use crate::ui::session::{self};
use crate::ui::view::{Chrome, Tab, ago, reveal, until, when};

/// One day's bar of the chart.
pub struct Bar {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Label under the bar (empty where labels would crowd).
    pub label: String,
    /// x of the bar's left edge.
    pub x: u32,
    /// x of the bar's centre (labels).
    pub cx: u32,
    /// Segments bottom-up: (class, y, height, count).
    pub segments: Vec<(&'static str, u32, u32, u64)>,
    /// Runs that day.
    pub total: u64,
    /// y of the value written above the bar.
    pub value_y: u32,
    /// Write the value above the bar.
    pub show_value: bool,
}

/// A horizontal grid line of the chart: its y and the count it marks.
pub struct Tick {
    /// y in the chart.
    pub y: u32,
    /// Runs at that height.
    pub value: u64,
}

/// A line of the "needs attention" list.
pub struct Attention {
    /// Link to the run.
    pub href: String,
    /// Title or action.
    pub title: String,
    /// Action name.
    pub action: String,
    /// Badge text.
    pub badge: &'static str,
    /// Badge tone.
    pub tone: &'static str,
    /// "expires in 3 h", "2 h ago".
    pub when: String,
    /// Absolute time (hover).
    pub at: String,
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
    ticks: Vec<Tick>,
    bar_width: u32,
    max_total: u64,
    pending_list: Vec<Attention>,
    problem_list: Vec<Attention>,
    policy_version: String,
    reload_error: bool,
}

/// The chart's drawing, in SVG units: width, plot top and bottom, and
/// the left margin for the y axis labels.
const CHART_W: u32 = 720;
const PLOT_TOP: u32 = 18;
const PLOT_BOTTOM: u32 = 170;
const PLOT_LEFT: u32 = 34;
/// Entries per "needs attention" list.
const ATTENTION: usize = 5;

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
            let policies = workspace.policies();
            let (pending_list, problem_list) = attention(&state, &ws, &policies, now).await?;
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
                ticks: Vec::new(),
                bar_width: 0,
                max_total: 0,
                pending_list,
                problem_list,
                policy_version: policies.version().to_owned(),
                reload_error: workspace.last_error().is_some(),
            };
            // Per day, by what happened: [executed fine or waiting to run,
            // pending, blocked, rejected or expired, failed].
            let mut per_day: BTreeMap<String, [u64; 5]> = BTreeMap::new();
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
                let slot = if r.execution_status == ExecutionStatus::Failed {
                    4
                } else {
                    match r.governance_status {
                        GovernanceStatus::Allowed | GovernanceStatus::Approved => 0,
                        GovernanceStatus::PendingApproval => 1,
                        GovernanceStatus::Blocked => 2,
                        GovernanceStatus::Rejected | GovernanceStatus::Expired => 3,
                    }
                };
                e[slot] += r.count;
            }
            p.max_total = per_day.values().map(|c| c.iter().sum()).max().unwrap_or(0);
            // The y axis tops out at a round number at or above the busiest day.
            let top = nice_ceiling(p.max_total);
            let plot_h = PLOT_BOTTOM - PLOT_TOP;
            let y_of = |v: u64| {
                PLOT_BOTTOM - u32::try_from(v * u64::from(plot_h) / top.max(1)).unwrap_or(plot_h)
            };
            p.ticks = [0, top / 2, top]
                .into_iter()
                .map(|v| Tick {
                    y: y_of(v),
                    value: v,
                })
                .collect();
            let n = u32::try_from(days).unwrap_or(1).max(1);
            let slot_w = (CHART_W - PLOT_LEFT) / n;
            p.bar_width = (slot_w * 7 / 10).max(2);
            let label_every = match days {
                ..=7 => 1,
                8..=30 => 5,
                _ => 15,
            };
            let mut day = first;
            let mut i: u32 = 0;
            while day <= today {
                let key = day.format("%Y-%m-%d").to_string();
                let counts = per_day.get(&key).copied().unwrap_or_default();
                let total: u64 = counts.iter().sum();
                let x = PLOT_LEFT + i * slot_w + (slot_w - p.bar_width) / 2;
                let mut segments = Vec::new();
                let mut acc = 0;
                for (class, count) in ["ok", "wait", "blocked", "refused", "failed"]
                    .into_iter()
                    .zip(counts)
                {
                    if count == 0 {
                        continue;
                    }
                    let y_top = y_of(acc + count);
                    let y_bottom = y_of(acc);
                    segments.push((class, y_top, (y_bottom - y_top).max(1), count));
                    acc += count;
                }
                let from_end = (today - day).num_days();
                p.bars.push(Bar {
                    label: if from_end % label_every == 0 {
                        short_day(day, days)
                    } else {
                        String::new()
                    },
                    day: key,
                    x,
                    cx: x + p.bar_width / 2,
                    segments,
                    total,
                    value_y: y_of(total).saturating_sub(4),
                    show_value: total > 0 && days <= 31,
                });
                i += 1;
                day = match day.succ_opt() {
                    Some(d) => d,
                    None => break,
                };
            }
            Ok(page(StatusCode::OK, &p))
        }
        .await,
    )
}

/// The smallest of 1, 2, 5, 10, 20, 50 … at or above `n` (at least 2, so
/// the middle grid line is a whole number).
fn nice_ceiling(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m);
            if v >= n.max(2) {
                return v;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// What needs someone's attention: the pending runs closest to expiring,
/// and the latest failures and blocks.
async fn attention(
    state: &AppState,
    ws: &str,
    policies: &countersign_engine::PolicySet,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<Attention>, Vec<Attention>), UiError> {
    let list = |f: RunFilter| async move { state.store.list_runs(ws, f).await };
    let title = |r: &Run| {
        reveal(&crate::title::run_title(policies, r).unwrap_or_else(|| r.proposal.action.clone()))
    };
    let href = |r: &Run| format!("/ui/w/{ws}/runs/{}", r.proposal.run_id);
    let mut pending = list(RunFilter {
        governance_status: Some(GovernanceStatus::PendingApproval),
        limit: Some(RunFilter::MAX_LIMIT),
        ..RunFilter::default()
    })
    .await?
    .runs;
    let expiry = |r: &Run| {
        r.proposal
            .approval
            .as_ref()
            .map_or(r.proposal.created_at, |a| a.expires_at)
    };
    pending.sort_by_key(expiry);
    let pending_list = pending
        .iter()
        .take(ATTENTION)
        .map(|r| Attention {
            href: href(r),
            title: title(r),
            action: reveal(&r.proposal.action),
            badge: "pending",
            tone: "wait",
            when: format!("expires {}", until(expiry(r), now)),
            at: when(expiry(r)),
        })
        .collect();
    let failed = list(RunFilter {
        execution_status: Some(ExecutionStatus::Failed),
        limit: Some(ATTENTION as u32),
        ..RunFilter::default()
    })
    .await?
    .runs;
    let blocked = list(RunFilter {
        governance_status: Some(GovernanceStatus::Blocked),
        limit: Some(ATTENTION as u32),
        ..RunFilter::default()
    })
    .await?
    .runs;
    let mut problems: Vec<(&Run, &'static str, &'static str)> = failed
        .iter()
        .map(|r| (r, "failed", "fail"))
        .chain(blocked.iter().map(|r| (r, "blocked", "bad")))
        .collect();
    problems.sort_by_key(|p| std::cmp::Reverse(p.0.updated_at));
    let problem_list = problems
        .into_iter()
        .take(ATTENTION)
        .map(|(r, badge, tone)| Attention {
            href: href(r),
            title: title(r),
            action: reveal(&r.proposal.action),
            badge,
            tone,
            when: ago(r.updated_at, now),
            at: when(r.updated_at),
        })
        .collect();
    Ok((pending_list, problem_list))
}

fn short_day(day: NaiveDate, period: i64) -> String {
    if period <= 7 {
        day.format("%a %d").to_string()
    } else {
        day.format("%d %b").to_string()
    }
}
