//! Syntax tree → executable form: names resolved, paths flattened, types
//! checked where they are known at load, constants folded, regular
//! expressions and time zones prepared once.

use std::sync::Arc;

use super::ast::{BinOp, Node, NodeKind, Span, UnOp, Var};
use super::err::{ExprDiagnostic, ExprErrorKind, closest};
use super::eval::{Env, eval};
use super::functions;
use super::history::{
    AggregateKind, Aggregates, MAX_WINDOW, RunField, RunRoot, RunStatus, aggregate_key,
    parse_window,
};
use super::program::{AggregateSpec, ConstSet, Func, Op, Path, Step, Ty, TzArg};
use crate::value::Value;

/// The named arguments of `count` and `sum`.
const AGGREGATE_ARGS: [&str; 4] = ["within", "action", "status", "where"];

/// The largest compiled regular expression accepted, in bytes.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Facts fixed for every evaluation of one action's expressions.
pub(crate) struct Scope<'a> {
    pub(crate) action: &'a str,
    pub(crate) risk: &'a str,
    /// The expression's text (aggregates are known by theirs).
    pub(crate) text: &'a str,
}

pub(crate) struct Compiler<'a> {
    scope: Scope<'a>,
    pub(crate) diagnostics: Vec<ExprDiagnostic>,
    /// The aggregates met so far, one per key.
    pub(crate) aggregates: Vec<AggregateSpec>,
}

impl<'a> Compiler<'a> {
    pub(crate) fn new(scope: Scope<'a>) -> Self {
        Self {
            scope,
            diagnostics: Vec::new(),
            aggregates: Vec::new(),
        }
    }

    fn error(&mut self, d: ExprDiagnostic) -> (Op, Ty) {
        self.diagnostics.push(d);
        (Op::Const(Value::Null), Ty::Any)
    }

    /// Compiles a rule condition, which must produce a boolean.
    pub(crate) fn condition(&mut self, node: &Node) -> Op {
        let (op, ty) = self.node(node);
        if ty.known() && ty != Ty::Bool {
            self.diagnostics.push(
                ExprDiagnostic::new(
                    ExprErrorKind::Type,
                    format!(
                        "a condition must be true or false, but this is {}",
                        ty.name()
                    ),
                    node.span,
                )
                .with_help("compare it with something, for example `payload.amount > 500`"),
            );
        }
        op
    }

    fn node(&mut self, node: &Node) -> (Op, Ty) {
        let span = node.span;
        match &node.kind {
            NodeKind::Literal(v) => (Op::Const(v.clone()), Ty::of(v)),
            NodeKind::Ident(name) => self.variable(name, span),
            NodeKind::List(items) => {
                let ops: Vec<Op> = items.iter().map(|n| self.node(n).0).collect();
                if ops.iter().all(|o| o.as_const().is_some()) {
                    let values = ops.into_iter().filter_map(|o| match o {
                        Op::Const(v) => Some(v),
                        _ => None,
                    });
                    (Op::Const(Value::List(values.collect())), Ty::List)
                } else {
                    (Op::List(ops), Ty::List)
                }
            }
            NodeKind::Member(base, field) => {
                let (base_op, base_ty) = self.node(base);
                if base_ty.known() && base_ty != Ty::Obj {
                    return self.error(ExprDiagnostic::new(
                        ExprErrorKind::Type,
                        format!(
                            "`{field}` is read from {}, which has no fields",
                            base_ty.name()
                        ),
                        span,
                    ));
                }
                let op = match base_op {
                    Op::Path(mut p) => {
                        let mut steps = p.steps.into_vec();
                        steps.push(Step::Key(field.as_str().into()));
                        p.steps = steps.into_boxed_slice();
                        p.span = span;
                        Op::Path(p)
                    }
                    other => Op::Member(Box::new(other), field.as_str().into(), span),
                };
                self.fold((op, Ty::Any), span)
            }
            NodeKind::Index(base, index) => self.index(base, index, span),
            NodeKind::Call(name, name_span, args) => self.call(name, *name_span, args, span),
            NodeKind::Unary(op, operand) => self.unary(*op, operand, span),
            NodeKind::Binary(op, lhs, rhs) => self.binary(*op, lhs, rhs, span),
            NodeKind::Named(name, name_span, _) => self.error(ExprDiagnostic::new(
                ExprErrorKind::Aggregate,
                format!("`{name}:` is a named argument, which only `count` and `sum` take"),
                *name_span,
            )),
        }
    }

