//! Raw YAML files → a validated [`PolicySet`]: approver groups first (an
//! action in any file may name a group from any file), then actions with
//! their rules, then indexes and the policy version. Every problem is
//! collected, so one run of `countersign check` shows them all.

mod action;
mod group;
mod loader;
mod people;
mod rule;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::diagnostic::{DiagnosticKind, PolicyError, SourceFile};
use super::files::{parse_policy_files, span_of};
use super::model::{Action, ApproverGroup, Origin, PolicySet, is_valid_action_name};
use super::raw::{RawAction, RawFile, RawGroup};
use super::version::policy_version;
use loader::{FileScope, Loader, origin, unknown_group};

/// The groups declared so far and their indexes by name.
struct Groups {
    list: Vec<ApproverGroup>,
    index: HashMap<String, usize>,
}

/// Builds a policy set from in-memory files.
pub(crate) fn build(sources: Vec<Arc<SourceFile>>) -> Result<PolicySet, PolicyError> {
    let mut l = Loader { diags: Vec::new() };
    let parsed = parse_policy_files(sources, &mut l.diags);
    let groups = build_groups(&mut l, &parsed);
    let actions = build_actions(&mut l, &parsed, &groups);
    if !l.diags.is_empty() {
        return Err(PolicyError::new(l.diags));
    }
    Ok(index(&parsed, actions, groups.list))
}

fn build_groups(l: &mut Loader, parsed: &[(Arc<SourceFile>, RawFile)]) -> Groups {
    let mut groups = Groups {
        list: Vec::new(),
        index: HashMap::new(),
    };
    let mut raw_groups: Vec<(&Arc<SourceFile>, &Spanned<String>, &RawGroup)> = Vec::new();
    for (file, raw) in parsed {
        for (name, g) in &raw.approvers.0 {
            if let Some(&i) = groups.index.get(&name.value) {
                let first = groups.list[i].origin.clone();
                l.err(
                    DiagnosticKind::Duplicate,
                    file,
                    span_of(file, name),
                    format!("approver group `{}` is declared twice", name.value),
                )
                .set_label("declared again here")
                .set_help(format!("it was first declared at {first}"));
                continue;
            }
            groups.index.insert(name.value.clone(), groups.list.len());
            groups.list.push(group::group(l, file, name, g));
            raw_groups.push((file, name, g));
        }
    }
    people::one_person_one_id(l, &raw_groups);
    for (file, name, g) in &raw_groups {
        if let Some(target) = &g.escalate_to {
            if !groups.index.contains_key(&target.value) {
                unknown_group(l, file, target, &groups.index);
            } else if target.value == name.value {
                l.err(
                    DiagnosticKind::InvalidValue,
                    file,
                    span_of(file, target),
                    format!("group `{}` cannot escalate to itself", name.value),
                );
            }
        }
    }
    groups
}

fn build_actions(
    l: &mut Loader,
    parsed: &[(Arc<SourceFile>, RawFile)],
    groups: &Groups,
) -> Vec<Action> {
    let mut actions: Vec<Action> = Vec::new();
    // Every declaration is remembered, valid or not, so a duplicate is
    // reported even while the first declaration has problems of its own.
    let mut seen: HashMap<String, Origin> = HashMap::new();
    let empty = RawAction::default();
    for (file, raw) in parsed {
        let file_on_error = raw.on_error.as_ref().and_then(|s| l.verdict(file, s));
        for (name, a) in &raw.actions.0 {
            let a = a.as_ref().unwrap_or(&empty);
            if !is_valid_action_name(&name.value) {
                l.err(
                    DiagnosticKind::InvalidValue,
                    file,
                    span_of(file, name),
                    format!("`{}` is not a valid action name", name.value),
                )
                .set_help(
                    "use 1–128 letters, digits, `_`, `-`, `.` or `:`, starting with a letter or digit",
                );
                continue;
            }
            if let Some(first) = seen.get(&name.value) {
                let first = first.clone();
                l.err(
                    DiagnosticKind::Duplicate,
                    file,
                    span_of(file, name),
                    format!("action `{}` is declared twice", name.value),
                )
                .set_label("declared again here")
                .set_help(format!("it was first declared at {first}"));
                continue;
            }
            seen.insert(name.value.clone(), origin(file, name));
            let scope = FileScope {
                file,
                on_error: file_on_error,
                groups: &groups.list,
                group_index: &groups.index,
            };
            if let Some(action) = action::action(l, &scope, name, a) {
                actions.push(action);
            }
        }
    }
    actions
}

/// Sorts actions and groups by name (so indexes and listings do not depend
/// on file order), indexes them and computes the policy version.
fn index(
    parsed: &[(Arc<SourceFile>, RawFile)],
    mut actions: Vec<Action>,
    groups: Vec<ApproverGroup>,
) -> PolicySet {
    actions.sort_by(|a, b| a.name.cmp(&b.name));
    let action_index = actions
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.clone(), i))
        .collect();
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| groups[a].name.cmp(&groups[b].name));
    let remap: HashMap<usize, usize> = order
        .iter()
        .enumerate()
        .map(|(new, &old)| (old, new))
        .collect();
    let groups: Vec<ApproverGroup> = order.iter().map(|&i| groups[i].clone()).collect();
    for a in &mut actions {
        a.approvers = a.approvers.and_then(|i| remap.get(&i).copied());
        for r in &mut a.rules {
            r.approvers = r.approvers.and_then(|i| remap.get(&i).copied());
        }
    }
    let group_index = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.clone(), i))
        .collect();
    let mut files: Vec<PathBuf> = parsed.iter().map(|(f, _)| f.path().to_owned()).collect();
    files.sort();
    let mut set = PolicySet {
        actions,
        action_index,
        groups,
        group_index,
        version: String::new(),
        files,
    };
    set.version = policy_version(&set);
    set
}

#[cfg(test)]
mod tests {
    #[test]
    fn member_ids_may_not_take_the_shared_destination_prefix() {
        let err = crate::PolicySet::from_sources([(
            "p.yaml",
            "version: 1\napprovers:\n  g:\n    members: [{ id: \"@alice\" }]\n",
        )])
        .unwrap_err();
        let d = &err.diagnostics()[0];
        assert!(
            d.message().contains("may not start with `@`"),
            "{}",
            d.message()
        );
        assert_eq!(d.location().map(|l| (l.line, l.column)), Some((4, 21)));
    }

    #[test]
    fn a_member_teams_url_must_be_a_url() {
        let err = crate::PolicySet::from_sources([(
            "p.yaml",
            "version: 1\napprovers:\n  g:\n    members: [{ id: a, teams: my-chat }]\n",
        )])
        .unwrap_err();
        assert!(
            err.diagnostics()[0]
                .message()
                .contains("not a Teams Workflows URL")
        );
    }

    #[test]
    fn an_unquoted_colon_gets_a_hint() {
        let err = crate::PolicySet::from_sources([(
            "p.yaml",
            "version: 1\nactions:\n  a:\n    rules:\n      - name: r\n        decision: allow\n        reason: Note: later\n",
        )])
        .unwrap_err();
        let d = &err.diagnostics()[0];
        assert!(!d.message().contains(" at line "), "{}", d.message());
        assert!(
            d.help_text().is_some_and(|h| h.contains("must be quoted")),
            "{:?}",
            d.help_text()
        );
        assert_eq!(d.location().map(|l| l.line), Some(7));
    }
}
