//! One rule: its name, decision, mode, approvers and condition, checked and
//! compiled.

use std::sync::Arc;

use super::group::check_quorum;
use super::loader::{FileScope, Loader, origin};
use crate::expr::CompiledExpr;
use crate::expr::cel::CelCondition;
use crate::policy::diagnostic::{DiagnosticKind, PolicyDiagnostic, SourceFile};
use crate::policy::files::span_of;
use crate::policy::model::{Condition, Mode, Risk, Rule, Verdict};
use crate::policy::raw::RawRule;

/// Builds one rule of `action`, or `None` when it has problems (all of them
/// reported).
pub(super) fn rule(
    l: &mut Loader,
    scope: &FileScope<'_>,
    action: &str,
    risk: Risk,
    r: &RawRule,
    action_group: Option<usize>,
) -> Option<Rule> {
    let file = scope.file;
    let before = l.diags.len();
    if r.name.value.trim().is_empty() {
        l.err(
            DiagnosticKind::InvalidValue,
            file,
            span_of(file, &r.name),
            "a rule name cannot be empty",
        );
    }
    let decision = l.verdict(file, &r.decision);
    let mode = mode(l, file, r);
    let rule_group = r.approvers.as_ref().and_then(|g| scope.group(l, g));
    check_approval(l, scope, action, r, decision, rule_group.or(action_group));
    let condition = condition(l, file, action, risk, r);
    if l.diags.len() > before {
        return None;
    }
    let decision = decision?;
    Some(Rule {
        name: r.name.value.clone(),
        description: r.description.clone(),
        condition,
        decision,
        reason: reason(r, decision),
        quorum: r.quorum.as_ref().map(|q| q.value),
        approvers: rule_group,
        mode,
        origin: origin(file, &r.name),
    })
}

fn mode(l: &mut Loader, file: &Arc<SourceFile>, r: &RawRule) -> Mode {
    match &r.mode {
        None => Mode::Enforce,
        Some(m) if m.value == "enforce" => Mode::Enforce,
        Some(m) if m.value == "shadow" => Mode::Shadow,
        Some(m) => {
            l.err(
                DiagnosticKind::InvalidValue,
                file,
                span_of(file, m),
                format!("unknown mode `{}`", m.value),
            )
            .set_help("mode is `enforce` (the default) or `shadow`");
            Mode::Enforce
        }
    }
}

/// A quorum only on rules that require approval, and never above the size
/// of the group asked; a rule that requires approval needs a group.
fn check_approval(
    l: &mut Loader,
    scope: &FileScope<'_>,
    action: &str,
    r: &RawRule,
    decision: Option<Verdict>,
    group: Option<usize>,
) {
    let file = scope.file;
    if let Some(q) = &r.quorum {
        if decision.is_some_and(|d| d != Verdict::RequireApproval) {
            l.err(
                DiagnosticKind::InvalidValue,
                file,
                span_of(file, q),
                "quorum only applies to rules that require approval",
            )
            .set_label("unused");
        }
        let members = group.map_or(0, |g| scope.groups[g].members.len());
        check_quorum(
            l,
            file,
            q,
            members,
            group.map_or("", |g| scope.groups[g].name.as_str()),
        );
    }
    if decision == Some(Verdict::RequireApproval) && group.is_none() && r.approvers.is_none() {
        l.err(
            DiagnosticKind::UnknownGroup,
            file,
            span_of(file, &r.decision),
            format!(
                "rule `{}` requires approval, but action `{action}` names no approvers",
                r.name.value
            ),
        )
        .set_help("add `approvers: <group>` to the action or to the rule");
    }
}

/// The rule's condition, compiled; `Condition::Always` when it has none or
/// when it has problems (then reported).
fn condition(
    l: &mut Loader,
    file: &Arc<SourceFile>,
    action: &str,
    risk: Risk,
    r: &RawRule,
) -> Condition {
    match (&r.when, &r.when_cel) {
        (Some(_), Some(cel)) => {
            l.err(
                DiagnosticKind::InvalidValue,
                file,
                span_of(file, cel),
                "a rule has at most one of `when` and `when_cel`",
            )
            .set_label("second condition");
            Condition::Always
        }
        (Some(w), None) | (None, Some(w))
            if w.value.as_deref().is_none_or(|t| t.trim().is_empty()) =>
        {
            let key = if r.when.is_some() { "when" } else { "when_cel" };
            empty_condition(l, file, key, w);
            Condition::Always
        }
        (Some(w), None) => when_condition(l, file, action, risk, w),
        (None, Some(c)) => cel_condition(l, file, c),
        (None, None) => Condition::Always,
    }
}

