//! Files → validated [`PolicySet`]. Every problem is collected, so one run of
//! `countersign check` shows them all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::diagnostic::{DiagnosticKind, PolicyDiagnostic, PolicyError, SourceFile};
use super::model::{
    Action, ApproverGroup, Condition, Member, Mode, Origin, PolicySet, Risk, Rule, Verdict,
    parse_duration,
};
use super::raw::{RawAction, RawFile, RawGroup, RawRule};
use super::version::policy_version;
use crate::expr::CompiledExpr;
use crate::expr::cel::CelCondition;

/// The default time an approval request waits.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The longest timeout a group may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 86_400);
/// The largest policy file accepted.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Whether `name` is a valid action name: 1–128 characters of letters,
/// digits, `_`, `-`, `.` and `:`, starting with a letter or digit.
pub fn is_valid_action_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Whether a path names a policy test file (`*_test.yaml` / `*_test.yml`).
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("_test.yaml") || n.ends_with("_test.yml"))
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Finds YAML files under `roots` (recursively, sorted, hidden entries
/// skipped). A root that is a file is taken as is.
pub(crate) fn find_yaml_files(
    roots: &[PathBuf],
    tests: bool,
) -> Result<Vec<PathBuf>, Vec<PolicyDiagnostic>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for root in roots {
        if root.is_file() {
            if is_test_file(root) == tests {
                files.push(root.clone());
            }
            continue;
        }
        if !root.is_dir() {
            problems.push(PolicyDiagnostic::new(
                DiagnosticKind::Io,
                format!("`{}` is not a directory or file", root.display()),
            ));
            continue;
        }
        let walker = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            match entry {
                Ok(e)
                    if e.file_type().is_file()
                        && is_yaml(e.path())
                        && is_test_file(e.path()) == tests =>
                {
                    files.push(e.into_path());
                }
                Ok(_) => {}
                Err(e) => problems.push(PolicyDiagnostic::new(
                    DiagnosticKind::Io,
                    format!("cannot read `{}`: {e}", root.display()),
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// Reads a file into a [`SourceFile`].
pub(crate) fn read_source(path: &Path) -> Result<Arc<SourceFile>, Box<PolicyDiagnostic>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        PolicyDiagnostic::new(
            DiagnosticKind::Io,
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(Box::new(PolicyDiagnostic::new(
            DiagnosticKind::Io,
            format!(
                "`{}` is larger than {} bytes",
                path.display(),
                MAX_FILE_BYTES
            ),
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        PolicyDiagnostic::new(
            DiagnosticKind::Io,
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    Ok(Arc::new(SourceFile::new(path, text)))
}

/// Turns a serde-saphyr error into a located diagnostic.
pub(crate) fn yaml_diagnostic(file: &Arc<SourceFile>, e: &serde_saphyr::Error) -> PolicyDiagnostic {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let message = strip_location_prefix(first.strip_prefix("error: ").unwrap_or(first));
    let mut d = PolicyDiagnostic::new(DiagnosticKind::Yaml, message.to_owned());
    if message.contains("mapping values are not allowed") {
        d = d.help("a value that contains `: ` must be quoted, for example `reason: \"Note: needs review\"`");
    }
    match e.location() {
        Some(loc) if loc.line() > 0 => {
            let start = file.offset_of(loc.line() as usize, loc.column() as usize);
            let end = file.text()[start..]
                .find(['\n', ':'])
                .map_or(file.text().len(), |i| start + i)
                .max(start + 1)
                .min(file.text().len());
            d.at(file, (start, end))
        }
        _ => d.at(file, (0, 0)),
    }
}

/// Drops the position serde-saphyr writes into its messages (we show our
/// own `file:line:col`): a leading `line 2 column 3: ` and a trailing
/// ` at line 2, column 3`.
fn strip_location_prefix(s: &str) -> &str {
    let mut s = s;
    if let Some(rest) = s.strip_prefix("line ") {
        if let Some((_, tail)) = rest.split_once(": ") {
            s = tail;
        }
    }
    if let Some(i) = s.rfind(" at line ") {
        let tail = &s[i + " at line ".len()..];
        if tail.chars().all(|c| {
            c.is_ascii_digit() || matches!(c, ',' | ' ' | 'c' | 'o' | 'l' | 'u' | 'm' | 'n')
        }) {
            s = &s[..i];
        }
    }
    s
}

/// Byte range of a spanned scalar in its file.
pub(crate) fn span_of<T>(file: &SourceFile, s: &Spanned<T>) -> (usize, usize) {
    let span = s.referenced.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(o), Some(l)) => (o as usize, (o + l.max(1)) as usize),
        _ => {
            let o = file.offset_of(s.referenced.line() as usize, s.referenced.column() as usize);
            (o, o + 1)
        }
    }
}

fn origin<T>(file: &Arc<SourceFile>, s: &Spanned<T>) -> Origin {
    Origin {
        file: Arc::from(file.path()),
        line: s.referenced.line() as usize,
        column: s.referenced.column() as usize,
    }
}

struct Loader {
    diags: Vec<PolicyDiagnostic>,
}

impl Loader {
    fn err(
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

    fn duration(
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

    fn verdict(&mut self, file: &Arc<SourceFile>, s: &Spanned<String>) -> Option<Verdict> {
        let v = Verdict::parse(&s.value);
        if v.is_none() {
            let mut d = PolicyDiagnostic::new(
                DiagnosticKind::InvalidValue,
                format!("unknown decision `{}`", s.value),
            )
            .at(file, span_of(file, s))
            .label("not a decision");
            d = match crate::expr::err::closest(&s.value, ["allow", "require_approval", "block"]) {
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

/// Loads and validates the policy files under `roots`.
pub(crate) fn load(roots: &[PathBuf]) -> Result<PolicySet, PolicyError> {
    let files = find_yaml_files(roots, false).map_err(PolicyError::new)?;
    let mut sources = Vec::new();
    let mut diags = Vec::new();
    for path in &files {
        match read_source(path) {
            Ok(s) => sources.push(s),
            Err(d) => diags.push(*d),
        }
    }
    if !diags.is_empty() {
        return Err(PolicyError::new(diags));
    }
    if sources.is_empty() {
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(PolicyError::new(vec![PolicyDiagnostic::new(
            DiagnosticKind::Empty,
            format!("no policy files (*.yaml) found in {}", shown.join(", ")),
        )]));
    }
    build(sources)
}

/// Builds a policy set from in-memory files.
pub(crate) fn build(sources: Vec<Arc<SourceFile>>) -> Result<PolicySet, PolicyError> {
    let mut l = Loader { diags: Vec::new() };
    let mut parsed: Vec<(Arc<SourceFile>, RawFile)> = Vec::new();
    for file in sources {
        match serde_saphyr::from_str::<RawFile>(file.text()) {
            Ok(raw) => {
                if raw.version.value != 1 {
                    l.err(
                        DiagnosticKind::InvalidValue,
                        &file,
                        span_of(&file, &raw.version),
                        format!("unsupported policy version `{}`", raw.version.value),
                    )
                    .set_help("this release reads `version: 1`");
                }
                parsed.push((file, raw));
            }
            Err(e) => l.diags.push(yaml_diagnostic(&file, &e)),
        }
    }

    // Groups first: actions in any file may name a group from any file.
    let mut groups: Vec<ApproverGroup> = Vec::new();
    let mut group_index: HashMap<String, usize> = HashMap::new();
    let mut raw_groups: Vec<(Arc<SourceFile>, &Spanned<String>, &RawGroup)> = Vec::new();
    for (file, raw) in &parsed {
        for (name, g) in &raw.approvers.0 {
            if let Some(&i) = group_index.get(&name.value) {
                let first = groups[i].origin.clone();
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
            group_index.insert(name.value.clone(), groups.len());
            groups.push(group(&mut l, file, name, g));
            raw_groups.push((Arc::clone(file), name, g));
        }
    }
    for (file, name, g) in &raw_groups {
        if let Some(target) = &g.escalate_to {
            if !group_index.contains_key(&target.value) {
                unknown_group(&mut l, file, target, &group_index);
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

    let mut actions: Vec<Action> = Vec::new();
    // Every declaration is remembered, valid or not, so a duplicate is
    // reported even while the first declaration has problems of its own.
    let mut seen: HashMap<String, Origin> = HashMap::new();
    let empty = RawAction::default();
    for (file, raw) in &parsed {
        let file_on_error = raw.on_error.as_ref().and_then(|s| l.verdict(file, s));
        for (name, a) in &raw.actions.0 {
            let a = a.as_ref().unwrap_or(&empty);
            if !is_valid_action_name(&name.value) {
                l.err(DiagnosticKind::InvalidValue, file, span_of(file, name), format!("`{}` is not a valid action name", name.value)).set_help("use 1–128 letters, digits, `_`, `-`, `.` or `:`, starting with a letter or digit");
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
            if let Some(action) =
                action(&mut l, file, name, a, file_on_error, &groups, &group_index)
            {
                actions.push(action);
            }
        }
    }

    if !l.diags.is_empty() {
        return Err(PolicyError::new(l.diags));
    }

    // Sorted, so indexes and listings do not depend on file order.
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
    Ok(set)
}

fn unknown_group(
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
    d = match crate::expr::err::closest(&name.value, known.iter().copied()) {
        Some(c) => d.help(format!("did you mean `{c}`?")),
        None if known.is_empty() => d.help("declare it under `approvers:` in a policy file"),
        None => d.help(format!("the groups are {}", known.join(", "))),
    };
    l.diags.push(d);
}

fn group(
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
            slack: m.slack.clone(),
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

fn check_quorum(
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

fn action(
    l: &mut Loader,
    file: &Arc<SourceFile>,
    name: &Spanned<String>,
    a: &RawAction,
    file_on_error: Option<Verdict>,
    groups: &[ApproverGroup],
    group_index: &HashMap<String, usize>,
) -> Option<Action> {
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
    let approvers = a.approvers.as_ref().and_then(|g| {
        let found = group_index.get(&g.value).copied();
        if found.is_none() {
            unknown_group(l, file, g, group_index);
        }
        found
    });
    let default = a.default.as_ref().and_then(|d| l.verdict(file, d));
    let on_error = a
        .on_error
        .as_ref()
        .and_then(|d| l.verdict(file, d))
        .or(file_on_error)
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
        if let Some(rule) = rule(
            l,
            file,
            &name.value,
            risk,
            r,
            approvers,
            groups,
            group_index,
        ) {
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

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the arguments are the loader's state"
)]
fn rule(
    l: &mut Loader,
    file: &Arc<SourceFile>,
    action: &str,
    risk: Risk,
    r: &RawRule,
    action_group: Option<usize>,
    groups: &[ApproverGroup],
    group_index: &HashMap<String, usize>,
) -> Option<Rule> {
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
    let mode = match &r.mode {
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
    };
    let rule_group = r.approvers.as_ref().and_then(|g| {
        let found = group_index.get(&g.value).copied();
        if found.is_none() {
            unknown_group(l, file, g, group_index);
        }
        found
    });
    let group = rule_group.or(action_group);
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
        let members = group.map_or(0, |g| groups[g].members.len());
        check_quorum(
            l,
            file,
            q,
            members,
            group.map_or("", |g| groups[g].name.as_str()),
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
    let condition = match (&r.when, &r.when_cel) {
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
            Condition::Always
        }
        (Some(w), None) => match CompiledExpr::compile(
            w.value.as_deref().unwrap_or_default(),
            action,
            risk.as_str(),
        ) {
            Ok(c) => Condition::Expr(c),
            Err(errs) => {
                let scalar_start = span_of(file, w).0;
                let text = w.value.as_deref().unwrap_or_default();
                for e in errs {
                    let span = file.map_scalar_span(scalar_start, text, (e.span.start, e.span.end));
                    let mut d = PolicyDiagnostic::new(
                        DiagnosticKind::Expression(e.kind),
                        e.message.clone(),
                    )
                    .at(file, span);
                    d = d.label(e.label.clone().unwrap_or_else(|| "here".to_owned()));
                    if let Some(h) = &e.help {
                        d = d.help(h.clone());
                    }
                    l.diags.push(d);
                }
                Condition::Always
            }
        },
        (None, Some(c)) => match CelCondition::compile(c.value.as_deref().unwrap_or_default()) {
            Ok(cel) => Condition::Cel(cel),
            Err(e) => {
                let scalar_start = span_of(file, c).0;
                let whole = span_of(file, c);
                let text = c.value.as_deref().unwrap_or_default();
                let span = match e.position {
                    Some((line, col)) => {
                        let offset = line_col_offset(text, line, col);
                        let (s, t) = file.map_scalar_span(
                            scalar_start,
                            text,
                            (offset, (offset + 1).min(text.len())),
                        );
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
        },
        (None, None) => Condition::Always,
    };
    if l.diags.len() > before {
        return None;
    }
    let decision = decision?;
    let reason = r.reason.clone().unwrap_or_else(|| match decision {
        Verdict::Allow => format!("rule `{}` allows the action", r.name.value),
        Verdict::RequireApproval => format!("rule `{}` requires approval", r.name.value),
        Verdict::Block => format!("rule `{}` blocks the action", r.name.value),
    });
    Some(Rule {
        name: r.name.value.clone(),
        description: r.description.clone(),
        condition,
        decision,
        reason,
        quorum: r.quorum.as_ref().map(|q| q.value),
        approvers: rule_group,
        mode,
        origin: origin(file, &r.name),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_messages_do_not_repeat_the_position() {
        assert_eq!(
            strip_location_prefix("line 2 column 3: unknown field `x`"),
            "unknown field `x`"
        );
        assert_eq!(
            strip_location_prefix(
                "mapping values are not allowed in this context at line 35, column 27"
            ),
            "mapping values are not allowed in this context"
        );
        assert_eq!(strip_location_prefix("plain message"), "plain message");
    }

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
