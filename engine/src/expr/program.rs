//! The compiled program: the executable form of an expression ([`Op`]) and
//! the facts the compiler knows about it ([`Ty`]). It is plain data: the
//! compiler writes it, the evaluator and the built-in functions read it, and
//! it depends on neither.

use std::sync::Arc;

use chrono_tz::Tz;
use regex::Regex;
use rust_decimal::Decimal;

use super::ast::{BinOp, Span, Var};
use super::history::{AggregateKind, RunField, RunStatus};
use crate::value::Value;

/// A built-in function. What each one does is in `functions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Has,
    Len,
    Lower,
    Upper,
    Trim,
    StartsWith,
    EndsWith,
    Contains,
    Matches,
    Hour,
    Weekday,
}

/// What is known about a value's type before evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Any,
    Null,
    Bool,
    Num,
    Str,
    List,
    Obj,
    Time,
}

impl Ty {
    pub(super) fn of(v: &Value) -> Ty {
        match v {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Bool,
            Value::Number(_) => Ty::Num,
            Value::String(_) => Ty::Str,
            Value::List(_) => Ty::List,
            Value::Object(_) => Ty::Obj,
            Value::Timestamp(_) => Ty::Time,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Ty::Any => "any value",
            Ty::Null => "null",
            Ty::Bool => "a boolean",
            Ty::Num => "a number",
            Ty::Str => "a string",
            Ty::List => "a list",
            Ty::Obj => "an object",
            Ty::Time => "a timestamp",
        }
    }

    pub(super) fn known(self) -> bool {
        self != Ty::Any
    }
}

/// One step of a field path.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Key(Box<str>),
    Index(usize),
}

/// A variable followed by constant field names and indexes, resolved
/// without allocating. `text` is the source spelling for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub(crate) root: Var,
    pub(crate) steps: Box<[Step]>,
    pub(crate) span: Span,
}

/// A constant list prepared for fast membership tests.
#[derive(Debug, Clone)]
pub(crate) struct ConstSet {
    /// Sorted strings.
    pub(crate) strings: Vec<String>,
    /// Sorted numbers.
    pub(crate) numbers: Vec<Decimal>,
    /// Everything else, compared one by one.
    pub(crate) others: Vec<Value>,
}

/// The time zone argument of `hour` and `weekday`.
#[derive(Debug, Clone)]
pub(crate) enum TzArg {
    Fixed(Tz),
    Dynamic(Box<Op>),
}

/// The executable form of an expression.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Const(Value),
    Path(Path),
    Member(Box<Op>, Box<str>, Span),
    Index(Box<Op>, Box<Op>, Span),
    List(Vec<Op>),
    Not(Box<Op>, Span),
    Neg(Box<Op>, Span),
    And(Box<Op>, Box<Op>, Span),
    Or(Box<Op>, Box<Op>, Span),
    Eq(Box<Op>, Box<Op>),
    Ne(Box<Op>, Box<Op>),
    Cmp(BinOp, Box<Op>, Box<Op>, Span),
    In(Box<Op>, Box<Op>, Span),
    InSet(Box<Op>, Box<ConstSet>),
    Arith(BinOp, Box<Op>, Box<Op>, Span),
    Has(Path),
    Call(Func, Vec<Op>, Span),
    Matches(Box<Op>, Box<Regex>, Span),
    Clock(Func, Box<Op>, TzArg, Span),
    /// The value of an aggregate, given by the caller, by its key.
    Aggregate(Arc<str>, Span),
}

impl Op {
    pub(super) fn as_const(&self) -> Option<&Value> {
        match self {
            Op::Const(v) => Some(v),
            _ => None,
        }
    }
}

/// One aggregate (`count(…)` or `sum(…)`) of a condition: what the caller
/// must compute over past runs before the engine can decide.
///
/// A run counts when it is a run of `action`, was proposed in the window
/// `(now - within, now]`, is in one of `statuses`, and for each
/// `(field, value)` of the group its field equals the value computed from
/// the request being decided. The request being decided never counts.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// The key the value is known by ([`super::history::aggregate_key`] of
    /// the text as written).
    pub(crate) key: Arc<str>,
    pub(crate) kind: AggregateKind,
    pub(crate) action: String,
    pub(crate) within: std::time::Duration,
    /// Sorted, without duplicates.
    pub(crate) statuses: Vec<RunStatus>,
    /// Sorted by field.
    pub(crate) group: Vec<(RunField, Op)>,
}

/// A compiled condition, ready to evaluate many times.
#[derive(Debug, Clone)]
pub struct CompiledExpr {
    pub(crate) op: Op,
    pub(crate) source: Arc<str>,
    pub(crate) canonical: Arc<str>,
    /// The payload paths the expression reads, dotted, in order of first use.
    pub(crate) payload_paths: Arc<[String]>,
    /// The aggregates it reads, in order of first appearance, one per key.
    pub(crate) aggregates: Arc<[AggregateSpec]>,
}
