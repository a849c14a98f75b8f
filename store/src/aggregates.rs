//! Limits over time: the index of past runs that aggregates (`count`, `sum`
//! in policy conditions) are answered from, as plain data the store
//! understands without knowing the policy language.
//!
//! The gate registers a [`SeriesSpec`] for each distinct aggregate shape it
//! needs: the runs of one action, grouped by the values of some of their
//! fields, with the amount of one field. From then on every new run of
//! that action gets one entry per series, in the transaction that creates
//! the run: its group key (the SHA-256 of the canonical JSON array of its
//! group values), its creation time and its amount. A run missing a group
//! field gets no entry (it equals no value). [`Store::prepare_series`]
//! builds the entries of the runs that existed before the series; the
//! entries are a projection of the runs (and so of the audit log): they can
//! be rebuilt from them at any time, and `audit verify` recomputes them.
//!
//! An [`AggregateQuery`] is answered inside the transaction that records
//! the decision ([`Store::create_run_deciding`]), from an index range scan
//! over the entries of one group in the window `(now - within, now]`
//! joined with the runs' current states: its cost grows with the runs that
//! match in the window, not with the history.
//!
//! [`Store::prepare_series`]: crate::Store::prepare_series
//! [`Store::create_run_deciding`]: crate::Store::create_run_deciding

use std::str::FromStr as _;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::to_canonical_json;
use crate::error::StoreError;
use crate::model::NewRun;

/// Runs whose entries one backfill step writes.
pub(crate) const BACKFILL_CHUNK: u32 = 2_000;

/// A field of a past run: `root` is `payload`, `actor` or `source`, and
/// `steps` the object keys below it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesField {
    /// `payload`, `actor` or `source`.
    pub root: String,
    /// Object keys below the root.
    pub steps: Vec<String>,
}

impl SeriesField {
    /// The spelling in conditions: `run.payload.customer_id`.
    pub fn text(&self) -> String {
        let mut out = format!("run.{}", self.root);
        for s in &self.steps {
            out.push('.');
            out.push_str(s);
        }
        out
    }

    fn read<'v>(&self, run: &'v RunFields) -> Option<&'v Value> {
        let mut v = match self.root.as_str() {
            "payload" => &run.payload,
            "actor" => &run.actor,
            "source" => &run.source,
            _ => return None,
        };
        for step in &self.steps {
            v = v.as_object()?.get(step)?;
        }
        Some(v)
    }
}

/// What one index of past runs holds: the runs of `action`, grouped by the
/// values of `group`, with the number at `amount` (for sums).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeriesSpec {
    /// The action whose runs are indexed.
    pub action: String,
    /// The fields whose values group the runs, in a fixed order.
    pub group: Vec<SeriesField>,
    /// The field summed, if any.
    pub amount: Option<SeriesField>,
}

impl SeriesSpec {
    /// The series' identity: the SHA-256 (hex) of its canonical JSON.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }

    pub(crate) fn canonical(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        to_canonical_json(&value)
    }

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError::Unavailable {
            message: format!("stored aggregate series is unreadable: {e}"),
        })
    }

    /// The entry of a run in this series: `None` when the run is of another
    /// action or misses a group field.
    pub(crate) fn entry(&self, run: &RunFields) -> Option<Entry> {
        if run.action != self.action {
            return None;
        }
        let mut values = Vec::with_capacity(self.group.len());
        for field in &self.group {
            values.push(field.read(run)?.clone());
        }
        let amount = self.amount.as_ref().and_then(|f| match f.read(run) {
            Some(Value::Number(_)) => f.read(run).map(to_canonical_json),
            _ => None,
        });
        Some(Entry {
            group_key: group_key(&values),
            amount,
        })
    }
}

/// A run's entry in a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) group_key: String,
    /// The canonical text of the amount; `None` when the series sums
    /// nothing, or the run's field is missing or not a number.
    pub(crate) amount: Option<String>,
}

/// The fields of a stored run an entry is computed from.
#[derive(Debug, Clone)]
pub(crate) struct RunFields {
    pub(crate) action: String,
    pub(crate) actor: Value,
    pub(crate) payload: Value,
    pub(crate) source: Value,
}

impl RunFields {
    /// From a run row's columns; an unreadable payload reads as null (its
    /// fields are then missing: the run gets no entry).
    pub(crate) fn from_row(
        action: &str,
        actor: Option<&str>,
        payload_json: &str,
        source_json: Option<&str>,
    ) -> Self {
        Self {
            action: action.to_owned(),
            actor: actor.map_or(Value::Null, |a| Value::String(a.to_owned())),
            payload: serde_json::from_str(payload_json).unwrap_or(Value::Null),
            source: source_json
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null),
        }
    }
}

