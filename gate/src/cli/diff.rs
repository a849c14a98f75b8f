//! `countersign diff OLD NEW` and `countersign diff --git REV [DIR]`: what a
//! policy change changes, in the terms of the policy (groups, members,
//! actions, rules, decisions, conditions, quorum, timeouts), not lines.
//!
//! Both sides are loaded and validated, then compared as models: comments,
//! layout, key order, file names and the spelling of a condition
//! (`1000.00` or `1000`, `&&` or `and`) are not changes, exactly as they do
//! not change the policy version. Exit 0: no change, 1: changes, 2: bad
//! input.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Args, ValueEnum};
use countersign_engine::{Condition, Mode, PolicySet, format_duration};
use serde::Serialize;

/// Output formats of `countersign diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// One line per change.
    Text,
    /// One JSON object.
    Json,
    /// A table for a pull request.
    Markdown,
}

/// Arguments of `countersign diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old policy directory, or with --git the directory to compare
    /// (default ./policies).
    old: Option<PathBuf>,
    /// The new policy directory (not with --git).
    new: Option<PathBuf>,
    /// Compare DIR as it is in the work tree with DIR at this git revision.
    #[arg(long, value_name = "REV")]
    git: Option<String>,
    /// text, json or markdown.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

const BAD_INPUT: u8 = 2;

fn bad(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(BAD_INPUT)
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// added, removed or changed.
    pub change: &'static str,
    /// What: `group leads`, `group leads / member carol`, `action refund`,
    /// `action refund / rule large`.
    pub subject: String,
    /// The field that changed (for `changed`).
    pub field: Option<String>,
    /// Before (a summary for removed things).
    pub before: Option<String>,
    /// After (a summary for added things).
    pub after: Option<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// Version of the old set.
    pub old_version: String,
    /// Version of the new set.
    pub new_version: String,
    /// Every change, groups first, then actions, each by name.
    pub changes: Vec<Change>,
}

/// A field's value: compared by `key` (the canonical form), shown as `show`
/// (as written, whitespace collapsed).
#[derive(Debug, Clone)]
struct Field {
    key: String,
    show: String,
}

impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl From<String> for Field {
    fn from(s: String) -> Self {
        Self {
            key: s.clone(),
            show: s,
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.show)
    }
}

#[derive(Debug, Clone, Default)]
struct Fields(BTreeMap<&'static str, Field>);

impl Fields {
    fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, k: &'static str, v: impl Into<Field>) {
        self.0.insert(k, v.into());
    }

    fn show(&self, k: &str) -> String {
        self.0.get(k).map_or_else(String::new, |f| f.show.clone())
    }
}

fn opt(v: Option<&str>) -> String {
    v.map_or_else(|| "(none)".to_owned(), str::to_owned)
}

fn condition(c: &Condition) -> Field {
    let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    match c {
        Condition::Always => Field::from("(always)".to_owned()),
        Condition::Expr(e) => Field {
            key: e.canonical().to_owned(),
            show: collapse(e.source()),
        },
        Condition::Cel(c) => Field {
            key: format!("cel: {}", c.source().trim()),
            show: format!("cel: {}", collapse(c.source())),
        },
    }
}

/// Groups with their fields and members.
fn groups(set: &PolicySet) -> BTreeMap<String, (Fields, BTreeMap<String, Fields>)> {
    set.groups()
        .iter()
        .map(|g| {
            let mut f = Fields::new();
            f.insert("description", opt(g.description.as_deref()));
            f.insert("quorum", g.quorum.to_string());
            f.insert("timeout", format_duration(g.timeout));
            f.insert("escalate_to", opt(g.escalate_to.as_deref()));
            f.insert(
                "escalate_after",
                g.escalate_after
                    .map_or_else(|| "(none)".to_owned(), format_duration),
            );
            let members = g
                .members
                .iter()
                .map(|m| {
                    let mut mf = Fields::new();
                    mf.insert("name", opt(m.name.as_deref()));
                    mf.insert("email", opt(m.email.as_deref()));
                    mf.insert("slack", opt(m.slack.as_deref()));
                    mf.insert("teams", opt(m.teams.as_deref()));
                    (m.id.clone(), mf)
                })
                .collect();
            (g.name.clone(), (f, members))
        })
        .collect()
}

