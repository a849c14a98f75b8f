//! Reading test files: their YAML into checked [`TestCase`]s and, for a
//! self-contained file, its inline policy set and other checks.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::format::{
    RawDiagnostic, RawExpect, RawExpression, RawPastRun, RawTest, RawTestFile, Sources,
};
use crate::decide::Request;
use crate::expr::{Aggregates, PastRun, RunStatus};
use crate::policy::{
    DiagnosticKind, PolicyDiagnostic, PolicyError, SourceFile, Verdict, find_yaml_files,
    read_source, span_of, yaml_diagnostic,
};
use crate::value::{Map, Value, parse_json};

/// One test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The test's name.
    pub name: String,
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line of its name.
    pub line: usize,
    /// The action proposed.
    pub action: String,
    /// The actor (null if not given).
    pub actor: Value,
    /// The payload (an object; `{}` if not given).
    pub payload: Value,
    /// The source (null if not given).
    pub source: Value,
    /// The context (null if not given), read as `context.mcp.tool`.
    pub context: Value,
    /// The evaluation instant, or null.
    pub now: Value,
    /// The values of the aggregates its action's rules read (`aggregates:`,
    /// keyed by each aggregate's text as written).
    pub aggregates: Aggregates,
    /// Past runs to compute the aggregates from (`history:`), with the
    /// reference model ([`crate::AggregateSpec::scan`]); `None` when the
    /// case gives `aggregates:` (or neither).
    pub history: Option<Vec<PastRun>>,
    pub(super) expect: Expectation,
}

/// What a case expects; `None` means "not checked". For the fields whose
/// value may be null, `Some(None)` expects null.
#[derive(Debug, Clone)]
pub(super) struct Expectation {
    pub decision: Verdict,
    pub rule: Option<Option<String>>,
    pub approvers: Option<Option<String>>,
    pub quorum: Option<Option<u32>>,
    pub reason: Option<String>,
    pub reason_exact: Option<String>,
    pub matched: Option<Vec<String>>,
    pub matched_decisions: Option<Vec<String>>,
    pub shadow: Option<Vec<String>>,
    pub errors: Option<Vec<String>>,
    pub error_contains: Option<String>,
    pub members: Option<Vec<String>>,
    pub timeout: Option<Option<String>>,
    pub timeout_seconds: Option<Option<u64>>,
    pub escalate_to: Option<Option<String>>,
    pub escalate_after_seconds: Option<Option<u64>>,
    pub declared: Option<bool>,
    pub risk: Option<Option<String>>,
}

impl TestCase {
    /// The request this case proposes.
    pub fn request(&self) -> Request<'_> {
        Request {
            action: &self.action,
            actor: &self.actor,
            payload: &self.payload,
            source: &self.source,
            context: &self.context,
            now: &self.now,
        }
    }
}

/// One test file, read and checked.
///
/// A file that names only `tests` runs against a policy set given from
/// outside (`countersign test DIR`). A *self-contained* file carries its own
/// set in `policies` (and may add `load_errors`, the version keys and
/// `expressions`); it is run with [`run_test_file`](super::run_test_file).
#[derive(Debug, Clone)]
pub struct TestFile {
    /// The file's path (or the name it was given).
    pub path: PathBuf,
    /// What the file pins, if it says.
    pub note: Option<String>,
    /// Its test cases, in file order.
    pub cases: Vec<TestCase>,
    pub(super) policies: Option<Sources>,
    pub(super) load_errors: Option<Vec<RawDiagnostic>>,
    pub(super) load_error_count: Option<usize>,
    pub(super) same_version_as: Vec<Sources>,
    pub(super) different_version_from: Vec<Sources>,
    pub(super) expressions: Vec<RawExpression>,
}

impl TestFile {
    /// Whether the file carries its own policies or expressions, so that it
    /// means nothing against another policy set.
    pub fn is_self_contained(&self) -> bool {
        self.policies.is_some() || !self.expressions.is_empty()
    }

