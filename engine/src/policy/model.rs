//! The loaded, validated policy set.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::summary::SummaryTemplate;
use crate::expr::CompiledExpr;
use crate::expr::cel::CelCondition;

/// The three possible outcomes, ordered from weakest to strongest: when
/// several rules match, the strongest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The action may run now.
    Allow,
    /// The action may run once its approvers agree.
    RequireApproval,
    /// The action must not run.
    Block,
}

impl Verdict {
    /// The spelling used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::RequireApproval => "require_approval",
            Verdict::Block => "block",
        }
    }

    /// Reads the spelling used in policy files.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Verdict::Allow),
            "require_approval" => Some(Verdict::RequireApproval),
            "block" => Some(Verdict::Block),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How risky an action is, as its policy declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

impl Risk {
    /// The spelling used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Risk::Low),
            "medium" => Some(Risk::Medium),
            "high" => Some(Risk::High),
            "critical" => Some(Risk::Critical),
            _ => None,
        }
    }
}

/// Whether a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The rule takes part in the decision.
    Enforce,
    /// The rule is evaluated and reported, but never changes the decision.
    Shadow,
}

/// Where something was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A person who may approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Stable identifier, compared with the request's actor to refuse
    /// self-approval.
    pub id: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address, for the email transport.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Slack user id, for the Slack transport.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack: Option<String>,
    /// The member's own Teams Workflows URL (a 1:1 chat), where personal
    /// approval links may be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teams: Option<String>,
}

/// A named group of approvers.
#[derive(Debug, Clone)]
pub struct ApproverGroup {
    /// The group's name.
    pub name: String,
    /// What the group is for.
    pub description: Option<String>,
    /// Its members.
    pub members: Vec<Member>,
    /// Distinct approvals needed.
    pub quorum: u32,
    /// How long a request waits before it expires.
    pub timeout: Duration,
    /// The group asked when this one has not answered in time.
    pub escalate_to: Option<String>,
    /// How long to wait before escalating.
    pub escalate_after: Option<Duration>,
    /// Where it was declared.
    pub origin: Origin,
}

/// The condition of a rule.
#[derive(Debug, Clone)]
pub enum Condition {
    /// No `when`: the rule always matches.
    Always,
    /// A `when:` expression in our language.
    Expr(CompiledExpr),
    /// A `when_cel:` expression.
    Cel(CelCondition),
}

impl Condition {
    /// The payload fields the condition reads, as dotted paths
    /// (`customer.name`), each once. For `when_cel:` they are read from the
    /// text (`payload.a.b` chains), which is enough to point a reader at
    /// the fields that matter.
    pub fn payload_paths(&self) -> Vec<String> {
        match self {
            Condition::Always => Vec::new(),
            Condition::Expr(e) => e.payload_paths().to_vec(),
            Condition::Cel(c) => {
                let mut out: Vec<String> = Vec::new();
                if let Some(re) = CEL_PATH.as_ref() {
                    for m in re.captures_iter(c.source()) {
                        if let Some(p) = m.get(1) {
                            let p = p.as_str().trim_start_matches('.').to_owned();
                            if !out.contains(&p) {
                                out.push(p);
                            }
                        }
                    }
                }
                out
            }
        }
    }
}

static CEL_PATH: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\bpayload((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").ok()
});

/// One rule of an action.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique within its action.
    pub name: String,
    /// What the rule is for.
    pub description: Option<String>,
    /// When it matches.
    pub condition: Condition,
    /// What it decides when it matches.
    pub decision: Verdict,
    /// The reason reported when this rule decides.
    pub reason: String,
    /// Overrides the approver group's quorum.
    pub quorum: Option<u32>,
    /// Overrides the action's approver group (index into the set's groups).
    pub(crate) approvers: Option<usize>,
    /// Enforced or shadow.
    pub mode: Mode,
    /// Where it was declared.
    pub origin: Origin,
}

