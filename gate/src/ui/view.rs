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
    /// No tab (error pages).
    None,
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
    /// Creation time as shown (`2026-11-21 18:50:59 UTC`).
    pub created_abs: String,
    /// The run id, shortened for the table (`run_…9f3a1c2e`).
    pub short_id: String,
    /// The request's title (`summary:` template or the action's
    /// description), when the policy gives one.
    pub title: Option<String>,
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
            created_abs: when(run.proposal.created_at),
            short_id: short_id(&run.proposal.run_id),
            title: None,
        }
    }

    /// The same row with the run's title under `policies`.
    #[must_use]
    pub fn titled(mut self, policies: &countersign_engine::PolicySet, run: &Run) -> Self {
        self.title = crate::title::run_title(policies, run).map(|t| reveal(&t));
        self
    }
}

/// A run id shortened for tables: generated ids (`run_` and 32 hex digits,
/// time first) keep their prefix and their last 8 digits, which differ
/// between runs; other ids of up to 16 characters are kept whole.
pub fn short_id(id: &str) -> String {
    if id.chars().count() <= 16 {
        return id.to_owned();
    }
    let tail: String = id
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head = if id.starts_with("run_") { "run_" } else { "" };
    format!("{head}…{tail}")
}

/// How long until `then`, briefly ("in 23 h", "in 5 min"), or "overdue".
pub fn until(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (then - now).num_seconds();
    match secs {
        ..=0 => "overdue".to_owned(),
        1..60 => format!("in {secs} s"),
        60..3600 => format!("in {} min", secs / 60),
        3600..172_800 => format!("in {} h", secs / 3600),
        _ => format!("in {} days", secs / 86_400),
    }
}

/// How long ago, in words for a sentence ("5 min ago", "3 h ago").
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// One field of a payload, flattened for a key/value table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadField {
    /// Dotted path (`customer.name`, `items.0`).
    pub path: String,
    /// The value as text (strings without quotes).
    pub value: String,
    /// The deciding rule reads this field.
    pub read: bool,
}

/// The most payload fields listed before "and N more".
pub const MAX_FIELDS: usize = 40;

/// A payload as key/value rows (nested objects and lists flattened into
/// dotted paths, at most [`MAX_FIELDS`]), each marked when one of `read`
/// (paths the deciding rule reads) is the field, inside it or around it;
/// and how many fields were left out.
pub fn payload_fields(payload_json: &str, read: &[String]) -> (Vec<PayloadField>, usize) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(payload_json) else {
        return (Vec::new(), 0);
    };
    let mut out = Vec::new();
    let mut more = 0;
    flatten(&v, String::new(), &mut out, &mut more, 0);
    for f in &mut out {
        f.read = read.iter().any(|p| {
            *p == f.path
                || f.path.starts_with(&format!("{p}."))
                || p.starts_with(&format!("{}.", f.path))
        });
        f.path = reveal(&f.path);
        f.value = reveal(&crate::http::summarize_text(&f.value, 300));
    }
    (out, more)
}

fn flatten(
    v: &serde_json::Value,
    path: String,
    out: &mut Vec<PayloadField>,
    more: &mut usize,
    depth: usize,
) {
    let child = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        serde_json::Value::Object(m) if !m.is_empty() && depth < 8 => {
            for (k, x) in m {
                flatten(x, child(k), out, more, depth + 1);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() && depth < 8 => {
            for (i, x) in items.iter().enumerate() {
                flatten(x, child(&i.to_string()), out, more, depth + 1);
            }
        }
        _ if out.len() >= MAX_FIELDS => *more += 1,
        serde_json::Value::String(s) => out.push(PayloadField {
            path: if path.is_empty() {
                "(value)".to_owned()
            } else {
                path
            },
            value: s.clone(),
            read: false,
        }),
        other => out.push(PayloadField {
            path: if path.is_empty() {
                "(value)".to_owned()
            } else {
                path
            },
            value: other.to_string(),
            read: false,
        }),
    }
}

/// A JSON text pretty-printed for a `<pre>`, cut at `max` characters.
pub fn pretty_json(json: &str, max: usize) -> String {
    let text = serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| json.to_owned());
    reveal(&crate::http::summarize_text(&text, max))
}

/// The CSS class of a risk badge: `risk-low` … `risk-critical`, or `risk-other`.
pub fn risk_class(risk: &str) -> &'static str {
    match risk.trim().to_ascii_lowercase().as_str() {
        "low" => "risk-low",
        "medium" => "risk-medium",
        "high" => "risk-high",
        "critical" => "risk-critical",
        _ => "risk-other",
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
    fn relative_times_read_as_words() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let at = |s: i64| DateTime::from_timestamp(1_000_000 + s, 0).unwrap();
        assert_eq!(until(at(23 * 3600 + 59), now), "in 23 h");
        assert_eq!(until(at(300), now), "in 5 min");
        assert_eq!(until(at(3 * 86_400), now), "in 3 days");
        assert_eq!(until(at(-5), now), "overdue");
        assert_eq!(ago(at(-7200), now), "2 h ago");
        assert_eq!(ago(at(-10), now), "just now");
    }

    #[test]
    fn run_ids_are_shortened_to_their_distinct_end() {
        assert_eq!(
            short_id("run_0193a6f2c1d07e3b9a4c5d6e7f801234"),
            "run_…7f801234"
        );
        assert_eq!(short_id("my_run_1"), "my_run_1");
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
    fn payloads_flatten_and_mark_what_the_rule_reads() {
        let (rows, more) = payload_fields(
            r#"{"amount": 250, "customer": {"name": "Ada", "tier": "gold"}, "items": ["a"], "note": "x"}"#,
            &[
                "amount".to_owned(),
                "customer".to_owned(),
                "items.0.sku".to_owned(),
            ],
        );
        assert_eq!(more, 0);
        let got: Vec<(&str, &str, bool)> = rows
            .iter()
            .map(|r| (r.path.as_str(), r.value.as_str(), r.read))
            .collect();
        assert_eq!(
            got,
            [
                ("amount", "250", true),
                ("customer.name", "Ada", true),
                ("customer.tier", "gold", true),
                ("items.0", "a", true),
                ("note", "x", false),
            ]
        );
        let big: String = format!(
            "{{{}}}",
            (0..60)
                .map(|i| format!("\"k{i:02}\": {i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let (rows, more) = payload_fields(&big, &[]);
        assert_eq!((rows.len(), more), (MAX_FIELDS, 20));
    }

    #[test]
    fn path_values_are_encoded() {
        assert_eq!(enc("a b/c?d"), "a+b%2Fc%3Fd");
    }
}