impl RunFields {
    /// From a new run's proposal.
    pub(crate) fn from_proposal(p: &crate::model::Proposal) -> Self {
        Self {
            action: p.action.clone(),
            actor: p.actor.clone().map_or(Value::Null, Value::String),
            payload: serde_json::from_str(&p.payload_json).unwrap_or(Value::Null),
            source: p.source.clone().unwrap_or(Value::Null),
        }
    }
}

/// The group key of a list of values: SHA-256 (hex) of their canonical
/// JSON array, so equal values (`1.0` and `1`) share a key.
pub fn group_key(values: &[Value]) -> String {
    let text = to_canonical_json(&Value::Array(values.to_vec()));
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// One aggregate to compute for a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateQuery {
    /// The series to read (it must be prepared: see
    /// [`crate::Store::prepare_series`]).
    pub series: SeriesSpec,
    /// The values the group fields must equal, in the series' order.
    pub group_values: Vec<Value>,
    /// The window's length: runs created in `(now - within, now]` count.
    pub within: std::time::Duration,
    /// The states a run must be in (any of them): `pending`, `allowed`,
    /// `approved`, `executed`, `failed`, `blocked`, `rejected`, `expired`.
    pub statuses: Vec<String>,
}

/// The value of an [`AggregateQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AggregateValue {
    /// How many runs counted.
    pub count: u64,
    /// The exact decimal sum of their amounts (series with an amount only).
    pub sum: Option<String>,
}

/// What a query gives: its value, or why it cannot be computed (the caller
/// fails closed).
pub type AggregateResult = Result<AggregateValue, String>;

/// Builds the run to record from the values of the queries (in their
/// order). It runs inside the store's transaction, may run more than once
/// (a retried batch), and must not block.
pub type DecideRun = Arc<dyn Fn(&[AggregateResult]) -> Result<NewRun, StoreError> + Send + Sync>;

/// What [`crate::Store::prepare_series`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesReport {
    /// Series that were new and were built from history.
    pub built: u64,
    /// Runs read to build them.
    pub runs_read: u64,
}

/// The state names a run with these stored statuses is in.
pub(crate) fn run_states(governance: &str, execution: &str) -> [&'static str; 2] {
    let g = match governance {
        "pending_approval" => "pending",
        "allowed" => "allowed",
        "approved" => "approved",
        "blocked" => "blocked",
        "rejected" => "rejected",
        "expired" => "expired",
        _ => "",
    };
    let e = match execution {
        "executed" => "executed",
        "failed" => "failed",
        _ => "",
    };
    [g, e]
}

/// Adds up the entries that matched a query's group and window:
/// `(amount, governance_status, execution_status)` each.
pub(crate) fn total<'a>(
    query: &AggregateQuery,
    rows: impl IntoIterator<Item = (Option<&'a str>, &'a str, &'a str)>,
) -> AggregateResult {
    let mut count: u64 = 0;
    let mut sum = Decimal::ZERO;
    for (amount, governance, execution) in rows {
        let states = run_states(governance, execution);
        if !states
            .iter()
            .any(|s| !s.is_empty() && query.statuses.iter().any(|w| w == s))
        {
            continue;
        }
        count += 1;
        if let Some(field) = &query.series.amount {
            let n = amount.and_then(parse_decimal).ok_or_else(|| {
                format!(
                    "a run in the window has no number at `{}`, so the sum cannot be computed",
                    field.text()
                )
            })?;
            sum = sum
                .checked_add(n)
                .ok_or_else(|| "the sum is out of the exact decimal range".to_owned())?;
        }
    }
    Ok(AggregateValue {
        count,
        sum: query
            .series
            .amount
            .as_ref()
            .map(|_| sum.normalize().to_string()),
    })
}

fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str(text).ok()
    }
}

/// The start of a query's window (exclusive), or an error for a window
/// that does not fit.
pub(crate) fn window_start(
    now: chrono::DateTime<chrono::Utc>,
    within: std::time::Duration,
) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    chrono::Duration::from_std(within)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .ok_or_else(|| StoreError::InvalidInput {
            message: "an aggregate's window reaches before the first representable time".to_owned(),
        })
}