struct ActionModel {
    fields: Fields,
    rule_order: Vec<String>,
    rules: BTreeMap<String, Fields>,
}

fn actions(set: &PolicySet) -> BTreeMap<String, ActionModel> {
    set.actions()
        .iter()
        .map(|a| {
            let mut f = Fields::new();
            f.insert("description", opt(a.description.as_deref()));
            f.insert("risk", a.risk.as_str().to_owned());
            f.insert(
                "approvers",
                opt(set.action_group(a).map(|g| g.name.as_str())),
            );
            f.insert(
                "default",
                if a.default_declared {
                    a.default.as_str().to_owned()
                } else {
                    format!("{} (not written)", a.default.as_str())
                },
            );
            f.insert("on_error", a.on_error.as_str().to_owned());
            let rules = a
                .rules
                .iter()
                .map(|r| {
                    let mut rf = Fields::new();
                    rf.insert("description", opt(r.description.as_deref()));
                    rf.insert("when", condition(&r.condition));
                    rf.insert("decision", r.decision.as_str().to_owned());
                    rf.insert("reason", r.reason.clone());
                    rf.insert(
                        "quorum",
                        r.quorum
                            .map_or_else(|| "(group's)".to_owned(), |q| q.to_string()),
                    );
                    rf.insert(
                        "approvers",
                        set.rule_own_group(r)
                            .map_or_else(|| "(action's)".to_owned(), |g| g.name.clone()),
                    );
                    rf.insert(
                        "mode",
                        if r.mode == Mode::Shadow {
                            "shadow"
                        } else {
                            "enforce"
                        }
                        .to_owned(),
                    );
                    (r.name.clone(), rf)
                })
                .collect();
            (
                a.name.clone(),
                ActionModel {
                    fields: f,
                    rule_order: a.rules.iter().map(|r| r.name.clone()).collect(),
                    rules,
                },
            )
        })
        .collect()
}

fn fields_changes(out: &mut Vec<Change>, subject: &str, old: &Fields, new: &Fields) {
    for (k, before) in &old.0 {
        let after = new.0.get(k);
        if after != Some(before) {
            out.push(Change {
                change: "changed",
                subject: subject.to_owned(),
                field: Some((*k).to_owned()),
                before: Some(before.show.clone()),
                after: after.map(|a| a.show.clone()),
            });
        }
    }
}

fn added(out: &mut Vec<Change>, subject: String, summary: String) {
    out.push(Change {
        change: "added",
        subject,
        field: None,
        before: None,
        after: Some(summary),
    });
}

fn removed(out: &mut Vec<Change>, subject: String, summary: String) {
    out.push(Change {
        change: "removed",
        subject,
        field: None,
        before: Some(summary),
        after: None,
    });
}

fn rule_summary(f: &Fields) -> String {
    let when = f.show("when");
    let decision = f.show("decision");
    if when == "(always)" {
        decision.to_owned()
    } else {
        format!("{decision} when {when}")
    }
}

