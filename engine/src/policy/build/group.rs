//! Approver groups: members, quorum, timeout and escalation, checked.

use std::sync::Arc;

use serde_saphyr::Spanned;

use super::loader::{Loader, origin};
use crate::policy::diagnostic::{DiagnosticKind, SourceFile};
use crate::policy::files::span_of;
use crate::policy::model::{ApproverGroup, DEFAULT_TIMEOUT, Member};
use crate::policy::raw::RawGroup;

pub(super) fn group(
    l: &mut Loader,
    file: &Arc<SourceFile>,
    name: &Spanned<String>,
    g: &RawGroup,
) -> ApproverGroup {
    let mut members: Vec<Member> = Vec::new();
    if g.members.value.is_empty() {
        l.err(
            DiagnosticKind::InvalidValue,
            file,
            span_of(file, name),
            format!("approver group `{}` has no members", name.value),
        );
    }
    for m in &g.members.value {
        if m.id.value.trim().is_empty() {
            l.err(
                DiagnosticKind::InvalidValue,
                file,
                span_of(file, &m.id),
                "a member id cannot be empty",
            );
        } else if m.id.value.starts_with('@') {
            l.err(
                DiagnosticKind::InvalidValue,
                file,
                span_of(file, &m.id),
                format!("member id `{}` may not start with `@`", m.id.value),
            )
            .set_help(
                "`@…` names shared destinations such as webhooks; use the plain name, e.g. `alice`",
            );
        } else if members.iter().any(|x| x.id == m.id.value) {
            l.err(
                DiagnosticKind::Duplicate,
                file,
                span_of(file, &m.id),
                format!(
                    "member `{}` is listed twice in group `{}`",
                    m.id.value, name.value
                ),
            );
        }
        if let Some(email) = &m.email {
            let ok = email.value.split_once('@').is_some_and(|(u, d)| {
                !u.is_empty() && d.contains('.') && !email.value.contains(char::is_whitespace)
            });
            if !ok {
                l.err(
                    DiagnosticKind::InvalidValue,
                    file,
                    span_of(file, email),
                    format!("`{}` is not an email address", email.value),
                );
            }
        }
        if let Some(t) = &m.teams {
            if !(t.value.starts_with("https://") || t.value.starts_with("http://")) {
                l.err(
                    DiagnosticKind::InvalidValue,
                    file,
                    span_of(file, t),
                    format!("`{}` is not a Teams Workflows URL", t.value),
                )
                .set_help("the member's own workflow URL, starting with https://");
            }
        }
        members.push(Member {
            id: m.id.value.clone(),
            name: m.name.clone(),
            email: m.email.as_ref().map(|e| e.value.clone()),
            slack: m.slack.as_ref().map(|s| s.value.clone()),
            teams: m.teams.as_ref().map(|t| t.value.clone()),
        });
    }
    let quorum = match &g.quorum {
        Some(q) => {
            check_quorum(l, file, q, members.len(), &name.value);
            q.value
        }
        None => 1,
    };
    let timeout = g
        .timeout
        .as_ref()
        .and_then(|t| l.duration(file, t, "timeout"))
        .unwrap_or(DEFAULT_TIMEOUT);
    let escalate_after = g
        .escalate_after
        .as_ref()
        .and_then(|t| l.duration(file, t, "escalate_after"));
    if let (Some(after), Some(s)) = (escalate_after, &g.escalate_after) {
        if after >= timeout {
            l.err(
                DiagnosticKind::InvalidValue,
                file,
                span_of(file, s),
                "escalate_after must be shorter than the group's timeout",
            )
            .set_help("a run expires at its timeout, so a later escalation would never happen");
        }
    }
    match (&g.escalate_to, &g.escalate_after) {
        (Some(t), None) => {
            l.err(
                DiagnosticKind::InvalidValue,
                file,
                span_of(file, t),
                "escalate_to needs escalate_after",
            );
        }
        (None, Some(a)) => {
            l.err(
                DiagnosticKind::InvalidValue,
                file,
                span_of(file, a),
                "escalate_after needs escalate_to",
            );
        }
        _ => {}
    }
    ApproverGroup {
        name: name.value.clone(),
        description: g.description.clone(),
        members,
        quorum,
        timeout,
        escalate_to: g.escalate_to.as_ref().map(|s| s.value.clone()),
        escalate_after,
        origin: origin(file, name),
    }
}

/// Checks a quorum against the size of the group it applies to.
pub(super) fn check_quorum(
    l: &mut Loader,
    file: &Arc<SourceFile>,
    q: &Spanned<u32>,
    members: usize,
    group: &str,
) {
    if q.value == 0 {
        l.err(
            DiagnosticKind::InvalidValue,
            file,
            span_of(file, q),
            "quorum must be at least 1",
        );
    } else if members > 0 && q.value as usize > members {
        l.err(
            DiagnosticKind::InvalidValue,
            file,
            span_of(file, q),
            format!(
                "quorum {} can never be reached: group `{group}` has {members} member{}",
                q.value,
                if members == 1 { "" } else { "s" }
            ),
        )
        .set_label("too high");
    }
}