    /// Number of checks in the file: test cases, expected load errors,
    /// version comparisons and expressions.
    pub fn check_count(&self) -> usize {
        self.cases.len()
            + self.load_errors.as_ref().map_or(0, Vec::len)
            + self.same_version_as.len()
            + self.different_version_from.len()
            + self.expressions.len()
    }
}

/// Finds and reads every `*_test.yaml` under `roots`. Problems in test files
/// are reported like policy problems, located in their file. Self-contained
/// files (see [`TestFile`]) are refused: they do not test these policies.
pub fn load_tests<P: AsRef<Path>>(roots: &[P]) -> Result<Vec<TestCase>, PolicyError> {
    let roots: Vec<PathBuf> = roots.iter().map(|p| p.as_ref().to_owned()).collect();
    let files = find_yaml_files(&roots, true).map_err(PolicyError::new)?;
    let mut cases = Vec::new();
    let mut diags = Vec::new();
    for path in files {
        match read_source(&path) {
            Ok(file) => {
                if let Some(parsed) = parse_file(&file, &mut diags) {
                    cases.extend(external_cases(&file, parsed, &mut diags));
                }
            }
            Err(d) => diags.push(*d),
        }
    }
    if diags.is_empty() {
        Ok(cases)
    } else {
        Err(PolicyError::new(diags))
    }
}

/// Parses one test file's text (for tools that hold tests in memory). Like
/// [`load_tests`], it refuses a self-contained file.
pub fn parse_tests(name: impl Into<PathBuf>, text: &str) -> Result<Vec<TestCase>, PolicyError> {
    let file = Arc::new(SourceFile::new(name, text));
    let mut diags = Vec::new();
    let cases = match parse_file(&file, &mut diags) {
        Some(parsed) => external_cases(&file, parsed, &mut diags),
        None => Vec::new(),
    };
    if diags.is_empty() {
        Ok(cases)
    } else {
        Err(PolicyError::new(diags))
    }
}

/// Parses one test file of either kind, self-contained or not.
pub fn parse_test_file(name: impl Into<PathBuf>, text: &str) -> Result<TestFile, PolicyError> {
    let file = Arc::new(SourceFile::new(name, text));
    let mut diags = Vec::new();
    match parse_file(&file, &mut diags) {
        Some(parsed) if diags.is_empty() => Ok(parsed.file),
        _ => Err(PolicyError::new(diags)),
    }
}

/// A parsed file with where its `policies` key was, for diagnostics.
struct Parsed {
    file: TestFile,
    policies_at: Option<(usize, usize)>,
}

/// The cases of a file meant to run against an outside policy set.
fn external_cases(
    source: &Arc<SourceFile>,
    parsed: Parsed,
    diags: &mut Vec<PolicyDiagnostic>,
) -> Vec<TestCase> {
    if !parsed.file.is_self_contained() {
        return parsed.file.cases;
    }
    let d = PolicyDiagnostic::new(
        DiagnosticKind::Test,
        "this test file carries its own `policies` or `expressions`, so it does not test a policy directory".to_owned(),
    )
    .help("self-contained test files are run by the engine's own test suite; keep them out of policy directories");
    diags.push(match parsed.policies_at {
        Some(at) => d.at(source, at),
        None => d,
    });
    Vec::new()
}

