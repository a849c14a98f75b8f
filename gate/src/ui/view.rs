//! View models shared by the dashboard's templates: the page chrome and a
//! run as a table row.

use chrono::{DateTime, Utc};
use countersign_store::{ExecutionStatus, GovernanceStatus, Run};
use serde::Serialize;

pub use crate::http::text::reveal;

/// One link of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Target.
    pub href: String,
    /// Text.
    pub label: &'static str,
    /// The current page.
    pub active: bool,
}

/// What every page's frame shows: title, navigation, who is signed in.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The page title.
    pub title: String,
    /// Navigation links.
    pub nav: Vec<NavLink>,
    /// Who is signed in, for the header.
    pub who: Option<String>,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: String,
    /// The workspace shown, if any.
    pub workspace: Option<String>,
    /// Other workspaces the viewer may switch to.
    pub other_workspaces: Vec<String>,
    /// A read-only share view.
    pub shared: bool,
}

impl Chrome {
    /// A frame with a title and nothing else (sign-in and error pages).
    pub fn bare(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            ..Self::default()
        }
    }
}

/// The tabs of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// The overview.
    Overview,
    /// The runs table and run pages.
    Runs,
    /// The approvals inbox.
    Inbox,
    /// The policies.
    Policies,
    /// Share links (admins).
    Share,
}

/// Human text for a governance status.
pub fn governance_label(s: GovernanceStatus) -> &'static str {
    match s {
        GovernanceStatus::Allowed => "allowed",
        GovernanceStatus::PendingApproval => "pending approval",
        GovernanceStatus::Blocked => "blocked",
        GovernanceStatus::Approved => "approved",
        GovernanceStatus::Rejected => "rejected",
        GovernanceStatus::Expired => "expired",
    }
}

/// Human text for an execution status.
pub fn execution_label(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::NotExecuted => "not executed",
        ExecutionStatus::AwaitingExecution => "awaiting execution",
        ExecutionStatus::Executed => "executed",
        ExecutionStatus::Failed => "failed",
    }
}

/// The colour class of a status badge: good, wait, bad or muted.
pub fn tone(status: &str) -> &'static str {
    match status {
        "allowed" | "approved" | "executed" => "good",
        "pending_approval" | "awaiting_execution" => "wait",
        "blocked" | "rejected" | "expired" | "failed" => "bad",
        _ => "muted",
    }
}

/// How long ago, briefly ("42s", "5m", "3h", "2d").
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// A timestamp as shown: `2026-11-21 18:50:59 UTC`.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A run as one row of a runs table (also sent by the live stream).
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// Link to the run (detail page, or receipt in a share view).
    pub href: String,
    /// Action name.
    pub action: String,
    /// Who proposed it.
    pub actor: String,
    /// The deciding rule.
    pub rule: String,
    /// Raw governance status.
    pub governance_status: &'static str,
    /// Its label.
    pub governance_label: &'static str,
    /// Its badge tone.
    pub governance_tone: &'static str,
    /// Raw execution status.
    pub execution_status: &'static str,
    /// Its label.
    pub execution_label: &'static str,
    /// Its badge tone.
    pub execution_tone: &'static str,
    /// Age at render time.
    pub age: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

impl RunRow {
    /// The row of `run`, linking to `href`.
    pub fn new(run: &Run, href: String, now: DateTime<Utc>) -> Self {
        let g = run.governance_status;
        let e = run.execution_status;
        Self {
            run_id: run.proposal.run_id.clone(),
            href,
            action: reveal(&run.proposal.action),
            actor: run
                .proposal
                .actor
                .as_deref()
                .map_or_else(|| "—".to_owned(), reveal),
            rule: run
                .proposal
                .decision
                .rule
                .as_deref()
                .map_or_else(|| "—".to_owned(), reveal),
            governance_status: g.as_str(),
            governance_label: governance_label(g),
            governance_tone: tone(g.as_str()),
            execution_status: e.as_str(),
            execution_label: execution_label(e),
            execution_tone: tone(e.as_str()),
            age: age(run.proposal.created_at, now),
            created_at: countersign_store::format_ts(run.proposal.created_at),
        }
    }
}

/// [`reveal`] for an optional field.
pub fn reveal_opt(s: Option<&str>) -> Option<String> {
    s.map(reveal)
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failing test")]
    use super::*;

    #[test]
    fn ages_are_brief() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let at = |s: i64| DateTime::from_timestamp(1_000_000 - s, 0).unwrap();
        assert_eq!(age(at(5), now), "5s");
        assert_eq!(age(at(125), now), "2m");
        assert_eq!(age(at(7200), now), "2h");
        assert_eq!(age(at(3 * 86_400), now), "3d");
        assert_eq!(age(at(-10), now), "0s", "a clock skew never shows negative");
    }

    #[test]
    fn tones_cover_every_status() {
        for s in GovernanceStatus::ALL {
            assert_ne!(tone(s.as_str()), "muted", "{s}");
        }
        for s in ExecutionStatus::ALL {
            if *s != ExecutionStatus::NotExecuted {
                assert_ne!(tone(s.as_str()), "muted", "{s}");
            }
        }
    }

    #[test]
    fn path_values_are_encoded() {
        assert_eq!(enc("a b/c?d"), "a+b%2Fc%3Fd");
    }
}