    fn variable(&mut self, name: &str, span: Span) -> (Op, Ty) {
        if name == "run" {
            return self.error(
                ExprDiagnostic::new(
                    ExprErrorKind::Aggregate,
                    "`run` (a past run) can only be read in an aggregate's `where:` or `sum`'s field",
                    span,
                )
                .with_help(
                    "for example `count(within: \"24h\", where: run.payload.customer == payload.customer)`",
                ),
            );
        }
        let Some(var) = Var::from_name(name) else {
            let mut d = ExprDiagnostic::new(
                ExprErrorKind::UnknownVariable,
                format!("unknown variable `{name}`"),
                span,
            );
            let names = Var::ALL.map(Var::name);
            d = match closest(name, names) {
                Some(c) => d.with_help(format!("did you mean `{c}`?")),
                None => d.with_help(format!("the variables are {}", names.join(", "))),
            };
            if Func::from_name(name).is_some() {
                d = d.with_help(format!("`{name}` is a function: call it as `{name}(…)`"));
            }
            return self.error(d);
        };
        match var {
            // Fixed per action, so folded now: `action == "x"` costs nothing.
            Var::Action => (Op::Const(Value::string(self.scope.action)), Ty::Str),
            Var::Risk => (Op::Const(Value::string(self.scope.risk)), Ty::Str),
            Var::Payload => (
                Op::Path(Path {
                    root: var,
                    steps: Box::new([]),
                    span,
                }),
                Ty::Obj,
            ),
            Var::Now => (
                Op::Path(Path {
                    root: var,
                    steps: Box::new([]),
                    span,
                }),
                Ty::Time,
            ),
            Var::Actor | Var::Source | Var::Context => (
                Op::Path(Path {
                    root: var,
                    steps: Box::new([]),
                    span,
                }),
                Ty::Any,
            ),
        }
    }

    fn index(&mut self, base: &Node, index: &Node, span: Span) -> (Op, Ty) {
        let (base_op, base_ty) = self.node(base);
        let (index_op, index_ty) = self.node(index);
        let step = match index_op.as_const() {
            Some(Value::String(k)) => {
                if base_ty.known() && base_ty != Ty::Obj {
                    return self.error(ExprDiagnostic::new(
                        ExprErrorKind::Type,
                        format!(
                            "a string index needs an object, but this is {}",
                            base_ty.name()
                        ),
                        span,
                    ));
                }
                Some(Step::Key(k.as_str().into()))
            }
            Some(Value::Number(n)) => {
                let i = usize::try_from(n.normalize().mantissa())
                    .ok()
                    .filter(|_| n.fract().is_zero());
                match i {
                    Some(i) if n.fract().is_zero() => {
                        if base_ty.known() && base_ty != Ty::List {
                            return self.error(ExprDiagnostic::new(
                                ExprErrorKind::Type,
                                format!(
                                    "a number index needs a list, but this is {}",
                                    base_ty.name()
                                ),
                                span,
                            ));
                        }
                        Some(Step::Index(i))
                    }
                    _ => {
                        return self.error(ExprDiagnostic::new(
                            ExprErrorKind::Type,
                            format!("list index `{n}` must be a whole number of zero or more"),
                            index.span,
                        ));
                    }
                }
            }
            Some(other) => {
                return self.error(ExprDiagnostic::new(
                    ExprErrorKind::Type,
                    format!(
                        "an index must be a string or a number, not {}",
                        Ty::of(other).name()
                    ),
                    index.span,
                ));
            }
            None => {
                if !matches!(index_ty, Ty::Any | Ty::Str | Ty::Num) {
                    return self.error(ExprDiagnostic::new(
                        ExprErrorKind::Type,
                        format!(
                            "an index must be a string or a number, not {}",
                            index_ty.name()
                        ),
                        index.span,
                    ));
                }
                None
            }
        };
        let op = match (step, base_op) {
            (Some(step), Op::Path(mut p)) => {
                let mut steps = p.steps.into_vec();
                steps.push(step);
                p.steps = steps.into_boxed_slice();
                p.span = span;
                Op::Path(p)
            }
            (_, base_op) => Op::Index(Box::new(base_op), Box::new(index_op), span),
        };
        self.fold((op, Ty::Any), span)
    }

