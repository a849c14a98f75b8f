//! Evaluation of compiled expressions against one request.
//!
//! Results borrow from the request and the compiled expression wherever they
//! can (`Cow::Borrowed`), so reading `payload.amount` copies nothing.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ast::{BinOp, Span, Var};
use super::err::EvalError;
use super::functions;
use super::history::Aggregates;
use super::program::{ConstSet, Func, Op, Path, Step, TzArg};
use crate::value::{Value, compare};

/// The request values an expression reads. `action` and `risk` are constant
/// per action and were folded in at compile time.
pub(crate) struct Env<'r> {
    pub(crate) actor: &'r Value,
    pub(crate) payload: &'r Value,
    pub(crate) source: &'r Value,
    pub(crate) context: &'r Value,
    pub(crate) now: &'r Value,
    /// The values of the aggregates, computed by the caller.
    pub(crate) aggregates: &'r Aggregates,
}

type Res<'a> = Result<Cow<'a, Value>, EvalError>;

pub(crate) fn eval<'a>(op: &'a Op, env: &Env<'a>) -> Res<'a> {
    match op {
        Op::Const(v) => Ok(Cow::Borrowed(v)),
        Op::Path(p) => resolve(p, env).map(Cow::Borrowed),
        Op::Member(base, field, span) => {
            let base = eval(base, env)?;
            member(base, field, *span)
        }
        Op::Index(base, index, span) => {
            let base = eval(base, env)?;
            let index = eval(index, env)?;
            index_value(base, &index, *span)
        }
        Op::List(items) => Ok(Cow::Owned(Value::List(
            items
                .iter()
                .map(|i| eval(i, env).map(Cow::into_owned))
                .collect::<Result<_, _>>()?,
        ))),
        Op::Not(inner, span) => Ok(Cow::Owned(Value::Bool(!boolean(
            eval(inner, env)?.as_ref(),
            "not",
            *span,
        )?))),
        Op::Neg(inner, span) => match eval(inner, env)?.as_ref() {
            Value::Number(n) => Ok(Cow::Owned(Value::Number(-*n))),
            other => Err(EvalError::new(
                format!("`-` needs a number, got {}", other.type_name()),
                *span,
            )),
        },
        Op::And(l, r, span) => {
            if !boolean(eval(l, env)?.as_ref(), "and", *span)? {
                return Ok(Cow::Owned(Value::Bool(false)));
            }
            Ok(Cow::Owned(Value::Bool(boolean(
                eval(r, env)?.as_ref(),
                "and",
                *span,
            )?)))
        }
        Op::Or(l, r, span) => {
            if boolean(eval(l, env)?.as_ref(), "or", *span)? {
                return Ok(Cow::Owned(Value::Bool(true)));
            }
            Ok(Cow::Owned(Value::Bool(boolean(
                eval(r, env)?.as_ref(),
                "or",
                *span,
            )?)))
        }
        Op::Eq(l, r) => Ok(Cow::Owned(Value::Bool(eval(l, env)? == eval(r, env)?))),
        Op::Ne(l, r) => Ok(Cow::Owned(Value::Bool(eval(l, env)? != eval(r, env)?))),
        Op::Cmp(op, l, r, span) => {
            let (a, b) = (eval(l, env)?, eval(r, env)?);
            let ord = compare(&a, &b).ok_or_else(|| {
                EvalError::new(
                    format!(
                        "`{}` cannot compare {} with {}",
                        op.symbol(),
                        a.type_name(),
                        b.type_name()
                    ),
                    *span,
                )
            })?;
            let holds = match op {
                BinOp::Lt => ord == Ordering::Less,
                BinOp::Le => ord != Ordering::Greater,
                BinOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            };
            Ok(Cow::Owned(Value::Bool(holds)))
        }
        Op::In(l, r, span) => {
            let (needle, hay) = (eval(l, env)?, eval(r, env)?);
            contains(&hay, &needle, *span).map(|b| Cow::Owned(Value::Bool(b)))
        }
        Op::InSet(l, set) => Ok(Cow::Owned(Value::Bool(in_set(eval(l, env)?.as_ref(), set)))),
        Op::Arith(op, l, r, span) => {
            let (a, b) = (eval(l, env)?, eval(r, env)?);
            arith(*op, &a, &b, *span).map(Cow::Owned)
        }
        Op::Has(p) => Ok(Cow::Owned(Value::Bool(resolve(p, env).is_ok()))),
        Op::Call(func, args, span) => {
            let values = args
                .iter()
                .map(|a| eval(a, env))
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&Value> = values.iter().map(AsRef::as_ref).collect();
            func.apply(&refs)
                .map(Cow::Owned)
                .map_err(|m| EvalError::new(m, *span))
        }
        Op::Matches(subject, re, span) => match eval(subject, env)?.as_ref() {
            Value::String(s) => Ok(Cow::Owned(Value::Bool(re.is_match(s)))),
            other => Err(EvalError::new(
                format!("`matches` expects a string, got {}", other.type_name()),
                *span,
            )),
        },
        Op::Aggregate(key, span) => match env.aggregates.get_key(key) {
            Some(Ok(v)) => Ok(Cow::Borrowed(v)),
            Some(Err(message)) => Err(EvalError::new(message.clone(), *span)),
            None => Err(EvalError::new(
                format!("no value was given for the aggregate `{key}`"),
                *span,
            )),
        },
        Op::Clock(func, subject, tz, span) => {
            let t = functions::timestamp_arg(eval(subject, env)?.as_ref())
                .map_err(|m| EvalError::new(m, *span))?;
            let tz = match tz {
                TzArg::Fixed(tz) => *tz,
                TzArg::Dynamic(op) => match eval(op, env)?.as_ref() {
                    Value::String(name) => {
                        functions::parse_tz(name).map_err(|m| EvalError::new(m, *span))?
                    }
                    other => {
                        return Err(EvalError::new(
                            format!("a time zone must be a string, got {}", other.type_name()),
                            *span,
                        ));
                    }
                },
            };
            Ok(Cow::Owned(if *func == Func::Hour {
                functions::hour(t, tz)
            } else {
                functions::weekday(t, tz)
            }))
        }
    }
}