/// Compares two loaded policy sets.
pub fn diff(old: &PolicySet, new: &PolicySet) -> Diff {
    let mut changes = Vec::new();
    if old.version() != new.version() {
        let (og, ng) = (groups(old), groups(new));
        for (name, (f, members)) in &og {
            let subject = format!("group {name}");
            match ng.get(name) {
                None => removed(
                    &mut changes,
                    subject,
                    format!("{} member(s), quorum {}", members.len(), f.show("quorum")),
                ),
                Some((nf, nmembers)) => {
                    fields_changes(&mut changes, &subject, f, nf);
                    for (id, mf) in members {
                        let ms = format!("{subject} / member {id}");
                        match nmembers.get(id) {
                            None => removed(&mut changes, ms, id.clone()),
                            Some(nmf) => fields_changes(&mut changes, &ms, mf, nmf),
                        }
                    }
                    for id in nmembers.keys().filter(|id| !members.contains_key(*id)) {
                        added(&mut changes, format!("{subject} / member {id}"), id.clone());
                    }
                }
            }
        }
        for (name, (f, members)) in ng.iter().filter(|(n, _)| !og.contains_key(*n)) {
            added(
                &mut changes,
                format!("group {name}"),
                format!("{} member(s), quorum {}", members.len(), f.show("quorum")),
            );
        }
        let (oa, na) = (actions(old), actions(new));
        for (name, a) in &oa {
            let subject = format!("action {name}");
            let Some(n) = na.get(name) else {
                removed(
                    &mut changes,
                    subject,
                    format!("risk {}, {} rule(s)", a.fields.show("risk"), a.rules.len()),
                );
                continue;
            };
            fields_changes(&mut changes, &subject, &a.fields, &n.fields);
            for (rule, rf) in &a.rules {
                let rs = format!("{subject} / rule {rule}");
                match n.rules.get(rule) {
                    None => removed(&mut changes, rs, rule_summary(rf)),
                    Some(nrf) => fields_changes(&mut changes, &rs, rf, nrf),
                }
            }
            for rule in n.rule_order.iter().filter(|r| !a.rules.contains_key(*r)) {
                added(
                    &mut changes,
                    format!("{subject} / rule {rule}"),
                    rule_summary(&n.rules[rule]),
                );
            }
            // The order of the rules both sides have: it picks which of
            // several winning rules is reported.
            let kept_old: Vec<&String> = a
                .rule_order
                .iter()
                .filter(|r| n.rules.contains_key(*r))
                .collect();
            let kept_new: Vec<&String> = n
                .rule_order
                .iter()
                .filter(|r| a.rules.contains_key(*r))
                .collect();
            if kept_old != kept_new {
                let join =
                    |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                changes.push(Change {
                    change: "changed",
                    subject: subject.clone(),
                    field: Some("rule order".to_owned()),
                    before: Some(join(&kept_old)),
                    after: Some(join(&kept_new)),
                });
            }
        }
        for (name, a) in na.iter().filter(|(n, _)| !oa.contains_key(*n)) {
            added(
                &mut changes,
                format!("action {name}"),
                format!("risk {}, {} rule(s)", a.fields.show("risk"), a.rules.len()),
            );
        }
    }
    Diff {
        old_version: old.version().to_owned(),
        new_version: new.version().to_owned(),
        changes,
    }
}

impl Diff {
    /// The diff in `format`, ending with a newline.
    pub fn render(&self, format: DiffFormat) -> String {
        let mut o = String::new();
        match format {
            DiffFormat::Json => {
                o = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned());
                o.push('\n');
            }
            DiffFormat::Text => {
                if self.changes.is_empty() {
                    let _ = writeln!(
                        o,
                        "no semantic change (policy version {})",
                        self.new_version
                    );
                    return o;
                }
                for c in &self.changes {
                    let sign = match c.change {
                        "added" => '+',
                        "removed" => '-',
                        _ => '~',
                    };
                    match (c.change, &c.field) {
                        ("changed", Some(f)) => {
                            let _ = writeln!(
                                o,
                                "{sign} {}: {f}: {} → {}",
                                c.subject,
                                c.before.as_deref().unwrap_or("(none)"),
                                c.after.as_deref().unwrap_or("(none)")
                            );
                        }
                        _ => {
                            let _ = writeln!(
                                o,
                                "{sign} {} ({})",
                                c.subject,
                                c.after.as_deref().or(c.before.as_deref()).unwrap_or("")
                            );
                        }
                    }
                }
                let _ = writeln!(
                    o,
                    "{} change{}; policy version {} → {}",
                    self.changes.len(),
                    if self.changes.len() == 1 { "" } else { "s" },
                    short(&self.old_version),
                    short(&self.new_version)
                );
            }
            DiffFormat::Markdown => {
                let cell = |s: Option<&str>| {
                    s.map_or_else(String::new, |s| {
                        format!("`{}`", s.replace('|', "\\|").replace('`', "'"))
                    })
                };
                let _ = writeln!(
                    o,
                    "### Countersign policy diff: {} change{}\n",
                    self.changes.len(),
                    if self.changes.len() == 1 { "" } else { "s" }
                );
                let _ = writeln!(
                    o,
                    "Policy version `{}` → `{}`.\n",
                    short(&self.old_version),
                    short(&self.new_version)
                );
                if self.changes.is_empty() {
                    o.push_str("No semantic change.\n");
                    return o;
                }
                o.push_str("| Change | What | Field | Before | After |\n|---|---|---|---|---|\n");
                for c in &self.changes {
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {} | {} |",
                        c.change,
                        c.subject.replace('|', "\\|"),
                        c.field.as_deref().unwrap_or(""),
                        cell(c.before.as_deref()),
                        cell(c.after.as_deref())
                    );
                }
            }
        }
        o
    }
}