    fn call(&mut self, name: &str, name_span: Span, args: &[Node], span: Span) -> (Op, Ty) {
        if name == "count" || name == "sum" {
            return self.aggregate(name, args, span);
        }
        let Some(func) = Func::from_name(name) else {
            let mut d = ExprDiagnostic::new(
                ExprErrorKind::UnknownFunction,
                format!("unknown function `{name}`"),
                name_span,
            );
            let names = functions::NAMES.into_iter().chain(["count", "sum"]);
            d = match closest(name, names) {
                Some(c) => d.with_help(format!("did you mean `{c}`?")),
                None => d.with_help(format!(
                    "the functions are {}, count, sum",
                    functions::NAMES.join(", ")
                )),
            };
            return self.error(d);
        };
        let params = func.params();
        if args.len() != params.len() {
            let plural = if params.len() == 1 { "" } else { "s" };
            return self.error(ExprDiagnostic::new(
                ExprErrorKind::Arity,
                format!(
                    "`{name}` takes {} argument{plural}, but {} {} given",
                    params.len(),
                    args.len(),
                    if args.len() == 1 { "was" } else { "were" }
                ),
                span,
            ));
        }
        if func == Func::Has {
            return self.has(&args[0]);
        }
        let mut ops = Vec::with_capacity(args.len());
        for ((arg, accepted), position) in args.iter().zip(params).zip(1..) {
            let (op, ty) = self.node(arg);
            if ty.known() && !accepted.is_empty() && !accepted.contains(&ty) {
                let wanted: Vec<&str> = accepted.iter().map(|t| t.name()).collect();
                return self.error(ExprDiagnostic::new(
                    ExprErrorKind::Type,
                    format!(
                        "argument {position} of `{name}` must be {}, but this is {}",
                        wanted.join(" or "),
                        ty.name()
                    ),
                    arg.span,
                ));
            }
            ops.push(op);
        }
        match func {
            Func::Matches => {
                let pattern = match ops.pop() {
                    Some(Op::Const(Value::String(p))) => p,
                    _ => {
                        return self.error(
                            ExprDiagnostic::new(
                                ExprErrorKind::Regex,
                                "the pattern of `matches` must be a string literal",
                                args[1].span,
                            )
                            .with_help("patterns are compiled once when the policy loads"),
                        );
                    }
                };
                let regex = regex::RegexBuilder::new(&pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build();
                match (regex, ops.pop()) {
                    (Ok(re), Some(subject)) => self.fold(
                        (Op::Matches(Box::new(subject), Box::new(re), span), Ty::Bool),
                        span,
                    ),
                    (Err(e), _) => self.error(ExprDiagnostic::new(
                        ExprErrorKind::Regex,
                        format!("invalid regular expression: {}", first_line(&e.to_string())),
                        args[1].span,
                    )),
                    (Ok(_), None) => self.error(ExprDiagnostic::new(
                        ExprErrorKind::Arity,
                        "`matches` needs a subject",
                        span,
                    )),
                }
            }
            Func::Hour | Func::Weekday => {
                let tz_op = ops.pop();
                let subject = ops.pop();
                let tz = match tz_op {
                    Some(Op::Const(Value::String(name))) => match functions::parse_tz(&name) {
                        Ok(tz) => TzArg::Fixed(tz),
                        Err(msg) => {
                            return self.error(
                                ExprDiagnostic::new(ExprErrorKind::TimeZone, msg, args[1].span)
                                    .with_help("use an IANA name such as `Europe/Paris` or `UTC`"),
                            );
                        }
                    },
                    Some(other) => TzArg::Dynamic(Box::new(other)),
                    None => return (Op::Const(Value::Null), Ty::Any),
                };
                match subject {
                    Some(subject) => self.fold(
                        (Op::Clock(func, Box::new(subject), tz, span), Ty::Num),
                        span,
                    ),
                    None => (Op::Const(Value::Null), Ty::Any),
                }
            }
            _ => self.fold((Op::Call(func, ops, span), func.result()), span),
        }
    }

    /// `count(within: …, action: …, status: …, where: …)` and
    /// `sum(run.field, …)`: checked and described here; the value comes
    /// from the caller at evaluation.
    fn aggregate(&mut self, name: &str, args: &[Node], span: Span) -> (Op, Ty) {
        let mut positional = Vec::new();
        let mut named: Vec<(&str, Span, &Node)> = Vec::new();
        for arg in args {
            match &arg.kind {
                NodeKind::Named(n, ns, v) => named.push((n.as_str(), *ns, v)),
                _ if !named.is_empty() => {
                    return self.error(ExprDiagnostic::new(
                        ExprErrorKind::Aggregate,
                        format!("`{name}`'s positional argument must come before its named ones"),
                        arg.span,
                    ));
                }
                _ => positional.push(arg),
            }
        }
        let kind = if name == "sum" {
            let [field] = positional.as_slice() else {
                return self.error(
                    ExprDiagnostic::new(
                        ExprErrorKind::Arity,
                        format!(
                            "`sum` takes one field to add up, but {} were given",
                            positional.len()
                        ),
                        span,
                    )
                    .with_help("for example `sum(run.payload.amount, within: \"24h\")`"),
                );
            };
            match run_field(field) {
                Ok(f) => AggregateKind::Sum(f),
                Err(d) => return self.error(d),
            }
        } else {
            if let Some(first) = positional.first() {
                return self.error(
                    ExprDiagnostic::new(
                        ExprErrorKind::Arity,
                        "`count` takes only named arguments",
                        first.span,
                    )
                    .with_help("for example `count(within: \"24h\", where: run.actor == actor)`"),
                );
            }
            AggregateKind::Count
        };
        let mut within = None;
        let mut action = None;
        let mut statuses = None;
        let mut group = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (arg, arg_span, value) in named {
            if seen.contains(&arg) {
                return self.error(ExprDiagnostic::new(
                    ExprErrorKind::Aggregate,
                    format!("`{arg}:` is given twice"),
                    arg_span,
                ));
            }
            seen.push(arg);
            let outcome = match arg {
                "within" => window_arg(value).map(|w| within = Some(w)),
                "action" => action_arg(value).map(|a| action = Some(a)),
                "status" => status_arg(value).map(|s| statuses = Some(s)),
                "where" => self.where_arg(value, &mut group),
                other => {
                    let mut d = ExprDiagnostic::new(
                        ExprErrorKind::Aggregate,
                        format!("`{name}` has no argument `{other}:`"),
                        arg_span,
                    );
                    d = match closest(other, AGGREGATE_ARGS) {
                        Some(c) => d.with_help(format!("did you mean `{c}:`?")),
                        None => d.with_help("the arguments are within:, action:, status:, where:"),
                    };
                    Err(d)
                }
            };
            if let Err(d) = outcome {
                return self.error(d);
            }
        }
        let Some(within) = within else {
            return self.error(
                ExprDiagnostic::new(
                    ExprErrorKind::Aggregate,
                    format!("`{name}` needs a window: `within:`"),
                    span,
                )
                .with_help("for example `within: \"24h\"` (the runs of the last 24 hours)"),
            );
        };
        if !self.diagnostics.is_empty() {
            return (Op::Const(Value::Null), Ty::Any);
        }
        group.sort_by(|a: &(RunField, Op), b| a.0.cmp(&b.0));
        let text = self
            .scope
            .text
            .get(span.start..span.end)
            .unwrap_or_default();
        let key: Arc<str> = Arc::from(aggregate_key(text));
        if !self.aggregates.iter().any(|a| a.key == key) {
            self.aggregates.push(AggregateSpec {
                key: Arc::clone(&key),
                kind,
                action: action.unwrap_or_else(|| self.scope.action.to_owned()),
                within,
                statuses: statuses.unwrap_or_else(|| RunStatus::DEFAULT.to_vec()),
                group,
            });
        }
        (Op::Aggregate(key, span), Ty::Num)
    }

    /// `where:`: equalities `run.field == value` joined with `and`.
    fn where_arg(
        &mut self,
        node: &Node,
        group: &mut Vec<(RunField, Op)>,
    ) -> Result<(), ExprDiagnostic> {
        match &node.kind {
            NodeKind::Binary(BinOp::And, a, b) => {
                self.where_arg(a, group)?;
                self.where_arg(b, group)
            }
            NodeKind::Binary(BinOp::Eq, l, r) => {
                let (field, value) = match (run_field(l), run_field(r)) {
                    (Ok(f), _) if !mentions_run(r) => (f, r),
                    (_, Ok(f)) if !mentions_run(l) => (f, l),
                    (Err(d), _) if mentions_run(l) => return Err(d),
                    (_, Err(d)) if mentions_run(r) => return Err(d),
                    _ => return Err(where_shape(node.span)),
                };
                let (op, ty) = self.node(value);
                if matches!(ty, Ty::Time) {
                    return Err(ExprDiagnostic::new(
                        ExprErrorKind::Aggregate,
                        "a past run's field is never a timestamp",
                        value.span,
                    ));
                }
                group.push((field, op));
                Ok(())
            }
            _ => Err(where_shape(node.span)),
        }
    }

    fn has(&mut self, arg: &Node) -> (Op, Ty) {
        let (op, _) = self.node(arg);
        match op {
            Op::Path(p) if !p.steps.is_empty() => (Op::Has(p), Ty::Bool),
            _ => self.error(
                ExprDiagnostic::new(ExprErrorKind::Type, "`has` takes a field path", arg.span)
                    .with_help("for example `has(payload.customer.email)`"),
            ),
        }
    }

    fn unary(&mut self, op: UnOp, operand: &Node, span: Span) -> (Op, Ty) {
        let (inner, ty) = self.node(operand);
        match op {
            UnOp::Not => {
                if ty.known() && ty != Ty::Bool {
                    return self.error(ExprDiagnostic::new(
                        ExprErrorKind::Type,
                        format!("`not` needs a boolean, but this is {}", ty.name()),
                        operand.span,
                    ));
                }
                self.fold((Op::Not(Box::new(inner), span), Ty::Bool), span)
            }
            UnOp::Neg => {
                if ty.known() && ty != Ty::Num {
                    return self.error(ExprDiagnostic::new(
                        ExprErrorKind::Type,
                        format!("`-` needs a number, but this is {}", ty.name()),
                        operand.span,
                    ));
                }
                self.fold((Op::Neg(Box::new(inner), span), Ty::Num), span)
            }
        }
    }

    fn binary(&mut self, op: BinOp, lhs: &Node, rhs: &Node, span: Span) -> (Op, Ty) {
        let (l, lt) = self.node(lhs);
        let (r, rt) = self.node(rhs);
        let mismatch = |this: &mut Self, why: String| {
            this.error(ExprDiagnostic::new(ExprErrorKind::Type, why, span))
        };
        let both = lt.known() && rt.known();
        match op {
            BinOp::And | BinOp::Or => {
                for (ty, node) in [(lt, lhs), (rt, rhs)] {
                    if ty.known() && ty != Ty::Bool {
                        return self.error(ExprDiagnostic::new(
                            ExprErrorKind::Type,
                            format!(
                                "`{}` needs booleans, but this is {}",
                                op.symbol(),
                                ty.name()
                            ),
                            node.span,
                        ));
                    }
                }
                // `false and x` is false and `true or x` is true whatever x is.
                let absorbing = Value::Bool(op == BinOp::Or);
                if l.as_const() == Some(&absorbing) {
                    return (Op::Const(absorbing), Ty::Bool);
                }
                let built = if op == BinOp::And {
                    Op::And(Box::new(l), Box::new(r), span)
                } else {
                    Op::Or(Box::new(l), Box::new(r), span)
                };
                self.fold((built, Ty::Bool), span)
            }
            BinOp::Eq | BinOp::Ne => {
                if both && lt != rt && lt != Ty::Null && rt != Ty::Null {
                    return mismatch(
                        self,
                        format!(
                            "comparing {} with {} is always {}",
                            lt.name(),
                            rt.name(),
                            op == BinOp::Ne
                        ),
                    );
                }
                let built = if op == BinOp::Eq {
                    Op::Eq(Box::new(l), Box::new(r))
                } else {
                    Op::Ne(Box::new(l), Box::new(r))
                };
                self.fold((built, Ty::Bool), span)
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                for ty in [lt, rt] {
                    if ty.known() && !matches!(ty, Ty::Num | Ty::Str | Ty::Time) {
                        return mismatch(
                            self,
                            format!("`{}` cannot order {}", op.symbol(), ty.name()),
                        );
                    }
                }
                if both && lt != rt {
                    return mismatch(
                        self,
                        format!(
                            "`{}` cannot compare {} with {}",
                            op.symbol(),
                            lt.name(),
                            rt.name()
                        ),
                    );
                }
                self.fold(
                    (Op::Cmp(op, Box::new(l), Box::new(r), span), Ty::Bool),
                    span,
                )
            }
            BinOp::In => {
                if rt.known() && !matches!(rt, Ty::List | Ty::Obj | Ty::Str) {
                    return mismatch(
                        self,
                        format!(
                            "`in` needs a list, object or string on its right, but this is {}",
                            rt.name()
                        ),
                    );
                }
                if matches!(rt, Ty::Obj | Ty::Str) && lt.known() && lt != Ty::Str {
                    return mismatch(
                        self,
                        format!(
                            "`in` {} needs a string on its left, but this is {}",
                            rt.name(),
                            lt.name()
                        ),
                    );
                }
                if let Some(Value::List(items)) = r.as_const() {
                    if l.as_const().is_none() {
                        let set = const_set(items);
                        return (Op::InSet(Box::new(l), Box::new(set)), Ty::Bool);
                    }
                }
                self.fold((Op::In(Box::new(l), Box::new(r), span), Ty::Bool), span)
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let allowed: &[Ty] = if op == BinOp::Add {
                    &[Ty::Num, Ty::Str, Ty::List]
                } else {
                    &[Ty::Num]
                };
                for ty in [lt, rt] {
                    if ty.known() && !allowed.contains(&ty) {
                        return mismatch(
                            self,
                            format!("`{}` cannot be applied to {}", op.symbol(), ty.name()),
                        );
                    }
                }
                if both && lt != rt {
                    return mismatch(
                        self,
                        format!(
                            "`{}` cannot combine {} with {}",
                            op.symbol(),
                            lt.name(),
                            rt.name()
                        ),
                    );
                }
                let ty = if lt.known() { lt } else { rt };
                self.fold((Op::Arith(op, Box::new(l), Box::new(r), span), ty), span)
            }
        }
    }

    /// Evaluates an operation now when all its inputs are constants; an
    /// error found that way is reported at load (for example `1 / 0`).
    fn fold(&mut self, (op, ty): (Op, Ty), span: Span) -> (Op, Ty) {
        // After an error, operands may be placeholders: folding them would
        // only report follow-on noise.
        if !self.diagnostics.is_empty() || !all_inputs_const(&op) {
            return (op, ty);
        }
        let null = Value::Null;
        let none = Aggregates::new();
        let env = Env {
            actor: &null,
            payload: &null,
            source: &null,
            context: &null,
            now: &null,
            aggregates: &none,
        };
        match eval(&op, &env) {
            Ok(v) => {
                let v = v.into_owned();
                let ty = Ty::of(&v);
                (Op::Const(v), ty)
            }
            Err(e) => self.error(ExprDiagnostic::new(ExprErrorKind::Type, e.message, span)),
        }
    }
}

fn where_shape(span: Span) -> ExprDiagnostic {
    ExprDiagnostic::new(
        ExprErrorKind::Aggregate,
        "`where:` takes equalities `run.<field> == <value>` joined with `and`",
        span,
    )
    .with_help(
        "past runs are found through an index on these fields; for example \
         `where: run.payload.customer_id == payload.customer_id and run.actor == actor`",
    )
}

/// Whether `node` reads `run` anywhere.
fn mentions_run(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Ident(name) => name == "run",
        NodeKind::Literal(_) => false,
        NodeKind::List(items) | NodeKind::Call(_, _, items) => items.iter().any(mentions_run),
        NodeKind::Member(b, _) | NodeKind::Unary(_, b) | NodeKind::Named(_, _, b) => {
            mentions_run(b)
        }
        NodeKind::Index(a, b) | NodeKind::Binary(_, a, b) => mentions_run(a) || mentions_run(b),
    }
}

