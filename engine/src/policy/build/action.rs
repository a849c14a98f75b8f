//! One action: its risk, approvers, default and on_error, and its rules.

use serde_saphyr::Spanned;

use super::loader::{FileScope, Loader, origin};
use super::rule;
use crate::policy::diagnostic::DiagnosticKind;
use crate::policy::diagnostic::PolicyDiagnostic;
use crate::policy::files::span_of;
use crate::policy::model::{Action, Risk, Rule, Verdict};
use crate::policy::raw::RawAction;
use crate::policy::summary::SummaryTemplate;

pub(super) fn action(
    l: &mut Loader,
    scope: &FileScope<'_>,
    name: &Spanned<String>,
    a: &RawAction,
) -> Option<Action> {
    let file = scope.file;
    let before = l.diags.len();
    let risk = match &a.risk {
        Some(r) => match Risk::parse(&r.value) {
            Some(risk) => risk,
            None => {
                l.err(
                    DiagnosticKind::InvalidValue,
                    file,
                    span_of(file, r),
                    format!("unknown risk `{}`", r.value),
                )
                .set_help("risk is one of low, medium, high, critical");
                Risk::Medium
            }
        },
        None => Risk::Medium,
    };
    let approvers = a.approvers.as_ref().and_then(|g| scope.group(l, g));
    let summary = a.summary.as_ref().and_then(|t| summary(l, scope, t));
    let default = a.default.as_ref().and_then(|d| l.verdict(file, d));
    let on_error = a
        .on_error
        .as_ref()
        .and_then(|d| l.verdict(file, d))
        .or(scope.on_error)
        .unwrap_or(Verdict::Block);
    let needs_group = |l: &mut Loader, v: Verdict, at: (usize, usize), what: &str| {
        if v == Verdict::RequireApproval && approvers.is_none() {
            l.err(
                DiagnosticKind::UnknownGroup,
                file,
                at,
                format!(
                    "{what} requires approval, but action `{}` names no approvers",
                    name.value
                ),
            )
            .set_help("add `approvers: <group>` to the action (or to the rule)");
        }
    };
    if let (Some(v), Some(s)) = (default, &a.default) {
        needs_group(l, v, span_of(file, s), "its default");
    }
    if let Some(s) = &a.on_error {
        needs_group(l, on_error, span_of(file, s), "its on_error");
    } else if on_error == Verdict::RequireApproval {
        needs_group(l, on_error, span_of(file, name), "the file's on_error");
    }

    let mut rules: Vec<Rule> = Vec::new();
    for r in &a.rules {
        if rules.iter().any(|x| x.name == r.name.value) {
            l.err(
                DiagnosticKind::Duplicate,
                file,
                span_of(file, &r.name),
                format!(
                    "rule `{}` is declared twice in action `{}`",
                    r.name.value, name.value
                ),
            )
            .set_label("declared again here");
            continue;
        }
        if let Some(rule) = rule::rule(l, scope, &name.value, risk, r, approvers) {
            rules.push(rule);
        }
    }
    if l.diags.len() > before {
        return None;
    }
    let default_v = default.unwrap_or(Verdict::Block);
    let default_reason = if default.is_some() {
        format!(
            "no rule matched; `{}` defaults to {}",
            name.value, default_v
        )
    } else {
        format!(
            "no rule matched and `{}` has no default, so it is blocked",
            name.value
        )
    };
    Some(Action {
        name: name.value.clone(),
        description: a.description.clone(),
        summary,
        risk,
        approvers,
        rules,
        default: default_v,
        default_declared: default.is_some(),
        on_error,
        default_reason,
        origin: origin(file, name),
    })
}

/// The action's `summary:` template, checked; a problem is located inside
/// the YAML scalar.
fn summary(l: &mut Loader, scope: &FileScope<'_>, t: &Spanned<String>) -> Option<SummaryTemplate> {
    match SummaryTemplate::parse(&t.value) {
        Ok(s) => Some(s),
        Err(e) => {
            let file = scope.file;
            let start = span_of(file, t).0;
            let span = file.map_scalar_span(start, &t.value, e.span);
            l.diags.push(
                PolicyDiagnostic::new(DiagnosticKind::InvalidValue, e.message)
                    .at(file, span)
                    .label("here")
                    .help(e.help),
            );
            None
        }
    }
}
