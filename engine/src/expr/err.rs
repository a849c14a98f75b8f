//! Errors found while parsing or compiling an expression, and errors raised
//! while evaluating one.

use super::ast::Span;

/// What kind of problem an expression diagnostic reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A name that is not one of the request variables.
    UnknownVariable,
    /// A call to a function the language does not have.
    UnknownFunction,
    /// A call with the wrong number of arguments.
    Arity,
    /// An operator or function applied to values of the wrong type, known at load.
    Type,
    /// A regular expression that does not compile.
    Regex,
    /// A time zone name that is not in the IANA database.
    TimeZone,
    /// A literal that cannot be represented (number range, escape).
    Literal,
    /// The expression is too long or too deeply nested.
    Limit,
    /// A malformed aggregate (`count`, `sum`): its window, action, status
    /// or `where:`, a misplaced named argument, or `run` outside one.
    Aggregate,
}

/// A problem in one expression, located by a byte span of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprDiagnostic {
    /// What kind of problem.
    pub kind: ExprErrorKind,
    /// One line saying what is wrong.
    pub message: String,
    /// Where, in the expression text.
    pub span: Span,
    /// The text under the underline, when different from the message.
    pub label: Option<String>,
    /// How to fix it, when we can tell.
    pub help: Option<String>,
}

impl ExprDiagnostic {
    pub(crate) fn new(kind: ExprErrorKind, message: impl Into<String>, span: Span) -> Self {
        Self {
            kind,
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// Why an expression could not be evaluated for a request (a missing field,
/// a type mismatch, an overflow). The rule then counts as matched with the
/// action's `on_error` decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub(crate) message: String,
    pub(crate) span: Span,
}

impl EvalError {
    pub(crate) fn new(message: impl Into<String>, span: Span) -> Self {
        Self {
            message: message.into(),
            span,
        }
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The closest candidate to `name` by edit distance, for "did you mean" help.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
