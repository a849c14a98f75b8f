//! The state shared while building a policy set: the diagnostics found so
//! far, and helpers that add located ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::expr::err::closest;
use crate::policy::diagnostic::{DiagnosticKind, PolicyDiagnostic, SourceFile};
use crate::policy::files::span_of;
use crate::policy::model::{ApproverGroup, MAX_TIMEOUT, Origin, Verdict, parse_duration};

/// What every action of one file is built against.
pub(super) struct FileScope<'a> {
    pub file: &'a Arc<SourceFile>,
    /// The file's `on_error`, if it sets one.
    pub on_error: Option<Verdict>,
    pub groups: &'a [ApproverGroup],
    pub group_index: &'a HashMap<String, usize>,
}

impl FileScope<'_> {
    /// Resolves a group name, reporting an unknown one.
    pub(super) fn group(&self, l: &mut Loader, name: &Spanned<String>) -> Option<usize> {
        let found = self.group_index.get(&name.value).copied();
        if found.is_none() {
            unknown_group(l, self.file, name, self.group_index);
        }
        found
    }
}

pub(super) fn origin<T>(file: &Arc<SourceFile>, s: &Spanned<T>) -> Origin {
    Origin {
        file: Arc::from(file.path()),
        line: s.referenced.line() as usize,
        column: s.referenced.column() as usize,
    }
}

pub(super) struct Loader {
    pub diags: Vec<PolicyDiagnostic>,
}

impl Loader {
    pub(super) fn err(
        &mut self,
        kind: DiagnosticKind,
        file: &Arc<SourceFile>,
        span: (usize, usize),
        message: impl Into<String>,
    ) -> &mut PolicyDiagnostic {
        self.diags
            .push(PolicyDiagnostic::new(kind, message).at(file, span));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    pub(super) fn duration(
        &mut self,
        file: &Arc<SourceFile>,
        s: &Spanned<String>,
        what: &str,
    ) -> Option<Duration> {
        match parse_duration(&s.value) {
            Some(d) if d > Duration::ZERO && d <= MAX_TIMEOUT => Some(d),
            Some(_) => {
                self.err(
                    DiagnosticKind::InvalidValue,
                    file,
                    span_of(file, s),
                    format!("{what} must be more than zero and at most 365d"),
                )
                .set_label("out of range");
                None
            }
            None => {
                self.err(
                    DiagnosticKind::InvalidValue,
                    file,
                    span_of(file, s),
                    format!("`{}` is not a duration", s.value),
                )
                .set_help("write a number and a unit: `30m`, `24h`, `7d`, or `1h30m`");
                None
            }
        }
    }

    pub(super) fn verdict(
        &mut self,
        file: &Arc<SourceFile>,
        s: &Spanned<String>,
    ) -> Option<Verdict> {
        let v = Verdict::parse(&s.value);
        if v.is_none() {
            let mut d = PolicyDiagnostic::new(
                DiagnosticKind::InvalidValue,
                format!("unknown decision `{}`", s.value),
            )
            .at(file, span_of(file, s))
            .label("not a decision");
            d = match closest(&s.value, ["allow", "require_approval", "block"]) {
                Some(c) => d.help(format!(
                    "did you mean `{c}`? decisions are allow, require_approval, block"
                )),
                None => d.help("decisions are allow, require_approval, block"),
            };
            self.diags.push(d);
        }
        v
    }
}

pub(super) fn unknown_group(
    l: &mut Loader,
    file: &Arc<SourceFile>,
    name: &Spanned<String>,
    index: &HashMap<String, usize>,
) {
    let mut d = PolicyDiagnostic::new(
        DiagnosticKind::UnknownGroup,
        format!("unknown approver group `{}`", name.value),
    )
    .at(file, span_of(file, name))
    .label("no group has this name");
    let mut known: Vec<&str> = index.keys().map(String::as_str).collect();
    known.sort_unstable();
    d = match closest(&name.value, known.iter().copied()) {
        Some(c) => d.help(format!("did you mean `{c}`?")),
        None if known.is_empty() => d.help("declare it under `approvers:` in a policy file"),
        None => d.help(format!("the groups are {}", known.join(", "))),
    };
    l.diags.push(d);
}
