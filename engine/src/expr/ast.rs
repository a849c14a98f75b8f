//! The syntax tree the parser produces and the compiler consumes.

use crate::value::Value;

/// A byte range in the expression text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    pub(crate) fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A request variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    /// The action name.
    Action,
    /// Who proposes the action.
    Actor,
    /// The action's payload (an object).
    Payload,
    /// Where the request came from (any JSON).
    Source,
    /// What the surface the request came through adds about it (an object
    /// such as `{"mcp": {"server": …, "tool": …}}`; null when none).
    Context,
    /// The action's declared risk.
    Risk,
    /// The evaluation instant.
    Now,
}

impl Var {
    /// Every variable, for "did you mean" hints and documentation.
    pub const ALL: [Var; 7] = [
        Var::Action,
        Var::Actor,
        Var::Payload,
        Var::Source,
        Var::Context,
        Var::Risk,
        Var::Now,
    ];

    /// The variable's name in expressions.
    pub fn name(self) -> &'static str {
        match self {
            Var::Action => "action",
            Var::Actor => "actor",
            Var::Payload => "payload",
            Var::Source => "source",
            Var::Context => "context",
            Var::Risk => "risk",
            Var::Now => "now",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// `not`, `!`
    Not,
    /// `-`
    Neg,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `or`, `||`
    Or,
    /// `and`, `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// Where it is in the expression text.
    pub span: Span,
}

/// The kinds of syntax nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A literal number, string, boolean or null.
    Literal(Value),
    /// A variable reference (still unresolved: the compiler checks the name).
    Ident(String),
    /// `[a, b, c]`
    List(Vec<Node>),
    /// `base.field`
    Member(Box<Node>, String),
    /// `base[index]`
    Index(Box<Node>, Box<Node>),
    /// `name(args…)`; the span of the name is kept for diagnostics.
    Call(String, Span, Vec<Node>),
    /// A prefix operator.
    Unary(UnOp, Box<Node>),
    /// An infix operator.
    Binary(BinOp, Box<Node>, Box<Node>),
    /// A named argument of a call, `name: value` (only ever a call's
    /// argument); the span of the name is kept for diagnostics.
    Named(String, Span, Box<Node>),
}

impl Node {
    /// The payload paths this expression reads (see
    /// [`CompiledExpr::payload_paths`](crate::CompiledExpr::payload_paths)).
    pub(crate) fn payload_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths(&self, out: &mut Vec<String>) {
        if let Some(path) = self.payload_path() {
            let path = path.join(".");
            if !path.is_empty() && !out.contains(&path) {
                out.push(path);
            }
            return;
        }
        match &self.kind {
            NodeKind::Literal(_) | NodeKind::Ident(_) => {}
            NodeKind::List(items) | NodeKind::Call(_, _, items) => {
                items.iter().for_each(|n| n.collect_paths(out));
            }
            NodeKind::Member(base, _) | NodeKind::Unary(_, base) | NodeKind::Named(_, _, base) => {
                base.collect_paths(out)
            }
            NodeKind::Index(a, b) | NodeKind::Binary(_, a, b) => {
                a.collect_paths(out);
                b.collect_paths(out);
            }
        }
    }

    /// `payload.a.b` or `payload["a"]` as its segments; `None` for
    /// anything else.
    fn payload_path(&self) -> Option<Vec<String>> {
        match &self.kind {
            NodeKind::Ident(name) if name == "payload" => Some(Vec::new()),
            NodeKind::Member(base, field) => {
                let mut p = base.payload_path()?;
                p.push(field.clone());
                Some(p)
            }
            NodeKind::Index(base, idx) => {
                let mut p = base.payload_path()?;
                match &idx.kind {
                    NodeKind::Literal(Value::String(s)) => p.push(s.clone()),
                    NodeKind::Literal(Value::Number(n)) => p.push(n.to_string()),
                    _ => return None,
                }
                Some(p)
            }
            _ => None,
        }
    }

    /// A canonical spelling: fully parenthesized, numbers normalized
    /// (`1000.00` → `1000`), strings in double quotes, `&&` as `and`,
    /// `a["b"]` as `a.b`. Two conditions that differ only in layout or
    /// spelling have the same canonical text, which is what the policy
    /// version hashes.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.write_canonical(&mut out);
        out
    }

    fn write_canonical(&self, out: &mut String) {
        match &self.kind {
            NodeKind::Literal(v) => out.push_str(&v.to_json()),
            NodeKind::Ident(name) => out.push_str(name),
            NodeKind::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_canonical(out);
                }
                out.push(']');
            }
            NodeKind::Member(base, field) => {
                base.write_canonical(out);
                write_key(field, out);
            }
            NodeKind::Index(base, index) => {
                base.write_canonical(out);
                match &index.kind {
                    NodeKind::Literal(Value::String(k)) => write_key(k, out),
                    _ => {
                        out.push('[');
                        index.write_canonical(out);
                        out.push(']');
                    }
                }
            }
            NodeKind::Call(name, _, args) => {
                out.push_str(name);
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    a.write_canonical(out);
                }
                out.push(')');
            }
            NodeKind::Unary(op, x) => {
                out.push_str(match op {
                    UnOp::Not => "(not ",
                    UnOp::Neg => "(-",
                });
                x.write_canonical(out);
                out.push(')');
            }
            NodeKind::Named(name, _, value) => {
                out.push_str(name);
                out.push_str(": ");
                value.write_canonical(out);
            }
            NodeKind::Binary(op, a, b) => {
                out.push('(');
                a.write_canonical(out);
                out.push(' ');
                out.push_str(op.symbol());
                out.push(' ');
                b.write_canonical(out);
                out.push(')');
            }
        }
    }
}

fn write_key(key: &str, out: &mut String) {
    let mut chars = key.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        out.push('.');
        out.push_str(key);
    } else {
        out.push('[');
        crate::value::write_json_string(key, out);
        out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use crate::expr::parser::parse;

    #[test]
    fn canonical_text_ignores_spelling_and_layout() {
        let c = |s: &str| parse(s).unwrap().canonical();
        assert_eq!(
            c("payload.a>1000.00&&payload['b']=='EUR'"),
            c("payload.a > 1000 and\n payload.b == \"EUR\"")
        );
        assert_eq!(c("not (x)"), c("!x"));
        assert_ne!(c("payload.a > 1000"), c("payload.a >= 1000"));
        assert_ne!(c("a or b and c"), c("(a or b) and c"));
        assert_eq!(c(r#"payload["odd key"]"#), r#"payload["odd key"]"#);
    }
}
