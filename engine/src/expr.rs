//! The condition languages: the expression language of `when:` and CEL for
//! `when_cel:`.
//!
//! `when:` text is parsed with the pest grammar in `grammar/countersign.pest`
//! (`parser`) into a syntax tree (`ast`), compiled once with types checked
//! and constants folded (`compile`) into a program (`program`), and evaluated
//! per request (`eval`) with the built-in functions (`functions`). The
//! imports run one way: compile → eval → functions → program; the program is
//! plain data that depends on none of them. `when_cel:` conditions are
//! compiled and evaluated by the `cel` crate (`cel`).

pub(crate) mod aggregate;
pub(crate) mod ast;
mod bindings;
pub(crate) mod cel;
pub(crate) mod compile;
pub(crate) mod err;
pub(crate) mod eval;
pub(crate) mod functions;
pub(crate) mod history;
pub(crate) mod parser;
pub(crate) mod program;

use std::sync::Arc;

pub use ast::{Span, Var};
pub use bindings::Bindings;
pub use cel::{CelCondition, to_cel};
pub use err::{EvalError, ExprDiagnostic, ExprErrorKind};
pub use history::{
    AggregateKind, Aggregates, MAX_WINDOW, PastRun, RunField, RunRoot, RunStatus, aggregate_key,
};
pub use parser::{MAX_EXPRESSION_BYTES, MAX_NESTING};
pub use program::{AggregateSpec, CompiledExpr};

use crate::value::Value;

impl CompiledExpr {
    /// Compiles `text` for an action named `action` with risk `risk` (both
    /// are constants inside its conditions). Every problem found is returned.
    ///
    /// ```
    /// use countersign_engine::{CompiledExpr, Bindings, Value, parse_json};
    /// let expr = CompiledExpr::compile("payload.amount > 500", "pay", "high").unwrap();
    /// let payload = parse_json(br#"{"amount": 500.01}"#).unwrap();
    /// let null = Value::Null;
    /// let b = Bindings { actor: &null, payload: &payload, source: &null, context: &null, now: &null };
    /// assert_eq!(expr.evaluate(&b).unwrap(), Value::Bool(true));
    /// ```
    pub fn compile(text: &str, action: &str, risk: &str) -> Result<Self, Vec<ExprDiagnostic>> {
        let node = parser::parse(text).map_err(|d| vec![d])?;
        let mut compiler = compile::Compiler::new(compile::Scope { action, risk, text });
        let op = compiler.condition(&node);
        if compiler.diagnostics.is_empty() {
            Ok(CompiledExpr {
                op,
                source: Arc::from(text),
                canonical: Arc::from(node.canonical()),
                payload_paths: Arc::from(node.payload_paths()),
                aggregates: Arc::from(compiler.aggregates),
            })
        } else {
            Err(compiler.diagnostics)
        }
    }

    /// Evaluates the expression (its aggregates, if any, fail: see
    /// [`CompiledExpr::evaluate_with`]).
    pub fn evaluate(&self, bindings: &Bindings<'_>) -> Result<Value, EvalError> {
        self.evaluate_with(bindings, &Aggregates::new())
    }

    /// Evaluates the expression with the values of its aggregates.
    pub fn evaluate_with(
        &self,
        bindings: &Bindings<'_>,
        aggregates: &Aggregates,
    ) -> Result<Value, EvalError> {
        let env = eval::Env {
            actor: bindings.actor,
            payload: bindings.payload,
            source: bindings.source,
            context: bindings.context,
            now: bindings.now,
            aggregates,
        };
        eval::eval(&self.op, &env)
            .map(std::borrow::Cow::into_owned)
            .map_err(|e| self.explain(e))
    }

    /// Evaluates a condition: anything but a boolean is an error.
    pub(crate) fn test(
        &self,
        bindings: &Bindings<'_>,
        aggregates: &Aggregates,
    ) -> Result<bool, EvalError> {
        let env = eval::Env {
            actor: bindings.actor,
            payload: bindings.payload,
            source: bindings.source,
            context: bindings.context,
            now: bindings.now,
            aggregates,
        };
        match eval::eval(&self.op, &env) {
            Ok(v) => match v.as_ref() {
                Value::Bool(b) => Ok(*b),
                other => Err(EvalError::new(
                    format!(
                        "the condition produced {}, not true or false",
                        other.type_name()
                    ),
                    Span::new(0, self.source.len()),
                )),
            },
            Err(e) => Err(self.explain(e)),
        }
    }

    /// Whether the condition folded to a constant at load.
    pub fn constant(&self) -> Option<&Value> {
        match &self.op {
            program::Op::Const(v) => Some(v),
            _ => None,
        }
    }

    /// The canonical spelling (see the policy version).
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The aggregates (`count`, `sum`) the condition reads, one per key, in
    /// order of first appearance.
    pub fn aggregates(&self) -> &[AggregateSpec] {
        &self.aggregates
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The payload fields the expression reads, as dotted paths
    /// (`payload.customer.name` is `customer.name`), each once, in order of
    /// first use. A computed index (`payload.items[i]`) stops the path at
    /// the list.
    ///
    /// ```
    /// use countersign_engine::CompiledExpr;
    /// let e = CompiledExpr::compile(
    ///     r#"payload.amount > 100 and payload.customer["tier"] == "gold""#, "pay", "high",
    /// ).unwrap();
    /// assert_eq!(e.payload_paths(), ["amount", "customer.tier"]);
    /// ```
    pub fn payload_paths(&self) -> &[String] {
        &self.payload_paths
    }

    /// Adds the failing sub-expression to a message that does not already
    /// quote it.
    fn explain(&self, mut e: EvalError) -> EvalError {
        if let Some(snippet) = self.source.get(e.span.start..e.span.end) {
            let snippet = snippet.split_whitespace().collect::<Vec<_>>().join(" ");
            if !snippet.is_empty() && !e.message.contains(&snippet) {
                e.message = format!("{} in `{snippet}`", e.message);
            }
        }
        e
    }
}
