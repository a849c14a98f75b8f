//! Policy diagnostics: every problem located as `file:line:col`, with the
//! offending span underlined when rendered by miette.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};

/// A policy or test file, kept in memory so diagnostics can quote it.
#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps a file's text.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// The path as given to the loader.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, col)
    }

    /// Byte offset of a 1-based line and character column.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        self.text[start..]
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    /// Maps a byte range of a YAML scalar's *value* to a byte range of the
    /// file, given where the scalar starts. Plain, quoted and block scalars
    /// are aligned character by character, skipping quotes, escapes and
    /// indentation; where alignment fails the scalar's start is used.
    pub(crate) fn map_scalar_span(
        &self,
        scalar_start: usize,
        value: &str,
        range: (usize, usize),
    ) -> (usize, usize) {
        let map = align(&self.text, scalar_start, value);
        let start = map.get(range.0).copied().unwrap_or(scalar_start);
        let end = map.get(range.1).copied().unwrap_or(start).max(start);
        (start, end)
    }
}

fn align(src: &str, start: usize, value: &str) -> Vec<usize> {
    let mut map = vec![start; value.len() + 1];
    let mut s = start.min(src.len());
    if matches!(src.as_bytes().get(s), Some(b'"' | b'\'')) && !value.starts_with(['"', '\'']) {
        s += 1;
    }
    for (vi, ch) in value.char_indices() {
        let mut probe = s;
        let mut found = None;
        while let Some(sc) = src.get(probe..).and_then(|r| r.chars().next()) {
            if sc == ch {
                found = Some(probe);
                break;
            }
            if probe - s > 64 || !(sc.is_whitespace() || matches!(sc, '\\' | '\'' | '"' | '#')) {
                break;
            }
            probe += sc.len_utf8();
        }
        let at = found.unwrap_or(s);
        for slot in &mut map[vi..vi + ch.len_utf8()] {
            *slot = at;
        }
        if let Some(p) = found {
            s = p + ch.len_utf8();
        }
    }
    map[value.len()] = s;
    map
}

/// What kind of problem a [`PolicyDiagnostic`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// A file could not be read.
    Io,
    /// The YAML is malformed or does not fit the policy schema.
    Yaml,
    /// A field has a value outside its allowed set.
    InvalidValue,
    /// An action, approver group, member or rule declared twice.
    Duplicate,
    /// A reference to an approver group that does not exist.
    UnknownGroup,
    /// An expression problem (syntax, unknown name, type, regex, limits).
    Expression(crate::expr::ExprErrorKind),
    /// A CEL expression problem.
    Cel,
    /// A policy test file problem.
    Test,
    /// No policy files were found.
    Empty,
}

impl DiagnosticKind {
    fn code(self) -> &'static str {
        use crate::expr::ExprErrorKind as E;
        match self {
            DiagnosticKind::Io => "countersign::io",
            DiagnosticKind::Yaml => "countersign::yaml",
            DiagnosticKind::InvalidValue => "countersign::invalid_value",
            DiagnosticKind::Duplicate => "countersign::duplicate",
            DiagnosticKind::UnknownGroup => "countersign::unknown_group",
            DiagnosticKind::Expression(E::Syntax) => "countersign::expr::syntax",
            DiagnosticKind::Expression(E::UnknownVariable) => "countersign::expr::unknown_variable",
            DiagnosticKind::Expression(E::UnknownFunction) => "countersign::expr::unknown_function",
            DiagnosticKind::Expression(E::Arity) => "countersign::expr::arity",
            DiagnosticKind::Expression(E::Type) => "countersign::expr::type",
            DiagnosticKind::Expression(E::Regex) => "countersign::expr::regex",
            DiagnosticKind::Expression(E::TimeZone) => "countersign::expr::time_zone",
            DiagnosticKind::Expression(E::Literal) => "countersign::expr::literal",
            DiagnosticKind::Expression(E::Limit) => "countersign::expr::limit",
            DiagnosticKind::Expression(E::Aggregate) => "countersign::expr::aggregate",
            DiagnosticKind::Cel => "countersign::cel",
            DiagnosticKind::Test => "countersign::test",
            DiagnosticKind::Empty => "countersign::empty",
        }
    }
}

/// One problem in a policy set, located in its file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PolicyDiagnostic {
    kind: DiagnosticKind,
    message: String,
    file: Option<Arc<SourceFile>>,
    span: Option<(usize, usize)>,
    label: Option<String>,
    help: Option<String>,
    named_source: Option<NamedSource<Arc<str>>>,
}

/// Where a diagnostic points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as given to the loader.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

