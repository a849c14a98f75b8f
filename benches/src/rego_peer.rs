//! The Rego peer: the finance rules as one Rego module
//! (`benches/policies/finance.rego`), evaluated with `regorus`.
//!
//! Per request the input is set on the engine and the `decision` rule is
//! evaluated (`Engine::set_input` + `Engine::eval_rule`, the library's
//! recommended fast path). The input value is built outside the timed loop,
//! from the same request Countersign decides, with `now` as nanoseconds.

use countersign_engine::testing::TestCase;
use countersign_engine::{Value, Verdict};
use regorus::Engine;

use crate::from_strength;

/// The Rego translation of the finance policies.
pub const POLICY: &str = include_str!("../policies/finance.rego");

/// The rule every request evaluates.
pub const DECISION: &str = "data.finance.decision";

/// The finance policies loaded into regorus.
pub struct RegoFinance {
    engine: Engine,
}

impl Default for RegoFinance {
    fn default() -> Self {
        Self::new()
    }
}

impl RegoFinance {
    /// Parses the module.
    pub fn new() -> Self {
        let mut engine = Engine::new();
        if let Err(e) = engine.add_policy("finance.rego".to_owned(), POLICY.to_owned()) {
            panic!("finance.rego does not load: {e}");
        }
        // regorus fails the whole evaluation on an unknown time zone, where
        // Countersign fails only the rule; the policy checks zones against
        // this list first (the names the engines' shared chrono-tz knows).
        let zones: serde_json::Map<String, serde_json::Value> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| (tz.name().to_owned(), serde_json::Value::Bool(true)))
            .collect();
        if let Err(e) = engine.add_data(regorus::Value::from(
            serde_json::json!({ "time_zones": zones }),
        )) {
            panic!("time zone data does not load: {e}");
        }
        RegoFinance { engine }
    }

    /// The input document for a finance test case.
    pub fn input(case: &TestCase) -> regorus::Value {
        input_parts(
            &case.action,
            &case.actor,
            &case.payload,
            &case.source,
            &case.now,
        )
    }

    /// Decides one request.
    pub fn decide(&mut self, input: &regorus::Value) -> Verdict {
        self.engine.set_input(input.clone());
        let v = self
            .engine
            .eval_rule(DECISION.to_owned())
            .unwrap_or_else(|e| panic!("regorus failed to evaluate the decision: {e}"));
        verdict_of(&v)
    }
}

/// Reads a strength number back as a verdict.
pub fn verdict_of(v: &regorus::Value) -> Verdict {
    v.as_i64()
        .ok()
        .and_then(from_strength)
        .unwrap_or_else(|| panic!("the Rego decision is not a verdict strength: {v}"))
}

/// The input document for a request.
pub fn input_parts(
    action: &str,
    actor: &Value,
    payload: &Value,
    source: &Value,
    now: &Value,
) -> regorus::Value {
    let now_ns = match now {
        Value::Timestamp(t) => t
            .timestamp_nanos_opt()
            .map_or(serde_json::Value::Null, serde_json::Value::from),
        _ => serde_json::Value::Null,
    };
    regorus::Value::from(serde_json::json!({
        "action": action,
        "actor": actor.to_serde_json(),
        "payload": payload.to_serde_json(),
        "source": source.to_serde_json(),
        "now_ns": now_ns,
    }))
}

/// An input document from the request's JSON text, for the end-to-end
/// measurement: regorus reads the payload text with its own JSON reader.
pub fn input_from_json(
    action: &str,
    actor: &Value,
    payload_json: &str,
    source: &Value,
    now: &Value,
) -> regorus::Value {
    let mut input = input_parts(action, actor, &Value::Null, source, now);
    let payload = regorus::Value::from_json_str(payload_json)
        .unwrap_or_else(|e| panic!("bad payload JSON: {e}"));
    match input.as_object_mut() {
        Ok(map) => {
            map.insert(regorus::Value::from("payload"), payload);
        }
        Err(e) => panic!("the input is not an object: {e}"),
    }
    input
}
