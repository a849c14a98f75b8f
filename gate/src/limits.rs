//! Limits over time: turning a policy's aggregates (`count(…)`, `sum(…)`)
//! into what the store understands (a series of its aggregate index and a
//! query on it), and the store's answers back into the engine's inputs.
//!
//! The engine stays pure: it only describes each aggregate. The store never
//! sees policy code: it gets plain descriptions ([`SeriesSpec`],
//! [`AggregateQuery`]). This module is the translation between the two.

use std::collections::BTreeSet;

use countersign_engine::{
    AggregateKind, AggregateSpec, Aggregates, Bindings, PolicySet, RunField, Value, parse_json,
};
use countersign_store::{
    AggregateQuery, AggregateResult, SeriesField, SeriesReport, SeriesSpec, Store, StoreError,
};

fn field(f: &RunField) -> SeriesField {
    SeriesField {
        root: f.root.name().to_owned(),
        steps: f.steps.clone(),
    }
}

/// The series of the aggregate index an aggregate reads.
pub fn series_of(spec: &AggregateSpec) -> SeriesSpec {
    SeriesSpec {
        action: spec.action().to_owned(),
        group: spec.group_fields().map(field).collect(),
        amount: match spec.kind() {
            AggregateKind::Count => None,
            AggregateKind::Sum(f) => Some(field(f)),
        },
    }
}

/// Every distinct series the policy set's aggregates read, sorted.
pub fn all_series(set: &PolicySet) -> Vec<SeriesSpec> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out: Vec<SeriesSpec> = Vec::new();
    for spec in set.all_aggregates() {
        let series = series_of(spec);
        if seen.insert(series.id()) {
            out.push(series);
        }
    }
    out.sort_by_key(SeriesSpec::id);
    out
}

/// Builds (from history) every series the set needs in `workspace`, before
/// the set decides anything; waits until they are built.
pub async fn prepare(
    store: &dyn Store,
    workspace: &str,
    set: &PolicySet,
) -> Result<SeriesReport, StoreError> {
    let series = all_series(set);
    if series.is_empty() {
        return Ok(SeriesReport::default());
    }
    let report = store.prepare_series(workspace, series).await?;
    if report.built > 0 {
        tracing::info!(
            workspace,
            built = report.built,
            runs_read = report.runs_read,
            "aggregate indexes built from history"
        );
    }
    Ok(report)
}

/// The store queries for a request's aggregates, with the key each one's
/// value goes under. An aggregate whose `where:` values the request lacks
/// is not queried: its error is in the returned [`Aggregates`] already.
pub fn queries(
    specs: &[&AggregateSpec],
    bindings: &Bindings<'_>,
) -> (Vec<AggregateQuery>, Vec<String>, Aggregates) {
    let mut queries = Vec::new();
    let mut keys = Vec::new();
    let mut failed = Aggregates::new();
    for spec in specs {
        match spec.group_values(bindings) {
            Err(e) => failed.insert_error(spec.key(), e.message()),
            Ok(values) => {
                queries.push(AggregateQuery {
                    series: series_of(spec),
                    group_values: values.iter().map(Value::to_serde_json).collect(),
                    within: spec.within(),
                    statuses: spec
                        .statuses()
                        .iter()
                        .map(|s| s.name().to_owned())
                        .collect(),
                });
                keys.push(spec.key().to_owned());
            }
        }
    }
    (queries, keys, failed)
}

/// The engine's inputs from the store's answers (in the order of `keys`).
pub fn values(
    base: &Aggregates,
    keys: &[String],
    results: &[AggregateResult],
    queries: &[AggregateQuery],
) -> Aggregates {
    let mut out = base.clone();
    for ((key, result), query) in keys.iter().zip(results).zip(queries) {
        match result {
            Err(message) => out.insert_error(key, message.clone()),
            Ok(v) => {
                let number = if query.series.amount.is_some() {
                    v.sum.as_deref().map(|s| parse_json(s.as_bytes()))
                } else {
                    Some(parse_json(v.count.to_string().as_bytes()))
                };
                match number {
                    Some(Ok(n @ Value::Number(_))) => out.insert(key, n),
                    _ => out.insert_error(key, "the store gave no number for this aggregate"),
                }
            }
        }
    }
    out
}

/// The values as recorded with the decision: each key with its number, or
/// `{"error": …}`.
pub fn recorded(aggregates: &Aggregates) -> serde_json::Value {
    let map = aggregates
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Ok(n) => n.to_serde_json(),
                Err(e) => serde_json::json!({ "error": e }),
            };
            (k.to_owned(), v)
        })
        .collect();
    serde_json::Value::Object(map)
}
