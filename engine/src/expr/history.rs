//! The vocabulary of aggregates over past runs (`count(…)`, `sum(…)`): which
//! field of a past run, which runs count, how long a window, and the values
//! the caller hands the engine. Plain data: it depends on nothing else in
//! `expr`, so the program, the compiler and the evaluator can all use it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::value::Value;

/// The longest window an aggregate may look back: 366 days.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);

/// The part of a past run a field is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunRoot {
    /// `run.payload…`
    Payload,
    /// `run.actor`
    Actor,
    /// `run.source…`
    Source,
}

impl RunRoot {
    /// The name after `run.`.
    pub fn name(self) -> &'static str {
        match self {
            RunRoot::Payload => "payload",
            RunRoot::Actor => "actor",
            RunRoot::Source => "source",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<RunRoot> {
        [RunRoot::Payload, RunRoot::Actor, RunRoot::Source]
            .into_iter()
            .find(|r| r.name() == name)
    }
}

/// A field of a past run: `run.payload.customer.id` is root `Payload` and
/// steps `["customer", "id"]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunField {
    /// Where the path starts.
    pub root: RunRoot,
    /// Object keys below the root, in order.
    pub steps: Vec<String>,
}

impl RunField {
    /// Reads the field from a past run's values; `None` when a step is
    /// missing or reads into something that is not an object.
    pub fn read<'v>(
        &self,
        payload: &'v Value,
        actor: &'v Value,
        source: &'v Value,
    ) -> Option<&'v Value> {
        let mut v = match self.root {
            RunRoot::Payload => payload,
            RunRoot::Actor => actor,
            RunRoot::Source => source,
        };
        for step in &self.steps {
            v = v.as_object()?.get(step)?;
        }
        Some(v)
    }

    /// The spelling in expressions: `run.payload.customer_id`.
    pub fn text(&self) -> String {
        let mut out = format!("run.{}", self.root.name());
        for s in &self.steps {
            out.push('.');
            out.push_str(s);
        }
        out
    }
}

/// A state a past run can be in, as `status:` names it. A run is in one
/// governance state (`pending`, `allowed`, `approved`, `blocked`,
/// `rejected`, `expired`) and, once the agent reports it, also `executed` or
/// `failed`; it counts when any of its states is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunStatus {
    /// Waiting for approvers.
    Pending,
    /// Allowed by the policy.
    Allowed,
    /// Approved by its approvers.
    Approved,
    /// Reported executed.
    Executed,
    /// Reported failed.
    Failed,
    /// Blocked by the policy.
    Blocked,
    /// Rejected by an approver.
    Rejected,
    /// Expired without a decision.
    Expired,
}

impl RunStatus {
    /// Every status, in a fixed order.
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Pending,
        RunStatus::Allowed,
        RunStatus::Approved,
        RunStatus::Executed,
        RunStatus::Failed,
        RunStatus::Blocked,
        RunStatus::Rejected,
        RunStatus::Expired,
    ];

    /// What counts when `status:` is not given: every run that was let
    /// through or may still be (pending, allowed, approved, and so the
    /// executed and failed ones too); refused runs do not count.
    pub const DEFAULT: [RunStatus; 3] =
        [RunStatus::Pending, RunStatus::Allowed, RunStatus::Approved];

    /// The name used in `status:`.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Allowed => "allowed",
            RunStatus::Approved => "approved",
            RunStatus::Executed => "executed",
            RunStatus::Failed => "failed",
            RunStatus::Blocked => "blocked",
            RunStatus::Rejected => "rejected",
            RunStatus::Expired => "expired",
        }
    }

    /// The status of that name.
    pub fn from_name(name: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A past run as an aggregate sees it: what [`crate::AggregateSpec::scan`]
/// (the reference model that scans a whole history) reads.
#[derive(Debug, Clone, PartialEq)]
pub struct PastRun {
    /// Its action.
    pub action: String,
    /// Who proposed it (null when unknown).
    pub actor: Value,
    /// Its payload.
    pub payload: Value,
    /// Its source (null when unknown).
    pub source: Value,
    /// When it was proposed.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Its states now (one governance state, plus `executed` or `failed`
    /// once reported).
    pub statuses: Vec<RunStatus>,
}

/// What an aggregate computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateKind {
    /// `count(…)`: how many runs.
    Count,
    /// `sum(run.payload.x, …)`: the exact decimal sum of a number field.
    Sum(RunField),
}

/// Parses a window: a whole number of `s`, `m`, `h`, `d` or `w`, possibly
/// several (`1d12h`). `None` when malformed or zero.
pub(crate) fn parse_window(text: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !digits.is_empty() || total == 0 {
        return None;
    }
    Some(Duration::from_secs(total))
}

/// The key an aggregate is known by: its text with every run of whitespace
/// made one space, so a condition folded over lines in YAML and the same
/// text on one line in a test file name the same aggregate.
pub fn aggregate_key(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The values of a request's aggregates, which the caller computes (the
/// gate from its store, a policy test from its `aggregates:`) and hands to
/// the engine. Keyed by [`aggregate_key`] of the aggregate's text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates {
    values: BTreeMap<String, Result<Value, String>>,
}

impl Aggregates {
    /// No values: every aggregate fails to evaluate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value of the aggregate written `text`.
    pub fn insert(&mut self, text: &str, value: Value) {
        self.values.insert(aggregate_key(text), Ok(value));
    }

    /// Records that the aggregate written `text` could not be computed;
    /// conditions reading it fail with `message` (and `on_error` applies).
    pub fn insert_error(&mut self, text: &str, message: impl Into<String>) {
        self.values.insert(aggregate_key(text), Err(message.into()));
    }

    /// The value (or error) of the aggregate written `text`.
    pub fn get(&self, text: &str) -> Option<&Result<Value, String>> {
        self.values.get(&aggregate_key(text))
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Result<Value, String>)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Looks a key up without normalizing it (it already is).
    pub(crate) fn get_key(&self, key: &str) -> Option<&Result<Value, String>> {
        self.values.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_window("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_window("1d12h"), Some(Duration::from_secs(129_600)));
        assert_eq!(parse_window("30d"), Some(Duration::from_secs(2_592_000)));
        for bad in ["", "0h", "h", "24", "1.5h", "-1h", "24 h", "1y"] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_ignore_whitespace_runs() {
        assert_eq!(
            aggregate_key("count(within: \"24h\",\n   action: \"x\")"),
            "count(within: \"24h\", action: \"x\")"
        );
    }
}
