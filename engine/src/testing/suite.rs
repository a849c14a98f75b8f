//! Running a self-contained test file: its inline policy set must load (and
//! pass its tests) or be rejected with the expected diagnostics; other sets
//! must share or differ from its policy version; single expressions must
//! compile and evaluate as expected.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::case::TestFile;
use super::format::{RawDiagnostic, RawExpression, Sources};
use super::run::{TestRun, run_tests};
use crate::expr::{Bindings, CompiledExpr};
use crate::policy::{PolicyError, PolicySet};
use crate::value::{Map, Value, parse_json};

/// The outcome of a self-contained test file.
#[derive(Debug, Clone)]
pub struct FileRun {
    /// The test cases' outcomes, when the inline policy set loaded.
    pub run: Option<TestRun>,
    /// Every other check that failed, each a readable paragraph naming the
    /// check, what it wanted and what the engine gave.
    pub problems: Vec<String>,
}

impl FileRun {
    /// Whether every check in the file held.
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.run.as_ref().is_none_or(|r| r.failed() == 0)
    }
}

/// Runs a self-contained test file: loads its `policies`, runs its `tests`
/// against them (or matches `load_errors`), compares policy versions and
/// evaluates its `expressions`.
pub fn run_test_file(file: &TestFile) -> FileRun {
    let mut problems = Vec::new();
    if file.check_count() == 0 {
        problems.push(
            "the file checks nothing: add `tests`, `load_errors`, `expressions` or a version key"
                .to_owned(),
        );
    }
    if file.policies.is_none() && !file.cases.is_empty() {
        problems.push("`tests` in a self-contained file need `policies`".to_owned());
    }
    let mut run = None;
    if let Some(policies) = &file.policies {
        match (&file.load_errors, load(policies)) {
            (Some(wanted), Err(err)) => {
                check_load_errors(&mut problems, wanted, file.load_error_count, &err);
            }
            (Some(_), Ok(_)) => problems
                .push("the policy set loaded, but `load_errors` wants it rejected".to_owned()),
            (None, Err(err)) => problems.push(format!(
                "the policy set does not load:\n{}",
                render_diagnostics(&err)
            )),
            (None, Ok(set)) => {
                run = Some(run_tests(&set, &file.cases));
                check_versions(&mut problems, &set, file);
            }
        }
    }
    for (i, e) in file.expressions.iter().enumerate() {
        run_expression(&mut problems, i, e);
    }
    FileRun { run, problems }
}

fn load(files: &Sources) -> Result<PolicySet, PolicyError> {
    PolicySet::from_sources(files.0.iter().map(|(n, t)| (n.as_str(), t.as_str())))
}

fn render_diagnostics(err: &PolicyError) -> String {
    let mut out = String::new();
    for d in err.diagnostics() {
        let _ = writeln!(
            out,
            "      {} [{:?}] snippet={:?} help={:?}",
            d.to_plain(),
            d.kind(),
            d.snippet(),
            d.help_text()
        );
    }
    out
}

fn check_load_errors(
    problems: &mut Vec<String>,
    wanted: &[RawDiagnostic],
    count: Option<usize>,
    err: &PolicyError,
) {
    let diags = err.diagnostics();
    let mut used = vec![false; diags.len()];
    for w in wanted {
        let found = diags.iter().enumerate().position(|(i, d)| {
            !used[i]
                && d.message().contains(&w.message)
                && w.at
                    .as_ref()
                    .is_none_or(|at| d.location().is_some_and(|l| l.to_string() == *at))
                && w.snippet
                    .as_ref()
                    .is_none_or(|s| d.snippet() == Some(s.as_str()))
                && w.help
                    .as_ref()
                    .is_none_or(|h| d.help_text().is_some_and(|t| t.contains(h.as_str())))
                && w.kind
                    .as_ref()
                    .is_none_or(|k| format!("{:?}", d.kind()) == *k)
                && w.file
                    .as_ref()
                    .is_none_or(|f| d.location().is_some_and(|l| l.file == Path::new(f)))
        });
        match found {
            Some(i) => used[i] = true,
            None => problems.push(format!(
                "load_errors `{}`: no diagnostic matches\n      want: message={:?} file={:?} at={:?} snippet={:?} help={:?} kind={:?}\n       got:\n{}",
                w.message,
                w.message,
                w.file,
                w.at,
                w.snippet,
                w.help,
                w.kind,
                render_diagnostics(err)
            )),
        }
    }
    if let Some(n) = count {
        if n != diags.len() {
            problems.push(format!(
                "load_error_count: want {n} diagnostics, got {}:\n{}",
                diags.len(),
                render_diagnostics(err)
            ));
        }
    }
}

fn check_versions(problems: &mut Vec<String>, set: &PolicySet, file: &TestFile) {
    for (i, other) in file.same_version_as.iter().enumerate() {
        match load(other) {
            Ok(o) if o.version() != set.version() => problems.push(format!(
                "same_version_as[{i}]: policy_version\n      want: {}\n       got: {}",
                set.version(),
                o.version()
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "same_version_as[{i}] does not load:\n{}",
                render_diagnostics(&e)
            )),
        }
    }
    for (i, other) in file.different_version_from.iter().enumerate() {
        match load(other) {
            Ok(o) if o.version() == set.version() => problems.push(format!(
                "different_version_from[{i}]: both sets have policy_version {}",
                o.version()
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "different_version_from[{i}] does not load:\n{}",
                render_diagnostics(&e)
            )),
        }
    }
}