fn parse_file(source: &Arc<SourceFile>, diags: &mut Vec<PolicyDiagnostic>) -> Option<Parsed> {
    let raw: RawTestFile = match serde_saphyr::from_str(source.text()) {
        Ok(r) => r,
        Err(e) => {
            diags.push(yaml_diagnostic(source, &e));
            return None;
        }
    };
    let policies_at = raw.policies.as_ref().map(|p| span_of(source, p));
    let needs_policies = raw.load_errors.is_some()
        || raw.load_error_count.is_some()
        || !raw.same_version_as.is_empty()
        || !raw.different_version_from.is_empty();
    if needs_policies && raw.policies.is_none() {
        diags.push(PolicyDiagnostic::new(
            DiagnosticKind::Test,
            "`load_errors`, `load_error_count` and the version keys need `policies`".to_owned(),
        ));
    }
    if raw.load_errors.is_some() && !raw.tests.is_empty() {
        diags.push(PolicyDiagnostic::new(
            DiagnosticKind::Test,
            "a test file has `tests` or `load_errors`, not both".to_owned(),
        ));
    }
    let mut cases = Vec::new();
    let mut names = HashSet::new();
    for t in raw.tests {
        if !names.insert(t.name.value.clone()) {
            diags.push(
                PolicyDiagnostic::new(
                    DiagnosticKind::Test,
                    format!("test `{}` is declared twice in this file", t.name.value),
                )
                .at(source, span_of(source, &t.name)),
            );
            continue;
        }
        match test_case(source, t) {
            Ok(case) => cases.push(case),
            Err(d) => diags.push(*d),
        }
    }
    Some(Parsed {
        file: TestFile {
            path: source.path().to_owned(),
            note: raw.note,
            cases,
            policies: raw.policies.map(|p| p.value),
            load_errors: raw.load_errors,
            load_error_count: raw.load_error_count,
            same_version_as: raw.same_version_as,
            different_version_from: raw.different_version_from,
            expressions: raw.expressions,
        },
        policies_at,
    })
}

type Located = Box<PolicyDiagnostic>;

fn bad(source: &Arc<SourceFile>, at: (usize, usize), msg: String) -> Located {
    Box::new(PolicyDiagnostic::new(DiagnosticKind::Test, msg).at(source, at))
}