type Scalar = serde_saphyr::Spanned<Option<String>>;

fn empty_condition(l: &mut Loader, file: &Arc<SourceFile>, key: &str, w: &Scalar) {
    let mut at = span_of(file, w);
    if w.value.is_none() {
        // A null has no text of its own: underline the key instead.
        let line_start = file.text()[..at.0].rfind('\n').map_or(0, |i| i + 1);
        if let Some(k) = file.text()[line_start..at.0].rfind(key) {
            at = (line_start + k, line_start + k + key.len());
        }
    }
    l.err(
        DiagnosticKind::InvalidValue,
        file,
        at,
        format!("`{key}:` has no condition"),
    )
    .set_label("empty")
    .set_help("write a condition, or remove the key for a rule that always matches");
}

/// A `when:` condition in the expression language; its diagnostics are
/// located inside the YAML scalar.
fn when_condition(
    l: &mut Loader,
    file: &Arc<SourceFile>,
    action: &str,
    risk: Risk,
    w: &Scalar,
) -> Condition {
    let text = w.value.as_deref().unwrap_or_default();
    match CompiledExpr::compile(text, action, risk.as_str()) {
        Ok(c) => Condition::Expr(c),
        Err(errs) => {
            let scalar_start = span_of(file, w).0;
            for e in errs {
                let span = file.map_scalar_span(scalar_start, text, (e.span.start, e.span.end));
                let mut d =
                    PolicyDiagnostic::new(DiagnosticKind::Expression(e.kind), e.message.clone())
                        .at(file, span);
                d = d.label(e.label.clone().unwrap_or_else(|| "here".to_owned()));
                if let Some(h) = &e.help {
                    d = d.help(h.clone());
                }
                l.diags.push(d);
            }
            Condition::Always
        }
    }
}

/// A `when_cel:` condition; a CEL error is located inside the scalar when
/// CEL gives a position.
fn cel_condition(l: &mut Loader, file: &Arc<SourceFile>, c: &Scalar) -> Condition {
    let text = c.value.as_deref().unwrap_or_default();
    if let Some(at) = aggregate_call(text) {
        let whole = span_of(file, c);
        let end = (at + 5).min(text.len());
        let (s, t) = file.map_scalar_span(whole.0, text, (at, end));
        l.diags.push(
            PolicyDiagnostic::new(
                DiagnosticKind::Cel,
                "CEL conditions have no aggregates (`count`, `sum` over past runs)",
            )
            .at(file, (s.min(whole.1), t.min(whole.1).max(s.min(whole.1))))
            .label("here")
            .help("write this rule's condition with `when:`, which has them"),
        );
        return Condition::Always;
    }
    match CelCondition::compile(text) {
        Ok(cel) => Condition::Cel(cel),
        Err(e) => {
            let whole = span_of(file, c);
            let span = match e.position {
                Some((line, col)) => {
                    let offset = line_col_offset(text, line, col);
                    let (s, t) =
                        file.map_scalar_span(whole.0, text, (offset, (offset + 1).min(text.len())));
                    // Never underline past the scalar itself.
                    (s.min(whole.1), t.min(whole.1).max(s.min(whole.1)))
                }
                None => whole,
            };
            l.diags.push(
                PolicyDiagnostic::new(DiagnosticKind::Cel, e.message)
                    .at(file, span)
                    .label("here"),
            );
            Condition::Always
        }
    }
}

/// Where a CEL text calls `count(` or `sum(` (outside string literals), the
/// aggregates that only `when:` has.
fn aggregate_call(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if b == b'"' || b == b'\'' {
            quote = Some(b);
            i += 1;
            continue;
        }
        let boundary = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'.'));
        if let (true, Some(rest)) = (boundary, text.get(i..)) {
            for word in ["count", "sum"] {
                if let Some(after) = rest.strip_prefix(word) {
                    if after.trim_start().starts_with('(') {
                        return Some(i);
                    }
                }
            }
        }
        i += 1;
    }
    None
}

/// The reason a rule gives when it decides and its policy wrote none.
fn reason(r: &RawRule, decision: Verdict) -> String {
    r.reason.clone().unwrap_or_else(|| match decision {
        Verdict::Allow => format!("rule `{}` allows the action", r.name.value),
        Verdict::RequireApproval => format!("rule `{}` requires approval", r.name.value),
        Verdict::Block => format!("rule `{}` blocks the action", r.name.value),
    })
}

fn line_col_offset(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line.max(1) {
            return offset
                + l.char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(l.len(), |(o, _)| o);
        }
        offset += l.len();
    }
    text.len()
}
