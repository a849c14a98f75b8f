//! What `countersign replay` found, and how it is printed: text for a
//! terminal, JSON for tools, markdown for a pull request. Everything is
//! sorted (most runs first, then by name), so the same history and policies
//! always print the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use clap::ValueEnum;
use serde::Serialize;

/// Output formats of `countersign replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    /// For a terminal.
    Text,
    /// One JSON object.
    Json,
    /// A summary to paste into a pull request.
    Markdown,
}

/// Why the new policy decided what it decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A rule matched.
    Rule,
    /// A rule's condition could not be evaluated (its `on_error` applied).
    Error,
    /// No rule matched: the action's default.
    Default,
    /// No policy declares the action.
    Undeclared,
}

/// Runs that go from one decision to another.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    /// The recorded decision.
    pub from: String,
    /// The decision now.
    pub to: String,
    /// The rule that decides now.
    pub rule: Option<String>,
    /// Why.
    pub cause: Cause,
    /// How many runs.
    pub runs: u64,
    /// The first run ids, in log order.
    pub sample: Vec<String>,
}

/// An approver group and quorum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Requirement {
    /// The group.
    pub group: Option<String>,
    /// The quorum.
    pub quorum: Option<u64>,
}

/// Runs that still need approval, from someone else or from more people.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalChange {
    /// As recorded.
    pub from: Requirement,
    /// As the new policy asks.
    pub to: Requirement,
    /// The rule that sets the new requirement (none: the action's default).
    pub rule: Option<String>,
    /// How many runs.
    pub runs: u64,
    /// The first run ids, in log order.
    pub sample: Vec<String>,
}

/// Runs on which a rule's condition now fails to evaluate.
#[derive(Debug, Clone, Serialize)]
pub struct NewError {
    /// The action.
    pub action: String,
    /// The rule.
    pub rule: String,
    /// Whether it is a shadow rule (it then changes no decision).
    pub shadow: bool,
    /// The message on the first such run.
    pub message: String,
    /// How many runs.
    pub runs: u64,
    /// The first run ids, in log order.
    pub sample: Vec<String>,
}

/// Runs of an action the new policy no longer declares.
#[derive(Debug, Clone, Serialize)]
pub struct RemovedAction {
    /// The action.
    pub action: String,
    /// How many runs.
    pub runs: u64,
    /// The first run ids, in log order.
    pub sample: Vec<String>,
}

/// The selection replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Runs created at or after (RFC 3339).
    pub from: Option<String>,
    /// Runs created before (RFC 3339).
    pub to: Option<String>,
    /// Only this action.
    pub action: Option<String>,
}

/// The whole replay.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The workspace.
    pub workspace: String,
    /// The store, password masked.
    pub store: String,
    /// The new policy set's version.
    pub policy_version: String,
    /// The last log position read (taken at the start).
    pub high_water_mark: u64,
    /// The selection.
    pub window: Window,
    /// Runs re-decided.
    pub runs_replayed: u64,
    /// Runs with at least one change.
    pub runs_changed: u64,
    /// Runs per recorded policy version.
    pub decided_by: BTreeMap<String, u64>,
    /// Decision changes.
    pub transitions: Vec<Transition>,
    /// Approval requirement changes (still require_approval).
    pub approval_changes: Vec<ApprovalChange>,
    /// Conditions that now fail to evaluate.
    pub new_errors: Vec<NewError>,
    /// Actions no longer declared.
    pub removed_actions: Vec<RemovedAction>,
    /// Aggregates (limits over time) the new policy reads that some
    /// replayed runs have no recorded value for (an aggregate this change
    /// introduces, or runs decided before it existed). Replay does not
    /// recompute them from the history yet: in those runs they fail, so
    /// `on_error` applies, and the report names them here.
    pub aggregates_not_recorded: Vec<String>,
}

fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

fn requirement(r: &Requirement) -> String {
    match (&r.group, r.quorum) {
        (Some(g), Some(q)) => format!("{g}, quorum {q}"),
        (Some(g), None) => g.clone(),
        (None, Some(q)) => format!("quorum {q}"),
        (None, None) => "nobody".to_owned(),
    }
}