/// Checks a query (in [`crate::Checked`]).
pub(crate) fn validate_query(q: &AggregateQuery) -> Result<(), StoreError> {
    const STATES: [&str; 8] = [
        "pending", "allowed", "approved", "executed", "failed", "blocked", "rejected", "expired",
    ];
    let bad = |message: String| Err(StoreError::InvalidInput { message });
    if q.within.is_zero() {
        return bad("an aggregate's window must not be empty".to_owned());
    }
    if q.group_values.len() != q.series.group.len() {
        return bad("an aggregate needs one value per group field".to_owned());
    }
    if let Some(s) = q.statuses.iter().find(|s| !STATES.contains(&s.as_str())) {
        return bad(format!("`{s}` is not a run state"));
    }
    validate_series(&q.series)
}

/// Checks a series (in [`crate::Checked`]).
pub(crate) fn validate_series(s: &SeriesSpec) -> Result<(), StoreError> {
    let fields = s.group.iter().chain(s.amount.as_ref());
    for f in fields {
        if !matches!(f.root.as_str(), "payload" | "actor" | "source") {
            return Err(StoreError::InvalidInput {
                message: format!("`{}` is not a field of a run", f.text()),
            });
        }
    }
    if s.action.is_empty() || s.action.len() > 128 {
        return Err(StoreError::InvalidInput {
            message: "a series needs an action name".to_owned(),
        });
    }
    Ok(())
}

/// Refuses a decided run for another workspace than the one whose
/// aggregates were read.
pub(crate) fn check_decided(run: &NewRun, workspace: &str) -> Result<(), StoreError> {
    if run.proposal.workspace == workspace {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            message: "the decided run belongs to another workspace than its aggregates".to_owned(),
        })
    }
}

/// Adds an aggregate index problem to an audit report.
pub(crate) fn add_problem(report: &mut crate::model::AuditReport, message: String) {
    if report.problems.len() < crate::audit::MAX_AUDIT_PROBLEMS {
        report.problems.push(crate::model::AuditProblem {
            subject: crate::model::AuditSubject::Workspace,
            column: Some("aggregate_entries".to_owned()),
            message,
        });
    } else {
        report.more_problems += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(root: &str, steps: &[&str]) -> SeriesField {
        SeriesField {
            root: root.to_owned(),
            steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn equal_numbers_share_a_group_key() {
        let a: Value = serde_json::from_str("[1.0, \"x\"]").unwrap();
        let b: Value = serde_json::from_str("[1, \"x\"]").unwrap();
        let c: Value = serde_json::from_str("[\"1\", \"x\"]").unwrap();
        let key = |v: &Value| group_key(v.as_array().unwrap());
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
    }

    #[test]
    fn entries_need_every_group_field() {
        let spec = SeriesSpec {
            action: "refund".to_owned(),
            group: vec![field("payload", &["customer", "id"]), field("actor", &[])],
            amount: Some(field("payload", &["amount"])),
        };
        let run = RunFields::from_row(
            "refund",
            Some("bot"),
            r#"{"customer":{"id":7},"amount":12.50}"#,
            None,
        );
        let e = spec.entry(&run).unwrap();
        assert_eq!(e.amount.as_deref(), Some("12.5"));
        let anon = RunFields::from_row("refund", None, r#"{"customer":{}}"#, None);
        assert!(spec.entry(&anon).is_none());
        let other = RunFields::from_row("export", Some("bot"), r#"{"customer":{"id":7}}"#, None);
        assert!(spec.entry(&other).is_none());
        let no_amount =
            RunFields::from_row("refund", Some("bot"), r#"{"customer":{"id":7}}"#, None);
        assert_eq!(spec.entry(&no_amount).unwrap().amount, None);
    }

    #[test]
    fn totals_filter_states_and_sum_exactly() {
        let q = AggregateQuery {
            series: SeriesSpec {
                action: "refund".to_owned(),
                group: vec![],
                amount: Some(field("payload", &["amount"])),
            },
            group_values: vec![],
            within: std::time::Duration::from_secs(60),
            statuses: vec!["allowed".to_owned(), "executed".to_owned()],
        };
        let rows = [
            (Some("0.1"), "allowed", "awaiting_execution"),
            (Some("0.2"), "approved", "executed"),
            (Some("100"), "blocked", "not_executed"),
        ];
        let v = total(&q, rows).unwrap();
        assert_eq!(
            v,
            AggregateValue {
                count: 2,
                sum: Some("0.3".to_owned())
            }
        );
        let missing = [(None, "allowed", "awaiting_execution")];
        assert!(
            total(&q, missing)
                .unwrap_err()
                .contains("run.payload.amount")
        );
    }
}