impl PolicyDiagnostic {
    pub(crate) fn new(kind: DiagnosticKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            file: None,
            span: None,
            label: None,
            help: None,
            named_source: None,
        }
    }

    /// A problem found by a caller's own rule about a loaded policy set
    /// (the gate's allow-list of Teams URLs), pointing at `span`, a byte
    /// range of the file at `path` whose text is `text`.
    pub fn rejected_at(
        path: impl Into<PathBuf>,
        text: impl Into<Arc<str>>,
        span: (usize, usize),
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        let file = Arc::new(SourceFile::new(path, text));
        Self::new(DiagnosticKind::InvalidValue, message)
            .at(&file, span)
            .help(help)
    }

    /// A problem found by a caller's own rule, with no place to point at.
    pub fn rejected(message: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(DiagnosticKind::InvalidValue, message).help(help)
    }

    /// Points the diagnostic at a byte range of a file.
    pub(crate) fn at(mut self, file: &Arc<SourceFile>, span: (usize, usize)) -> Self {
        self.named_source = Some(NamedSource::new(
            file.path().display().to_string(),
            Arc::clone(&file.text),
        ));
        self.file = Some(Arc::clone(file));
        self.span = Some(span);
        self
    }

    pub(crate) fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn set_label(&mut self, label: impl Into<String>) -> &mut Self {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn set_help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> DiagnosticKind {
        self.kind
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The help text, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The underlined byte range in the file, if any.
    pub fn span(&self) -> Option<(usize, usize)> {
        self.span
    }

    /// The text under the underline.
    pub fn snippet(&self) -> Option<&str> {
        let (s, e) = self.span?;
        self.file.as_ref()?.text().get(s..e)
    }

    /// `file:line:col` of the start of the span.
    pub fn location(&self) -> Option<Location> {
        let file = self.file.as_ref()?;
        let (line, column) = file.line_col(self.span.map_or(0, |s| s.0));
        Some(Location {
            file: file.path().to_owned(),
            line,
            column,
        })
    }

    /// `file:line:col: message`, for logs and one-line output.
    pub fn to_plain(&self) -> String {
        match self.location() {
            Some(loc) => format!("{loc}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

impl miette::Diagnostic for PolicyDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.named_source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (s, e) = self.span?;
        let label = self.label.clone().unwrap_or_else(|| "here".to_owned());
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(
                Some(label),
                (
                    s,
                    e.saturating_sub(s).max(usize::from(
                        e == s && s < self.file.as_ref().map_or(0, |f| f.text().len()),
                    )),
                ),
            ),
        )))
    }
}

/// Everything wrong with a policy set. Loading reports all problems at
/// once, not just the first.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the policy set is invalid ({} problem{})", .diagnostics.len(), if .diagnostics.len() == 1 { "" } else { "s" })]
pub struct PolicyError {
    diagnostics: Vec<PolicyDiagnostic>,
}

impl PolicyError {
    pub(crate) fn new(diagnostics: Vec<PolicyDiagnostic>) -> Self {
        Self { diagnostics }
    }

    /// Wraps diagnostics collected elsewhere.
    pub fn from_diagnostics(diagnostics: Vec<PolicyDiagnostic>) -> Self {
        Self { diagnostics }
    }

    /// Each problem found.
    pub fn diagnostics(&self) -> &[PolicyDiagnostic] {
        &self.diagnostics
    }
}

impl miette::Diagnostic for PolicyError {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        Some(Box::new(
            self.diagnostics
                .iter()
                .map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let f = SourceFile::new("a.yaml", "ab\ncdé\nx");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(7), (2, 4));
        assert_eq!(f.line_col(8), (3, 1));
        assert_eq!(f.offset_of(2, 3), 5);
    }

    #[test]
    fn aligns_plain_quoted_and_block_scalars() {
        let src = "when: payload.a > 5\nq: \"x == \\\"y\\\" and z\"\nb: |\n  a and\n  bad\n";
        let f = SourceFile::new("a.yaml", src);
        // plain: `a` of payload.a
        let (s, _) = f.map_scalar_span(6, "payload.a > 5", (8, 9));
        assert_eq!(&src[s..s + 1], "a");
        // double quoted with escapes: `z`
        let q = src.find('"').unwrap_or(0);
        let (s, _) = f.map_scalar_span(q, "x == \"y\" and z", (13, 14));
        assert_eq!(&src[s..s + 1], "z");
        // block literal: `bad` on the second line
        let b = src.find("  a and").unwrap_or(0) + 2;
        let (s, e) = f.map_scalar_span(b, "a and\nbad\n", (6, 9));
        assert_eq!(&src[s..e], "bad");
    }
}