/// A field of a past run: `run.payload.a.b`, `run.payload["odd key"]`,
/// `run.actor`, `run.source.x`.
fn run_field(node: &Node) -> Result<RunField, ExprDiagnostic> {
    let mut steps = Vec::new();
    let mut at = node;
    loop {
        match &at.kind {
            NodeKind::Member(base, field) => {
                steps.push(field.clone());
                at = base;
            }
            NodeKind::Index(base, index) => match &index.kind {
                NodeKind::Literal(Value::String(k)) => {
                    steps.push(k.clone());
                    at = base;
                }
                _ => {
                    return Err(ExprDiagnostic::new(
                        ExprErrorKind::Aggregate,
                        "a past run's field is read with `.name` or `[\"name\"]` only",
                        index.span,
                    ));
                }
            },
            NodeKind::Ident(name) if name == "run" => break,
            _ => {
                return Err(ExprDiagnostic::new(
                    ExprErrorKind::Aggregate,
                    "expected a field of a past run, such as `run.payload.amount`",
                    node.span,
                ));
            }
        }
    }
    steps.reverse();
    let Some(first) = steps.first() else {
        return Err(ExprDiagnostic::new(
            ExprErrorKind::Aggregate,
            "`run` alone is not a field: use `run.payload.<field>`, `run.actor` or `run.source`",
            node.span,
        ));
    };
    let Some(root) = RunRoot::from_name(first) else {
        return Err(ExprDiagnostic::new(
            ExprErrorKind::Aggregate,
            format!("a past run has no `{first}`: it has payload, actor and source"),
            node.span,
        ));
    };
    steps.remove(0);
    if root == RunRoot::Actor && !steps.is_empty() {
        return Err(ExprDiagnostic::new(
            ExprErrorKind::Aggregate,
            "`run.actor` is a string and has no fields",
            node.span,
        ));
    }
    Ok(RunField { root, steps })
}

