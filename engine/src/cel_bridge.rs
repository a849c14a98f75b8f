//! `when_cel:` conditions, evaluated with the `cel` crate (pinned exactly in
//! the workspace so a policy's meaning cannot change under an upgrade).
//!
//! CEL has no exact decimal type: our numbers reach CEL as `int` when they are
//! whole and fit in 64 bits, else as `double`. Policies that compare money
//! with fractions should prefer `when:`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::{Context, Program};
use rust_decimal::prelude::ToPrimitive;

use crate::expr::Var;
use crate::value::Value;

static STDLIB: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A compiled CEL condition.
#[derive(Clone)]
pub struct CelCondition {
    program: Arc<Program>,
    source: Arc<str>,
    uses: [bool; 6],
}

impl std::fmt::Debug for CelCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelCondition").field("source", &self.source).finish()
    }
}

/// A CEL compile problem: message and 1-based line/column within the
/// expression text, when CEL reports one.
#[derive(Debug, Clone)]
pub(crate) struct CelCompileError {
    pub(crate) message: String,
    pub(crate) position: Option<(usize, usize)>,
}

impl CelCondition {
    /// Compiles `text`; only our request variables may be referenced.
    pub(crate) fn compile(text: &str) -> Result<Self, CelCompileError> {
        if text.len() > crate::expr::MAX_EXPRESSION_BYTES {
            return Err(CelCompileError {
                message: format!(
                    "expression is longer than {} bytes",
                    crate::expr::MAX_EXPRESSION_BYTES
                ),
                position: None,
            });
        }
        let program = Program::compile(text).map_err(|errs| {
            let first = errs.errors.first();
            CelCompileError {
                message: first.map_or_else(
                    || "invalid CEL expression".to_owned(),
                    |e| format!("CEL syntax error: {}", e.msg),
                ),
                position: first.and_then(|e| {
                    Some((usize::try_from(e.pos.0).ok()?, usize::try_from(e.pos.1).ok()?))
                }),
            }
        })?;
        let refs = program.references();
        let mut uses = [false; 6];
        for name in refs.variables() {
            match Var::from_name(name) {
                Some(v) => uses[v as usize] = true,
                None => {
                    return Err(CelCompileError {
                        message: format!(
                            "unknown variable `{name}` in CEL expression; the variables are action, actor, payload, source, risk, now"
                        ),
                        position: None,
                    });
                }
            }
        }
        Ok(Self {
            program: Arc::new(program),
            source: Arc::from(text),
            uses,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition; anything but a boolean result is an error.
    pub(crate) fn test(
        &self,
        action: &str,
        risk: &str,
        b: &crate::expr::Bindings<'_>,
    ) -> Result<bool, String> {
        let mut ctx = Context::with_env(Arc::clone(&STDLIB));
        let bind = |ctx: &mut Context<'_, '_>, var: Var, v: cel::Value| {
            if self.uses[var as usize] {
                ctx.add_variable_from_value(var.name(), v);
            }
        };
        bind(&mut ctx, Var::Action, cel::Value::String(Arc::new(action.to_owned())));
        bind(&mut ctx, Var::Risk, cel::Value::String(Arc::new(risk.to_owned())));
        for (var, value) in [
            (Var::Actor, b.actor),
            (Var::Payload, b.payload),
            (Var::Source, b.source),
            (Var::Now, b.now),
        ] {
            if self.uses[var as usize] {
                bind(&mut ctx, var, to_cel(value));
            }
        }
        match self.program.execute(&ctx) {
            Ok(cel::Value::Bool(v)) => Ok(v),
            Ok(other) => Err(format!(
                "the CEL condition produced {:?}, not true or false",
                other.type_of()
            )),
            Err(e) => Err(format!("CEL: {e}")),
        }
    }
}

/// Converts one of our values to CEL's representation.
pub fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => {
            if n.fract().is_zero() {
                if let Some(i) = n.to_i64() {
                    return cel::Value::Int(i);
                }
            }
            cel::Value::Float(n.to_f64().unwrap_or(f64::NAN))
        }
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::List(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<String, cel::Value> =
                m.iter().map(|(k, v)| (k.to_owned(), to_cel(v))).collect();
            cel::Value::Map(map.into())
        }
        Value::Timestamp(t) => cel::Value::Timestamp(t.fixed_offset()),
    }
}