fn because(t: &Transition) -> String {
    match (t.cause, &t.rule) {
        (Cause::Rule, Some(r)) => format!("rule {r}"),
        (Cause::Error, Some(r)) => format!("rule {r} failed to evaluate (on_error)"),
        (Cause::Default, _) => "no rule matched (the action's default)".to_owned(),
        (Cause::Undeclared, _) => "the action is not declared".to_owned(),
        (_, None) => "no rule".to_owned(),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Report {
    /// The report in `format`, ending with a newline.
    pub fn render(&self, format: ReplayFormat) -> String {
        match format {
            ReplayFormat::Text => self.text(),
            ReplayFormat::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned());
                s.push('\n');
                s
            }
            ReplayFormat::Markdown => self.markdown(),
        }
    }

    fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "replayed {} run{} of workspace `{}` ({}, up to log position {}) with policy version {}",
            self.runs_replayed,
            plural(self.runs_replayed),
            self.workspace,
            self.store,
            self.high_water_mark,
            short(&self.policy_version)
        );
        if self.runs_changed == 0 {
            o.push_str("no run would be decided differently\n");
            return o;
        }
        let _ = writeln!(
            o,
            "{} run{} would be decided differently",
            self.runs_changed,
            plural(self.runs_changed)
        );
        if !self.transitions.is_empty() {
            o.push_str("\ndecisions:\n");
            for t in &self.transitions {
                let _ = writeln!(
                    o,
                    "  {} → {}: {} run{}, {}",
                    t.from,
                    t.to,
                    t.runs,
                    plural(t.runs),
                    because(t)
                );
                let _ = writeln!(o, "    e.g. {}", t.sample.join(", "));
            }
        }
        if !self.approval_changes.is_empty() {
            o.push_str("\napproval requirements:\n");
            for a in &self.approval_changes {
                let _ = writeln!(
                    o,
                    "  require_approval ({}) → require_approval ({}): {} run{}{}",
                    requirement(&a.from),
                    requirement(&a.to),
                    a.runs,
                    plural(a.runs),
                    a.rule
                        .as_ref()
                        .map_or(String::new(), |r| format!(", rule {r}"))
                );
                let _ = writeln!(o, "    e.g. {}", a.sample.join(", "));
            }
        }
        if !self.new_errors.is_empty() {
            o.push_str("\nnew evaluation errors:\n");
            for e in &self.new_errors {
                let _ = writeln!(
                    o,
                    "  {} / {}{}: {} run{}: {}",
                    e.action,
                    e.rule,
                    if e.shadow { " (shadow)" } else { "" },
                    e.runs,
                    plural(e.runs),
                    e.message
                );
                let _ = writeln!(o, "    e.g. {}", e.sample.join(", "));
            }
        }
        if !self.removed_actions.is_empty() {
            o.push_str("\nactions no longer declared (now blocked):\n");
            for r in &self.removed_actions {
                let _ = writeln!(o, "  {}: {} run{}", r.action, r.runs, plural(r.runs));
                let _ = writeln!(o, "    e.g. {}", r.sample.join(", "));
            }
        }
        o
    }

    fn markdown(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let ids = |v: &[String]| {
            v.iter()
                .map(|id| format!("`{}`", cell(id)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut o = String::new();
        let _ = writeln!(
            o,
            "### Countersign replay: {} of {} run{} would change\n",
            self.runs_changed,
            self.runs_replayed,
            plural(self.runs_replayed)
        );
        let _ = writeln!(
            o,
            "Policy version `{}` replayed over workspace `{}`, up to log position {}.\n",
            short(&self.policy_version),
            cell(&self.workspace),
            self.high_water_mark
        );
        if self.runs_changed == 0 {
            o.push_str("No run would be decided differently.\n");
            return o;
        }
        if !self.transitions.is_empty() {
            o.push_str("| Before | After | Why | Runs | Sample |\n|---|---|---|---:|---|\n");
            for t in &self.transitions {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} |",
                    t.from,
                    t.to,
                    cell(&because(t)),
                    t.runs,
                    ids(&t.sample)
                );
            }
            o.push('\n');
        }
        if !self.approval_changes.is_empty() {
            o.push_str("#### Approval requirement changes\n\n| Before | After | Rule | Runs | Sample |\n|---|---|---|---:|---|\n");
            for a in &self.approval_changes {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} |",
                    cell(&requirement(&a.from)),
                    cell(&requirement(&a.to)),
                    cell(a.rule.as_deref().unwrap_or("(default)")),
                    a.runs,
                    ids(&a.sample)
                );
            }
            o.push('\n');
        }
        if !self.new_errors.is_empty() {
            o.push_str("#### New evaluation errors\n\n| Action | Rule | Error | Runs | Sample |\n|---|---|---|---:|---|\n");
            for e in &self.new_errors {
                let _ = writeln!(
                    o,
                    "| {} | {}{} | {} | {} | {} |",
                    cell(&e.action),
                    cell(&e.rule),
                    if e.shadow { " (shadow)" } else { "" },
                    cell(&e.message),
                    e.runs,
                    ids(&e.sample)
                );
            }
            o.push('\n');
        }
        if !self.removed_actions.is_empty() {
            o.push_str("#### Actions no longer declared (now blocked)\n\n| Action | Runs | Sample |\n|---|---:|---|\n");
            for r in &self.removed_actions {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} |",
                    cell(&r.action),
                    r.runs,
                    ids(&r.sample)
                );
            }
            o.push('\n');
        }
        o
    }
}