fn literal_string(node: &Node) -> Option<&str> {
    match &node.kind {
        NodeKind::Literal(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn window_arg(node: &Node) -> Result<std::time::Duration, ExprDiagnostic> {
    let bad = |message: String| {
        ExprDiagnostic::new(ExprErrorKind::Aggregate, message, node.span)
            .with_help("a window is a string such as \"1h\", \"24h\", \"7d\" or \"1d12h\"")
    };
    let Some(text) = literal_string(node) else {
        return Err(bad("`within:` must be a string literal".to_owned()));
    };
    match parse_window(text) {
        Some(w) if w <= MAX_WINDOW => Ok(w),
        Some(_) => Err(bad(format!(
            "the window `{text}` is longer than the longest allowed, 366d"
        ))),
        None => Err(bad(format!("`{text}` is not a window"))),
    }
}

fn action_arg(node: &Node) -> Result<String, ExprDiagnostic> {
    let valid = |s: &str| {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
            && s.len() <= 128
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
    };
    match literal_string(node) {
        Some(a) if valid(a) => Ok(a.to_owned()),
        Some(a) => Err(ExprDiagnostic::new(
            ExprErrorKind::Aggregate,
            format!("`{a}` is not a valid action name"),
            node.span,
        )),
        None => Err(ExprDiagnostic::new(
            ExprErrorKind::Aggregate,
            "`action:` must be a string literal naming an action",
            node.span,
        )),
    }
}

fn status_arg(node: &Node) -> Result<Vec<RunStatus>, ExprDiagnostic> {
    let names: Vec<&Node> = match &node.kind {
        NodeKind::List(items) if !items.is_empty() => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::new();
    for n in names {
        let Some(name) = literal_string(n) else {
            return Err(ExprDiagnostic::new(
                ExprErrorKind::Aggregate,
                "`status:` must be a string or a list of strings",
                n.span,
            ));
        };
        if name == "any" {
            out.extend(RunStatus::ALL);
            continue;
        }
        let Some(status) = RunStatus::from_name(name) else {
            let all = RunStatus::ALL.map(RunStatus::name);
            let mut d = ExprDiagnostic::new(
                ExprErrorKind::Aggregate,
                format!("`{name}` is not a run status"),
                n.span,
            );
            d = match closest(name, all) {
                Some(c) => d.with_help(format!("did you mean `{c}`?")),
                None => d.with_help(format!("the statuses are {}, and any", all.join(", "))),
            };
            return Err(d);
        };
        out.push(status);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn first_line(s: &str) -> String {
    s.lines()
        .filter(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_owned())
        .next()
        .unwrap_or_else(|| s.lines().last().unwrap_or_default().trim().to_owned())
}

fn all_inputs_const(op: &Op) -> bool {
    let c = |o: &Op| o.as_const().is_some();
    match op {
        Op::Const(_) | Op::Path(_) | Op::Has(_) | Op::InSet(..) | Op::Aggregate(..) => false,
        Op::Member(b, _, _) | Op::Not(b, _) | Op::Neg(b, _) | Op::Matches(b, _, _) => c(b),
        Op::Index(a, b, _)
        | Op::And(a, b, _)
        | Op::Or(a, b, _)
        | Op::Eq(a, b)
        | Op::Ne(a, b)
        | Op::Cmp(_, a, b, _)
        | Op::In(a, b, _)
        | Op::Arith(_, a, b, _) => c(a) && c(b),
        Op::List(items) | Op::Call(_, items, _) => items.iter().all(c),
        Op::Clock(_, a, tz, _) => {
            c(a) && match tz {
                TzArg::Fixed(_) => true,
                TzArg::Dynamic(t) => c(t),
            }
        }
    }
}

fn const_set(items: &[Value]) -> ConstSet {
    let mut set = ConstSet {
        strings: Vec::new(),
        numbers: Vec::new(),
        others: Vec::new(),
    };
    for item in items {
        match item {
            Value::String(s) => set.strings.push(s.clone()),
            Value::Number(n) => set.numbers.push(*n),
            other => set.others.push(other.clone()),
        }
    }
    set.strings.sort();
    set.strings.dedup();
    set.numbers.sort();
    set.numbers.dedup();
    set
}
