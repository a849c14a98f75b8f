//! The expression language of `when:` conditions.
//!
//! Text is parsed with the pest grammar in `grammar/countersign.pest`
//! ([`parser`]), compiled once into an executable form with types checked and
//! constants folded ([`compile`]), and evaluated per request ([`eval`]).

pub(crate) mod ast;
pub(crate) mod compile;
pub(crate) mod err;
pub(crate) mod eval;
pub(crate) mod functions;
pub(crate) mod parser;

use std::sync::Arc;

pub use ast::{Span, Var};
pub use compile::CompiledExpr;
pub use err::{EvalError, ExprDiagnostic, ExprErrorKind};
pub use parser::{MAX_EXPRESSION_BYTES, MAX_NESTING};

use crate::value::Value;

/// The values one evaluation reads.
#[derive(Debug, Clone, Copy)]
pub struct Bindings<'r> {
    /// `actor`
    pub actor: &'r Value,
    /// `payload`
    pub payload: &'r Value,
    /// `source`
    pub source: &'r Value,
    /// `now`: a [`Value::Timestamp`], or null when unset.
    pub now: &'r Value,
}

impl CompiledExpr {
    /// Compiles `text` for an action named `action` with risk `risk` (both
    /// are constants inside its conditions). Every problem found is returned.
    ///
    /// ```
    /// use countersign_engine::{CompiledExpr, Bindings, Value, parse_json};
    /// let expr = CompiledExpr::compile("payload.amount > 500", "pay", "high").unwrap();
    /// let payload = parse_json(br#"{"amount": 500.01}"#).unwrap();
    /// let null = Value::Null;
    /// let b = Bindings { actor: &null, payload: &payload, source: &null, now: &null };
    /// assert_eq!(expr.evaluate(&b).unwrap(), Value::Bool(true));
    /// ```
    pub fn compile(text: &str, action: &str, risk: &str) -> Result<Self, Vec<ExprDiagnostic>> {
        let node = parser::parse(text).map_err(|d| vec![d])?;
        let mut compiler = compile::Compiler::new(compile::Scope { action, risk });
        let op = compiler.condition(&node);
        if compiler.diagnostics.is_empty() {
            Ok(CompiledExpr {
                op,
                source: Arc::from(text),
                canonical: Arc::from(node.canonical()),
            })
        } else {
            Err(compiler.diagnostics)
        }
    }

    /// Evaluates the expression.
    pub fn evaluate(&self, bindings: &Bindings<'_>) -> Result<Value, EvalError> {
        let env = eval::Env {
            actor: bindings.actor,
            payload: bindings.payload,
            source: bindings.source,
            now: bindings.now,
        };
        eval::eval(&self.op, &env)
            .map(std::borrow::Cow::into_owned)
            .map_err(|e| self.explain(e))
    }

    /// Evaluates a condition: anything but a boolean is an error.
    pub(crate) fn test(&self, bindings: &Bindings<'_>) -> Result<bool, EvalError> {
        let env = eval::Env {
            actor: bindings.actor,
            payload: bindings.payload,
            source: bindings.source,
            now: bindings.now,
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
            compile::Op::Const(v) => Some(v),
            _ => None,
        }
    }

    /// The canonical spelling (see the policy version).
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
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