/// The request values of an expression check.
struct Inputs {
    actor: Value,
    payload: Value,
    source: Value,
    context: Value,
    now: Value,
}

fn inputs(e: &RawExpression) -> Result<Inputs, String> {
    let payload = match (&e.payload, &e.payload_json) {
        (Some(_), Some(_)) => return Err("give `payload` or `payload_json`, not both".into()),
        (Some(p), None) => p.clone(),
        (None, Some(text)) => {
            parse_json(text.as_bytes()).map_err(|e| format!("payload_json: {e}"))?
        }
        (None, None) => Value::Object(Map::new()),
    };
    let now = match &e.now {
        None => Value::Null,
        Some(text) => DateTime::parse_from_rfc3339(text.trim())
            .map(|t| Value::Timestamp(t.with_timezone(&Utc)))
            .map_err(|err| format!("now `{text}` is not RFC 3339: {err}"))?,
    };
    Ok(Inputs {
        actor: e.actor.clone(),
        payload,
        source: e.source.clone(),
        context: e.context.clone(),
        now,
    })
}

fn run_expression(problems: &mut Vec<String>, i: usize, e: &RawExpression) {
    let label = match &e.name {
        Some(n) => format!("expressions[{i}] `{}` ({n})", e.expr),
        None => format!("expressions[{i}] `{}`", e.expr),
    };
    let outcomes = usize::from(e.value.is_some())
        + usize::from(e.eval_error.is_some())
        + usize::from(e.compile_error.is_some());
    if outcomes != 1 {
        return problems.push(format!(
            "{label}: give exactly one of value, eval_error, compile_error"
        ));
    }
    let r = match inputs(e) {
        Ok(r) => r,
        Err(msg) => return problems.push(format!("{label}: {msg}")),
    };
    let action = e.action.as_deref().unwrap_or("test_action");
    let risk = e.risk.as_deref().unwrap_or("medium");
    let compiled = CompiledExpr::compile(&e.expr, action, risk);
    if let Some(want) = &e.compile_error {
        return check_compile_error(problems, &label, e, want, compiled);
    }
    let compiled = match compiled {
        Ok(c) => c,
        Err(diags) => {
            return problems.push(format!(
                "{label}: does not compile: {:?}",
                diags.iter().map(|d| d.message.as_str()).collect::<Vec<_>>()
            ));
        }
    };
    if let Some(folded) = e.folded {
        if folded != compiled.constant().is_some() {
            problems.push(format!(
                "{label}: folded\n      want: {folded}\n       got: {}",
                !folded
            ));
        }
    }
    let bindings = Bindings {
        actor: &r.actor,
        payload: &r.payload,
        source: &r.source,
        context: &r.context,
        now: &r.now,
    };
    let got = compiled.evaluate(&bindings);
    match (&e.value, &e.eval_error, got) {
        (Some(want), _, Ok(v)) => {
            let want = want.clone().unwrap_or(Value::Null);
            if want != v {
                problems.push(format!(
                    "{label}: value\n      want: {}\n       got: {}",
                    want.to_json(),
                    v.to_json()
                ));
            }
        }
        (Some(want), _, Err(err)) => problems.push(format!(
            "{label}: value\n      want: {}\n       got: evaluation error {:?}",
            want.clone().unwrap_or(Value::Null).to_json(),
            err.message()
        )),
        (_, Some(want), Ok(v)) => problems.push(format!(
            "{label}: eval_error\n      want: …{want:?}…\n       got: value {}",
            v.to_json()
        )),
        (_, Some(want), Err(err)) => {
            if !err.message().contains(want.as_str()) {
                problems.push(format!(
                    "{label}: eval_error\n      want: …{want:?}…\n       got: {:?}",
                    err.message()
                ));
            }
        }
        (None, None, _) => {}
    }
}

fn check_compile_error(
    problems: &mut Vec<String>,
    label: &str,
    e: &RawExpression,
    want: &str,
    compiled: Result<CompiledExpr, Vec<crate::expr::ExprDiagnostic>>,
) {
    let diags = match compiled {
        Ok(c) => {
            return problems.push(format!(
                "{label}: compile_error\n      want: rejected with …{want:?}…\n       got: compiled (constant: {:?})",
                c.constant()
            ));
        }
        Err(diags) => diags,
    };
    let Some(d) = diags.iter().find(|d| d.message.contains(want)) else {
        return problems.push(format!(
            "{label}: compile_error\n      want: …{want:?}…\n       got: {:?}",
            diags.iter().map(|d| d.message.as_str()).collect::<Vec<_>>()
        ));
    };
    if let Some(at) = e.at {
        if at != d.span.start {
            problems.push(format!(
                "{label}: compile_error offset\n      want: {at}\n       got: {}",
                d.span.start
            ));
        }
    }
    if let Some(h) = &e.help {
        if !d.help.as_deref().is_some_and(|t| t.contains(h.as_str())) {
            problems.push(format!(
                "{label}: help\n      want: …{h:?}…\n       got: {:?}",
                d.help
            ));
        }
    }
}