fn test_case(source: &Arc<SourceFile>, t: RawTest) -> Result<TestCase, Located> {
    let Some(decision) = Verdict::parse(&t.expect.decision.value) else {
        let d = bad(
            source,
            span_of(source, &t.expect.decision),
            format!("unknown decision `{}`", t.expect.decision.value),
        );
        return Err(Box::new(
            d.help("decisions are allow, require_approval, block"),
        ));
    };
    let payload = payload(source, &t)?;
    let now = match &t.now {
        None => Value::Null,
        Some(s) => match DateTime::parse_from_rfc3339(s.value.trim()) {
            Ok(t) => Value::Timestamp(t.with_timezone(&Utc)),
            Err(_) => {
                let d = bad(
                    source,
                    span_of(source, s),
                    format!("`{}` is not an RFC 3339 timestamp", s.value),
                );
                return Err(Box::new(d.help("for example `2026-05-23T13:31:08Z`")));
            }
        },
    };
    let aggregates = aggregates(source, &t)?;
    let history = match &t.history {
        None => None,
        Some(runs) => {
            if t.aggregates.is_some() {
                return Err(bad(
                    source,
                    span_of(source, &t.name),
                    "give `aggregates` or `history`, not both".to_owned(),
                ));
            }
            Some(
                runs.iter()
                    .map(|r| past_run(source, r))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        }
    };
    let expect = expectation(decision, &t.name.value, t.expect)
        .map_err(|msg| bad(source, span_of(source, &t.name), msg))?;
    Ok(TestCase {
        name: t.name.value.clone(),
        file: source.path().to_owned(),
        line: t.name.referenced.line() as usize,
        action: t.action,
        actor: t.actor,
        payload,
        source: t.source,
        context: t.context,
        now,
        aggregates,
        history,
        expect,
    })
}

/// One run of `history:`.
fn past_run(source: &Arc<SourceFile>, r: &RawPastRun) -> Result<PastRun, Located> {
    let at = span_of(source, &r.at);
    let created_at = DateTime::parse_from_rfc3339(r.at.value.trim())
        .map_err(|_| {
            bad(
                source,
                at,
                format!("`{}` is not an RFC 3339 timestamp", r.at.value),
            )
        })?
        .with_timezone(&Utc);
    let payload = match (&r.payload, &r.payload_json) {
        (Some(_), Some(_)) => {
            return Err(bad(
                source,
                at,
                "give a past run's `payload` or `payload_json`, not both".to_owned(),
            ));
        }
        (Some(p), None) => p.clone(),
        (None, Some(j)) => {
            parse_json(j.as_bytes()).map_err(|e| bad(source, at, format!("payload_json: {e}")))?
        }
        (None, None) => Value::Object(Map::new()),
    };
    let statuses = match &r.status {
        None => vec![RunStatus::Allowed],
        Some(s) => {
            let names: Vec<&Value> = match &s.value {
                Value::List(items) => items.iter().collect(),
                other => vec![other],
            };
            let mut out = Vec::new();
            for n in names {
                match n.as_str().and_then(RunStatus::from_name) {
                    Some(st) => out.push(st),
                    None => {
                        return Err(bad(
                            source,
                            span_of(source, s),
                            format!("`{}` is not a run status", n.to_json()),
                        ));
                    }
                }
            }
            out
        }
    };
    Ok(PastRun {
        action: r.action.clone(),
        actor: r.actor.clone(),
        payload,
        source: r.source.clone(),
        created_at,
        statuses,
    })
}

/// `aggregates:`: a mapping from an aggregate's text to its number.
fn aggregates(source: &Arc<SourceFile>, t: &RawTest) -> Result<Aggregates, Located> {
    let mut out = Aggregates::new();
    let Some(given) = &t.aggregates else {
        return Ok(out);
    };
    let at = span_of(source, given);
    let Value::Object(map) = &given.value else {
        return Err(bad(
            source,
            at,
            "`aggregates` must map each aggregate's text to its value".to_owned(),
        ));
    };
    for (text, value) in map.iter() {
        match value {
            Value::Number(_) => out.insert(text, value.clone()),
            other => {
                return Err(bad(
                    source,
                    at,
                    format!(
                        "the value of aggregate `{text}` must be a number, not {}",
                        other.type_name()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The payload: a mapping given as YAML (`payload`) or as JSON text
/// (`payload_json`, read like a request body so numbers keep their digits).
fn payload(source: &Arc<SourceFile>, t: &RawTest) -> Result<Value, Located> {
    let (value, at) = match (&t.payload, &t.payload_json) {
        (Some(_), Some(j)) => {
            return Err(bad(
                source,
                span_of(source, j),
                "give `payload` or `payload_json`, not both".to_owned(),
            ));
        }
        (None, None) => return Ok(Value::Object(Map::new())),
        (Some(p), None) => (p.value.clone(), span_of(source, p)),
        (None, Some(j)) => {
            let at = span_of(source, j);
            match parse_json(j.value.as_bytes()) {
                Ok(v) => (v, at),
                Err(e) => return Err(bad(source, at, format!("payload_json: {e}"))),
            }
        }
    };
    if matches!(value, Value::Object(_)) {
        Ok(value)
    } else {
        Err(bad(
            source,
            at,
            "a test payload must be a mapping (an object)".to_owned(),
        ))
    }
}

fn expectation(decision: Verdict, name: &str, e: RawExpect) -> Result<Expectation, String> {
    let optional_name = |v: Option<Value>| -> Result<Option<Option<String>>, String> {
        match v {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(other) => Err(format!(
                "in `expect` of `{name}`: expected a name or null, got {}",
                other.type_name()
            )),
        }
    };
    Ok(Expectation {
        decision,
        rule: optional_name(e.rule)?,
        approvers: optional_name(e.approvers)?,
        quorum: match (e.no_quorum, e.quorum) {
            (Some(true), _) => Some(None),
            (_, q) => q.map(Some),
        },
        reason: e.reason,
        reason_exact: e.reason_exact,
        matched: e.matched,
        matched_decisions: e.matched_decisions,
        shadow: e.shadow,
        errors: e.errors,
        error_contains: e.error_contains,
        members: e.members,
        timeout: e.timeout,
        timeout_seconds: e.timeout_seconds,
        escalate_to: e.escalate_to,
        escalate_after_seconds: e.escalate_after_seconds,
        declared: e.declared,
        risk: e.risk,
    })
}
