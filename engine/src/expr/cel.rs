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

use super::ast::Var;
use super::bindings::Bindings;
use super::parser::MAX_EXPRESSION_BYTES;
use crate::value::Value;

static STDLIB: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A compiled CEL condition.
#[derive(Clone)]
pub struct CelCondition {
    program: Arc<Program>,
    source: Arc<str>,
    uses: [bool; 7],
}

impl std::fmt::Debug for CelCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelCondition")
            .field("source", &self.source)
            .finish()
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
        if text.len() > MAX_EXPRESSION_BYTES {
            return Err(CelCompileError {
                message: format!("expression is longer than {} bytes", MAX_EXPRESSION_BYTES),
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
                    Some((
                        usize::try_from(e.pos.0).ok()?,
                        usize::try_from(e.pos.1).ok()?,
                    ))
                }),
            }
        })?;
        if let Some(m) = ORDERED_MACRO.as_ref().and_then(|re| re.find(text)) {
            return Err(CelCompileError {
                message: format!(
                    "CEL `{}` is not allowed in conditions: over an object its order is unspecified, and decisions must be deterministic; use `all`, `exists` or `exists_one`",
                    m.as_str()
                        .trim_start_matches('.')
                        .trim_end_matches('(')
                        .trim()
                ),
                position: None,
            });
        }
        let refs = program.references();
        let bound = comprehension_variables(text);
        let mut uses = [false; 7];
        for name in refs.variables() {
            match Var::from_name(name) {
                Some(v) => uses[v as usize] = true,
                // `xs.exists(x, x > 1)` binds `x`: not a request variable.
                None if bound.iter().any(|b| b == name) => {}
                None => {
                    return Err(CelCompileError {
                        message: format!(
                            "unknown variable `{name}` in CEL expression; the variables are action, actor, payload, source, context, risk, now"
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

    /// Evaluates the condition alone (a fresh scope); anything but a
    /// boolean result is an error.
    #[cfg(test)]
    pub(crate) fn test(&self, action: &str, risk: &str, b: &Bindings<'_>) -> Result<bool, String> {
        CelScope::new(action, risk, *b).test(self)
    }
}

/// What one decision's CEL conditions share: one context, each request
/// variable converted to CEL values at most once, however many CEL rules
/// the action has.
pub(crate) struct CelScope<'r> {
    action: &'r str,
    risk: &'r str,
    bindings: Bindings<'r>,
    context: Option<Context<'static, 'static>>,
    bound: [bool; 7],
}

impl<'r> CelScope<'r> {
    pub(crate) fn new(action: &'r str, risk: &'r str, bindings: Bindings<'r>) -> Self {
        Self {
            action,
            risk,
            bindings,
            context: None,
            bound: [false; 7],
        }
    }

    /// Evaluates one condition; anything but a boolean result is an error.
    pub(crate) fn test(&mut self, cond: &CelCondition) -> Result<bool, String> {
        let ctx = self
            .context
            .get_or_insert_with(|| Context::with_env(Arc::clone(&STDLIB)));
        for var in Var::ALL {
            let i = var as usize;
            if !cond.uses[i] || self.bound[i] {
                continue;
            }
            let value = match var {
                Var::Action => cel::Value::String(Arc::new(self.action.to_owned())),
                Var::Risk => cel::Value::String(Arc::new(self.risk.to_owned())),
                Var::Actor => to_cel(self.bindings.actor),
                Var::Payload => to_cel(self.bindings.payload),
                Var::Source => to_cel(self.bindings.source),
                Var::Context => to_cel(self.bindings.context),
                Var::Now => to_cel(self.bindings.now),
            };
            ctx.add_variable_from_value(var.name(), value);
            self.bound[i] = true;
        }
        match cond.program.execute(ctx) {
            Ok(cel::Value::Bool(v)) => Ok(v),
            Ok(other) => Err(format!(
                "the CEL condition produced {:?}, not true or false",
                other.type_of()
            )),
            Err(e) => Err(format!("CEL: {e}")),
        }
    }
}

/// `map` and `filter` build lists in iteration order, which for CEL maps
/// (hash maps) changes from run to run.
static ORDERED_MACRO: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r"\.\s*(?:map|filter)\s*\(").ok());

/// Names bound by CEL's comprehension macros (`all`, `exists`,
/// `exists_one`, `map`, `filter`): the identifier before the first comma.
fn comprehension_variables(text: &str) -> Vec<String> {
    static MACRO: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
        regex::Regex::new(
            r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,",
        )
        .ok()
    });
    MACRO.as_ref().map_or_else(Vec::new, |re| {
        re.captures_iter(text)
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()))
            .collect()
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn test(text: &str, payload: &str) -> Result<bool, String> {
        let cond = CelCondition::compile(text).map_err(|e| e.message)?;
        let payload = crate::value::parse_json(payload.as_bytes()).map_err(|e| e.to_string())?;
        let null = Value::Null;
        let b = Bindings {
            actor: &null,
            payload: &payload,
            source: &null,
            context: &null,
            now: &null,
        };
        cond.test("act", "high", &b)
    }

    #[test]
    fn comprehension_macros_bind_their_variable() {
        assert_eq!(
            test("payload.xs.exists(f, f == 2)", r#"{"xs":[1,2]}"#),
            Ok(true)
        );
        assert_eq!(
            test("payload.xs.all(x, x > 1)", r#"{"xs":[1,2]}"#),
            Ok(false)
        );
        assert_eq!(
            test("payload.m.exists(k, k == 'b')", r#"{"m":{"a":1,"b":2}}"#),
            Ok(true)
        );
    }

    #[test]
    fn unknown_variables_are_still_rejected() {
        let e = CelCondition::compile("paylod.amount > 5")
            .map(|_| ())
            .unwrap_err();
        assert!(
            e.message.contains("unknown variable `paylod`"),
            "{}",
            e.message
        );
        let e = CelCondition::compile("payload.xs.exists(f, g == 1)")
            .map(|_| ())
            .unwrap_err();
        assert!(e.message.contains("`g`"), "{}", e.message);
    }

    #[test]
    fn order_dependent_macros_are_refused() {
        for text in [
            "payload.m.map(k, k)[0] == 'a'",
            "payload.xs.filter(x, x > 1).size() == 1",
        ] {
            let e = CelCondition::compile(text).map(|_| ()).unwrap_err();
            assert!(e.message.contains("deterministic"), "{}", e.message);
        }
    }

    #[test]
    fn numbers_and_constants_reach_cel() {
        assert_eq!(
            test(
                "payload.amount > 100 && action == 'act' && risk == 'high'",
                r#"{"amount": 100.5}"#
            ),
            Ok(true)
        );
        assert_eq!(test("payload.n == 3", r#"{"n": 3}"#), Ok(true));
        assert!(test("payload.missing > 1", "{}").is_err());
        assert!(
            test("payload.n", r#"{"n": 3}"#)
                .unwrap_err()
                .contains("not true or false")
        );
    }
}
