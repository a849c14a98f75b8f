//! Countersign's policy engine.
//!
//! It loads a policy set (a directory of YAML files), compiles every condition
//! once, and decides for each proposed action whether it is allowed, blocked
//! or needs human approval, with the reasons.
//!
//! The engine is pure: it never performs I/O while deciding, never reads the
//! clock and never draws random numbers. A decision depends only on the
//! policy set, the request and the `now` the caller passes in.

pub mod decide;
pub mod expr;
pub mod policy;
pub mod testing;
pub mod value;

pub use decide::{ApprovalRequirement, Decision, DecisionReport, Request, RuleError, RuleHit};
pub use expr::{Bindings, CompiledExpr, EvalError, ExprDiagnostic, ExprErrorKind};
pub use policy::{
    Action, ApproverGroup, Condition, DiagnosticKind, Member, Mode, PolicyDiagnostic, PolicyError,
    PolicySet, Risk, Rule, Verdict,
};
pub use value::{
    JsonError, JsonLimits, Map, Value, parse_json, parse_json_with_limits, write_json_string,
};

#[cfg(test)]
mod tests {
    /// The gate shares one policy set across threads.
    #[test]
    fn policy_set_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::PolicySet>();
    }
}