fn short(v: &str) -> &str {
    v.get(..12).unwrap_or(v)
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// Writes the policy files of `dir` as they are at `rev` into `into`.
fn checkout_policies(dir: &Path, rev: &str, into: &Path) -> Result<(), String> {
    let top = String::from_utf8_lossy(&git(dir, &["rev-parse", "--show-toplevel"])?)
        .trim()
        .to_owned();
    let top = std::fs::canonicalize(&top).map_err(|e| format!("{top}: {e}"))?;
    let abs = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let rel = abs
        .strip_prefix(&top)
        .map_err(|_| format!("{} is not inside the repository", dir.display()))?;
    let rel = rel.to_string_lossy().replace('\\', "/");
    let spec = if rel.is_empty() {
        ".".to_owned()
    } else {
        rel.clone()
    };
    let listing = git(&top, &["ls-tree", "-r", "--name-only", rev, "--", &spec])?;
    let mut found = 0;
    for path in String::from_utf8_lossy(&listing).lines() {
        let is_yaml = path.ends_with(".yaml") || path.ends_with(".yml");
        if !is_yaml || countersign_engine::is_test_file(Path::new(path)) {
            continue;
        }
        let body = git(&top, &["show", &format!("{rev}:{path}")])?;
        let local = path
            .strip_prefix(&rel)
            .unwrap_or(path)
            .trim_start_matches('/');
        let target = into.join(local);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&target, body).map_err(|e| e.to_string())?;
        found += 1;
    }
    if found == 0 {
        return Err(format!("no policy files under `{spec}` at {rev}"));
    }
    Ok(())
}

fn load(dir: &Path, label: &str) -> Result<PolicySet, ExitCode> {
    PolicySet::load(&[dir]).map_err(|err| {
        eprintln!("error: the {label} policies do not load:");
        super::render::print_policy_error(&err);
        ExitCode::from(BAD_INPUT)
    })
}

pub fn run(args: DiffArgs) -> ExitCode {
    let (old, new) = match (&args.git, &args.old, &args.new) {
        (Some(rev), dir, None) => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from("policies"));
            let tmp = match tempdir() {
                Ok(t) => t,
                Err(e) => return bad(e),
            };
            let done = checkout_policies(&dir, rev, &tmp);
            let old = done
                .map_err(bad)
                .and_then(|()| load(&tmp, &format!("old ({rev})")));
            let _ = std::fs::remove_dir_all(&tmp);
            let old = match old {
                Ok(o) => o,
                Err(code) => return code,
            };
            match load(&dir, "new") {
                Ok(n) => (old, n),
                Err(code) => return code,
            }
        }
        (Some(_), _, Some(_)) => return bad("with --git, give one directory (default ./policies)"),
        (None, Some(o), Some(n)) => match (load(o, "old"), load(n, "new")) {
            (Ok(o), Ok(n)) => (o, n),
            (Err(code), _) | (_, Err(code)) => return code,
        },
        (None, _, _) => return bad("give two policy directories (OLD NEW), or --git REV [DIR]"),
    };
    let d = diff(&old, &new);
    {
        use std::io::Write as _;
        let _ = std::io::stdout()
            .lock()
            .write_all(d.render(args.format).as_bytes());
    }
    if d.changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A fresh private directory under the system's temporary directory.
fn tempdir() -> Result<PathBuf, String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("countersign-diff-{}", hex::encode(bytes)));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}
