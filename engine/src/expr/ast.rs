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
    /// The action's declared risk.
    Risk,
    /// The evaluation instant.
    Now,
}

impl Var {
    /// Every variable, for "did you mean" hints and documentation.
    pub const ALL: [Var; 6] = [
        Var::Action,
        Var::Actor,
        Var::Payload,
        Var::Source,
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
}