/// One declared action.
#[derive(Debug, Clone)]
pub struct Action {
    /// The action's name, as agents send it.
    pub name: String,
    /// What the action does.
    pub description: Option<String>,
    /// The title approvers see for a request (`summary:`), if written.
    pub summary: Option<SummaryTemplate>,
    /// Declared risk.
    pub risk: Risk,
    pub(crate) approvers: Option<usize>,
    /// Its rules in file order.
    pub rules: Vec<Rule>,
    /// The decision when no rule matches (`block` if not given).
    pub default: Verdict,
    /// Whether `default:` was written.
    pub default_declared: bool,
    /// The decision of a rule whose condition cannot be evaluated.
    pub on_error: Verdict,
    /// Reason reported when no rule matched.
    pub(crate) default_reason: String,
    /// Where it was declared.
    pub origin: Origin,
}

/// A validated, compiled policy set: what the engine decides with.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(crate) actions: Vec<Action>,
    pub(crate) action_index: HashMap<String, usize>,
    pub(crate) groups: Vec<ApproverGroup>,
    pub(crate) group_index: HashMap<String, usize>,
    pub(crate) version: String,
    pub(crate) files: Vec<PathBuf>,
}

impl PolicySet {
    /// The policy version: SHA-256 (hex) of the canonical form of the set.
    /// Formatting, comments, file names and the order of actions, groups and
    /// files do not change it; any change of meaning does.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Declared actions, sorted by name.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// An action by name.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.action_index.get(name).map(|&i| &self.actions[i])
    }

    /// Approver groups, sorted by name.
    pub fn groups(&self) -> &[ApproverGroup] {
        &self.groups
    }

    /// An approver group by name.
    pub fn group(&self, name: &str) -> Option<&ApproverGroup> {
        self.group_index.get(name).map(|&i| &self.groups[i])
    }

    /// The policy files the set was loaded from, sorted.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The number of rules across all actions.
    pub fn rule_count(&self) -> usize {
        self.actions.iter().map(|a| a.rules.len()).sum()
    }

    /// The approver group of an action, if it has one.
    pub fn action_group(&self, action: &Action) -> Option<&ApproverGroup> {
        action.approvers.map(|i| &self.groups[i])
    }

    /// The approver group a rule names itself (`approvers:` on the rule),
    /// without falling back to its action's.
    pub fn rule_own_group(&self, rule: &Rule) -> Option<&ApproverGroup> {
        rule.approvers.map(|i| &self.groups[i])
    }

    /// The approver group a rule asks: its own, else its action's.
    pub fn rule_group(&self, action: &Action, rule: &Rule) -> Option<&ApproverGroup> {
        rule.approvers.or(action.approvers).map(|i| &self.groups[i])
    }
}

/// The default time an approval request waits.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The longest timeout a group may set.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 86_400);
/// Whether `name` is a valid action name: 1–128 characters of letters,
/// digits, `_`, `-`, `.` and `:`, starting with a letter or digit.
pub fn is_valid_action_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Formats a duration the way policy files write it (`24h`, `90m`, `1h30m`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    // Days only from two days up: people write `24h`, not `1d`.
    let units: &[(&str, u64)] = if secs >= 2 * 86_400 {
        &[("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
    } else {
        &[("h", 3_600), ("m", 60), ("s", 1)]
    };
    for &(unit, size) in units {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Parses `30s`, `15m`, `24h`, `7d` or combinations such as `1h30m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let size = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(size)?)?;
    }
    if !digits.is_empty() {
        return None;
    }
    Some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_as_people_write_them() {
        let d = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(d("30s"), Some(30));
        assert_eq!(d("15m"), Some(900));
        assert_eq!(d("24h"), Some(86_400));
        assert_eq!(d("7d"), Some(604_800));
        assert_eq!(d("1h30m"), Some(5_400));
        assert_eq!(d("2w"), Some(1_209_600));
        for bad in ["", "h", "10", "10x", "1.5h", "-1h", "99999999999999999999d"] {
            assert_eq!(d(bad), None, "{bad}");
        }
        let f = |s: u64| format_duration(Duration::from_secs(s));
        assert_eq!(f(86_400), "24h");
        assert_eq!(f(5_400), "1h30m");
        assert_eq!(f(3 * 86_400), "3d");
        assert_eq!(f(0), "0s");
    }
}
