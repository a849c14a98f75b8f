//! What the caller of the engine reads from an [`AggregateSpec`] to compute
//! its value, and a reference model that computes it by scanning a whole
//! history (for tests; the gate answers from an index in its store).

use std::time::Duration;

use rust_decimal::Decimal;

use super::bindings::Bindings;
use super::err::EvalError;
use super::eval::{Env, eval};
use super::history::{AggregateKind, Aggregates, PastRun, RunField, RunStatus};
use super::program::AggregateSpec;
use crate::value::Value;

impl AggregateSpec {
    /// The key its value is given under (see [`crate::aggregate_key`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Count or sum (of which field).
    pub fn kind(&self) -> &AggregateKind {
        &self.kind
    }

    /// The action whose runs count (by default the rule's own action).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The length of the trailing window: runs proposed in
    /// `(now - within, now]` count.
    pub fn within(&self) -> Duration {
        self.within
    }

    /// The states a run must be in (one of them) to count.
    pub fn statuses(&self) -> &[RunStatus] {
        &self.statuses
    }

    /// The fields of past runs that `where:` compares, sorted.
    pub fn group_fields(&self) -> impl Iterator<Item = &RunField> {
        self.group.iter().map(|(f, _)| f)
    }

    /// The values the group fields must equal, computed from the request
    /// being decided, in the order of [`AggregateSpec::group_fields`]. An
    /// error (a missing payload field) makes the aggregate fail, and with
    /// it the conditions reading it.
    pub fn group_values(&self, bindings: &Bindings<'_>) -> Result<Vec<Value>, EvalError> {
        let none = Aggregates::new();
        let env = Env {
            actor: bindings.actor,
            payload: bindings.payload,
            source: bindings.source,
            context: bindings.context,
            now: bindings.now,
            aggregates: &none,
        };
        self.group
            .iter()
            .map(|(_, op)| eval(op, &env).map(std::borrow::Cow::into_owned))
            .collect()
    }

    /// Whether a past run counts, given the group values of the request
    /// and the decision time.
    pub fn counts(
        &self,
        run: &PastRun,
        values: &[Value],
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let Ok(within) = chrono::Duration::from_std(self.within) else {
            return false;
        };
        run.action == self.action
            && run.created_at <= now
            && run.created_at > now - within
            && run.statuses.iter().any(|s| self.statuses.contains(s))
            && self.group.iter().zip(values).all(|((field, _), want)| {
                field.read(&run.payload, &run.actor, &run.source) == Some(want)
            })
    }

    /// The reference model: the aggregate's value computed by scanning
    /// `history` (which must not hold the request being decided). `Err`
    /// says why it cannot be computed (a group value or a summed field
    /// that is missing or not a number).
    pub fn scan(
        &self,
        bindings: &Bindings<'_>,
        now: chrono::DateTime<chrono::Utc>,
        history: &[PastRun],
    ) -> Result<Value, String> {
        let values = self.group_values(bindings).map_err(|e| e.message)?;
        let mut count: u64 = 0;
        let mut sum = Decimal::ZERO;
        for run in history.iter().filter(|r| self.counts(r, &values, now)) {
            count += 1;
            if let AggregateKind::Sum(field) = &self.kind {
                match field.read(&run.payload, &run.actor, &run.source) {
                    Some(Value::Number(n)) => {
                        sum = sum.checked_add(*n).ok_or_else(|| {
                            "the sum is out of the exact decimal range".to_owned()
                        })?;
                    }
                    _ => return Err(sum_field_error(field)),
                }
            }
        }
        Ok(Value::Number(match self.kind {
            AggregateKind::Count => Decimal::from(count),
            AggregateKind::Sum(_) => sum,
        }))
    }
}

/// The error of a sum over a run whose field is missing or not a number.
fn sum_field_error(field: &RunField) -> String {
    format!(
        "a run in the window has no number at `{}`, so the sum cannot be computed",
        field.text()
    )
}