fn boolean(v: &Value, op: &str, span: Span) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(EvalError::new(
            format!("`{op}` needs a boolean, got {}", other.type_name()),
            span,
        )),
    }
}

fn root<'a>(p: &Path, env: &Env<'a>) -> Option<&'a Value> {
    match p.root {
        Var::Actor => Some(env.actor),
        Var::Payload => Some(env.payload),
        Var::Source => Some(env.source),
        Var::Context => Some(env.context),
        Var::Now => Some(env.now),
        Var::Action | Var::Risk => None,
    }
}

/// Follows a path without building an error: the fast path of every field
/// read and of `has`.
fn lookup<'a>(p: &Path, env: &Env<'a>) -> Option<&'a Value> {
    let mut cur = root(p, env)?;
    for step in p.steps.iter() {
        cur = match (step, cur) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::List(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Follows a path; when it fails, walks it again to say which step is
/// missing or has the wrong type, spelled as in the source.
fn resolve<'a>(p: &Path, env: &Env<'a>) -> Result<&'a Value, EvalError> {
    if let Some(v) = lookup(p, env) {
        return Ok(v);
    }
    explain_path(p, env)
}

#[cold]
fn explain_path<'a>(p: &Path, env: &Env<'a>) -> Result<&'a Value, EvalError> {
    let mut cur: &'a Value = match p.root {
        Var::Actor => env.actor,
        Var::Payload => env.payload,
        Var::Source => env.source,
        Var::Context => env.context,
        Var::Now => env.now,
        // Folded to constants by the compiler.
        Var::Action | Var::Risk => {
            return Err(EvalError::new("internal: unfolded variable", p.span));
        }
    };
    for (depth, step) in p.steps.iter().enumerate() {
        cur = match (step, cur) {
            (Step::Key(k), Value::Object(m)) => match m.get(k) {
                Some(v) => v,
                None => {
                    return Err(EvalError::new(
                        format!("`{}` is missing", spell(p, depth + 1)),
                        p.span,
                    ));
                }
            },
            (Step::Index(i), Value::List(items)) => match items.get(*i) {
                Some(v) => v,
                None => {
                    return Err(EvalError::new(
                        format!(
                            "`{}` is out of range: the list has {} items",
                            spell(p, depth + 1),
                            items.len()
                        ),
                        p.span,
                    ));
                }
            },
            (step, other) => {
                let wanted = if matches!(step, Step::Key(_)) {
                    "an object"
                } else {
                    "a list"
                };
                return Err(EvalError::new(
                    format!(
                        "`{}` is {}, not {wanted}",
                        spell(p, depth),
                        article(other.type_name())
                    ),
                    p.span,
                ));
            }
        };
    }
    Ok(cur)
}

fn article(type_name: &str) -> String {
    match type_name {
        "null" => "null".to_owned(),
        "object" => "an object".to_owned(),
        t => format!("a {t}"),
    }
}

