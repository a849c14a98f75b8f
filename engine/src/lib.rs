//! Countersign's policy engine.
//!
//! It loads a policy set (a directory of YAML files, or YAML text held in
//! memory), compiles every condition once, and decides for each proposed
//! action whether it is allowed, blocked or needs human approval, with the
//! reasons.
//!
//! What it must not do: while deciding it never performs I/O, never reads
//! the clock, never draws random numbers and never depends on hash or thread
//! order. A decision depends only on the policy set, the request and the
//! `now` the caller passes in, so the same inputs give the same decision on
//! every machine. It has no async code, no network and no database: the gate
//! does those.
//!
//! Files are read only while *loading*, before any decision:
//! [`PolicySet::load`] reads a policy directory, and [`testing::load_tests`]
//! reads the `*_test.yaml` files beside it. Both return plain values; no
//! handle to the file system survives into deciding.
//!
//! ```
//! use countersign_engine::{PolicySet, Request, Value, Verdict, parse_json};
//! let set = PolicySet::from_sources([(
//!     "pay.yaml",
//!     "version: 1\nactions:\n  pay:\n    rules:\n      - name: big\n        when: payload.amount > 500\n        decision: block\n      - name: ok\n        decision: allow\n",
//! )])
//! .unwrap();
//! let payload = parse_json(br#"{"amount": 900}"#).unwrap();
//! let decision = set.decide(&Request {
//!     action: "pay",
//!     actor: &Value::Null,
//!     payload: &payload,
//!     source: &Value::Null,
//!     context: &Value::Null,
//!     now: &Value::Null,
//! });
//! assert_eq!(decision.verdict, Verdict::Block);
//! ```

// The modules are private: the API is the list below, one path per name,
// so internal moves never break a caller.
mod decide;
mod expr;
mod policy;
pub mod testing;
mod value;

pub use decide::{
    ApprovalRequirement, Decision, DecisionReport, ErrorReport, EscalationReport, HitReport,
    Request, RuleError, RuleHit,
};
pub use expr::{
    AggregateKind, AggregateSpec, Aggregates, Bindings, CelCondition, CompiledExpr, EvalError,
    ExprDiagnostic, ExprErrorKind, MAX_EXPRESSION_BYTES, MAX_NESTING, MAX_WINDOW, PastRun,
    RunField, RunRoot, RunStatus, Span, Var, aggregate_key, to_cel,
};
pub use policy::{
    Action, ApproverGroup, Condition, DEFAULT_TIMEOUT, DiagnosticKind, Location, MAX_FILE_BYTES,
    MAX_TITLE_CHARS, Member, Mode, Origin, PolicyDiagnostic, PolicyError, PolicySet, Risk, Rule,
    SourceFile, SummaryError, SummaryTemplate, Verdict, format_duration, is_test_file,
    is_valid_action_name, parse_duration,
};
pub use value::{
    JsonError, JsonLimits, Map, Value, parse_json, parse_json_with_limits, write_json_string,
};

#[cfg(test)]
mod tests {
    /// The gate shares one policy set across threads.
    #[test]
    fn rules_say_which_payload_fields_they_read() {
        let set = crate::PolicySet::from_sources([(
            "p.yaml",
            "version: 1\nactions:\n  pay:\n    rules:\n      - name: a\n        when: payload.amount > 5 and payload.to.iban != \"x\" and payload.amount < 9\n        decision: allow\n      - name: b\n        when_cel: payload.customer.tier == 'gold' && size(payload.items) > 0\n        decision: allow\n      - name: c\n        decision: block\n",
        )])
        .map_err(|e| e.to_string());
        let set = match set {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let pay = &set.actions()[0];
        let paths: Vec<Vec<String>> = pay
            .rules
            .iter()
            .map(|r| r.condition.payload_paths())
            .collect();
        assert_eq!(paths[0], ["amount", "to.iban"]);
        assert_eq!(paths[1], ["customer.tier", "items"]);
        assert!(paths[2].is_empty());
    }

    #[test]
    fn policy_set_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::PolicySet>();
    }
}