/// The source spelling of the first `steps` steps of a path.
fn spell(p: &Path, steps: usize) -> String {
    let mut s = p.root.name().to_owned();
    for step in &p.steps[..steps] {
        match step {
            Step::Key(k) if is_plain_ident(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Key(k) => {
                s.push('[');
                crate::value::write_json_string(k, &mut s);
                s.push(']');
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn is_plain_ident(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn member<'a>(base: Cow<'a, Value>, field: &str, span: Span) -> Res<'a> {
    let missing = || EvalError::new(format!("field `{field}` is missing"), span);
    match base {
        Cow::Borrowed(Value::Object(m)) => m.get(field).map(Cow::Borrowed).ok_or_else(missing),
        Cow::Owned(Value::Object(mut m)) => m.remove(field).map(Cow::Owned).ok_or_else(missing),
        other => Err(EvalError::new(
            format!("cannot read `{field}` from {}", article(other.type_name())),
            span,
        )),
    }
}

fn index_value<'a>(base: Cow<'a, Value>, index: &Value, span: Span) -> Res<'a> {
    match index {
        Value::String(k) => member(base, k, span),
        Value::Number(n) => {
            let i = if n.fract().is_zero() && !n.is_sign_negative() {
                usize::try_from(n.normalize().mantissa()).ok()
            } else {
                None
            };
            let Some(i) = i else {
                return Err(EvalError::new(
                    format!("list index {n} must be a whole number of zero or more"),
                    span,
                ));
            };
            let out_of_range = |len: usize| {
                EvalError::new(
                    format!("index {i} is out of range: the list has {len} items"),
                    span,
                )
            };
            match base {
                Cow::Borrowed(Value::List(items)) => items
                    .get(i)
                    .map(Cow::Borrowed)
                    .ok_or_else(|| out_of_range(items.len())),
                Cow::Owned(Value::List(mut items)) => {
                    let len = items.len();
                    if i < len {
                        Ok(Cow::Owned(items.swap_remove(i)))
                    } else {
                        Err(out_of_range(len))
                    }
                }
                other => Err(EvalError::new(
                    format!("cannot index {} with a number", article(other.type_name())),
                    span,
                )),
            }
        }
        other => Err(EvalError::new(
            format!(
                "an index must be a string or a number, got {}",
                other.type_name()
            ),
            span,
        )),
    }
}

fn contains(hay: &Value, needle: &Value, span: Span) -> Result<bool, EvalError> {
    match (hay, needle) {
        (Value::List(items), n) => Ok(items.iter().any(|i| i == n)),
        (Value::Object(m), Value::String(k)) => Ok(m.get(k).is_some()),
        (Value::String(s), Value::String(sub)) => Ok(s.contains(sub.as_str())),
        (hay, needle) => Err(EvalError::new(
            format!(
                "`in` cannot look for {} in {}",
                article(needle.type_name()),
                article(hay.type_name())
            ),
            span,
        )),
    }
}

fn in_set(needle: &Value, set: &ConstSet) -> bool {
    match needle {
        Value::String(s) => set.strings.binary_search_by(|x| x.as_str().cmp(s)).is_ok(),
        Value::Number(n) => set.numbers.binary_search(n).is_ok(),
        other => set.others.iter().any(|o| o == other),
    }
}

fn arith(op: BinOp, a: &Value, b: &Value, span: Span) -> Result<Value, EvalError> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let r = match op {
                BinOp::Add => x.checked_add(*y),
                BinOp::Sub => x.checked_sub(*y),
                BinOp::Mul => x.checked_mul(*y),
                BinOp::Div | BinOp::Rem if y.is_zero() => {
                    return Err(EvalError::new("division by zero", span));
                }
                BinOp::Div => x.checked_div(*y),
                _ => x.checked_rem(*y),
            };
            r.map(Value::Number).ok_or_else(|| {
                EvalError::new(
                    format!("`{}` overflows the exact decimal range", op.symbol()),
                    span,
                )
            })
        }
        (Value::String(x), Value::String(y)) if op == BinOp::Add => {
            Ok(Value::String(format!("{x}{y}")))
        }
        (Value::List(x), Value::List(y)) if op == BinOp::Add => {
            Ok(Value::List(x.iter().chain(y.iter()).cloned().collect()))
        }
        (a, b) => Err(EvalError::new(
            format!(
                "`{}` cannot combine {} with {}",
                op.symbol(),
                article(a.type_name()),
                article(b.type_name())
            ),
            span,
        )),
    }
}
