//! Policy tests: `*_test.yaml` files of requests with expected decisions,
//! run against a policy set, with rule coverage.
//!
//! ```yaml
//! tests:
//!   - name: small reminders go straight through
//!     action: send_invoice_reminder
//!     actor: finance_agent
//!     payload: { amount: 100 }
//!     now: 2026-05-23T13:31:08Z     # optional; `now` is unset otherwise
//!     expect:
//!       decision: allow
//!       rule: default               # optional; null means "no rule matched"
//!       approvers: finance-leads    # optional
//!       quorum: 1                   # optional
//!       reason: "substring"         # optional
//!       matched: [a, b]             # optional, exact, in order
//!       shadow: [c]                 # optional
//!       errors: [d]                 # optional: rules whose condition failed
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::decide::{DecisionReport, Request};
use crate::policy::{
    DiagnosticKind, PolicyDiagnostic, PolicyError, PolicySet, SourceFile, Verdict, find_yaml_files,
    read_source, span_of, yaml_diagnostic,
};
use crate::value::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestFile {
    #[serde(default)]
    tests: Vec<RawTest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: Spanned<String>,
    action: String,
    #[serde(default)]
    actor: Value,
    #[serde(default)]
    payload: Option<Spanned<Value>>,
    #[serde(default)]
    source: Value,
    #[serde(default)]
    now: Option<Spanned<String>>,
    expect: RawExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    decision: Spanned<String>,
    #[serde(default)]
    rule: Option<Value>,
    #[serde(default)]
    approvers: Option<Value>,
    #[serde(default)]
    quorum: Option<u32>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    matched: Option<Vec<String>>,
    #[serde(default)]
    shadow: Option<Vec<String>>,
    #[serde(default)]
    errors: Option<Vec<String>>,
}

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
    /// The evaluation instant, or null.
    pub now: Value,
    expect: Expectation,
}

#[derive(Debug, Clone)]
struct Expectation {
    decision: Verdict,
    rule: Option<Option<String>>,
    approvers: Option<Option<String>>,
    quorum: Option<u32>,
    reason: Option<String>,
    matched: Option<Vec<String>>,
    shadow: Option<Vec<String>>,
    errors: Option<Vec<String>>,
}

impl TestCase {
    /// The request this case proposes.
    pub fn request(&self) -> Request<'_> {
        Request {
            action: &self.action,
            actor: &self.actor,
            payload: &self.payload,
            source: &self.source,
            now: &self.now,
        }
    }
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Which field (`decision`, `rule`, …).
    pub field: &'static str,
    /// What the test expected.
    pub expected: String,
    /// What the engine decided.
    pub actual: String,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The case.
    pub case: TestCase,
    /// The engine's decision.
    pub report: DecisionReport,
    /// Empty when the case passed.
    pub mismatches: Vec<Mismatch>,
}

impl CaseOutcome {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// A rule no test matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncoveredRule {
    /// The policy file.
    pub file: PathBuf,
    /// 1-based line of the rule's name.
    pub line: usize,
    /// The action.
    pub action: String,
    /// The rule.
    pub rule: String,
}

/// Results of running a policy test suite.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// Each case, in file order.
    pub outcomes: Vec<CaseOutcome>,
    /// Rules whose condition no case made true (enforced or shadow), by file
    /// and line.
    pub uncovered: Vec<UncoveredRule>,
    /// Number of rules in the set.
    pub total_rules: usize,
}

impl TestRun {
    /// Number of passing cases.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.passed()).count()
    }

    /// Number of failing cases.
    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }
}

/// Finds and reads every `*_test.yaml` under `roots`. Problems in test files
/// are reported like policy problems, located in their file.
pub fn load_tests<P: AsRef<Path>>(roots: &[P]) -> Result<Vec<TestCase>, PolicyError> {
    let roots: Vec<PathBuf> = roots.iter().map(|p| p.as_ref().to_owned()).collect();
    let files = find_yaml_files(&roots, true).map_err(PolicyError::new)?;
    let mut cases = Vec::new();
    let mut diags = Vec::new();
    for path in files {
        match read_source(&path) {
            Ok(file) => parse_test_file(&file, &mut cases, &mut diags),
            Err(d) => diags.push(*d),
        }
    }
    if diags.is_empty() {
        Ok(cases)
    } else {
        Err(PolicyError::new(diags))
    }
}

/// Parses one test file's text (for tools that hold tests in memory).
pub fn parse_tests(name: impl Into<PathBuf>, text: &str) -> Result<Vec<TestCase>, PolicyError> {
    let file = Arc::new(SourceFile::new(name, text));
    let mut cases = Vec::new();
    let mut diags = Vec::new();
    parse_test_file(&file, &mut cases, &mut diags);
    if diags.is_empty() {
        Ok(cases)
    } else {
        Err(PolicyError::new(diags))
    }
}

fn parse_test_file(
    file: &Arc<SourceFile>,
    cases: &mut Vec<TestCase>,
    diags: &mut Vec<PolicyDiagnostic>,
) {
    let raw: RawTestFile = match serde_saphyr::from_str(file.text()) {
        Ok(r) => r,
        Err(e) => {
            diags.push(yaml_diagnostic(file, &e));
            return;
        }
    };
    let mut names = HashSet::new();
    for t in raw.tests {
        let bad = |at: (usize, usize), msg: String| {
            PolicyDiagnostic::new(DiagnosticKind::Test, msg).at(file, at)
        };
        if !names.insert(t.name.value.clone()) {
            diags.push(bad(
                span_of(file, &t.name),
                format!("test `{}` is declared twice in this file", t.name.value),
            ));
            continue;
        }
        let Some(decision) = Verdict::parse(&t.expect.decision.value) else {
            diags.push(
                bad(
                    span_of(file, &t.expect.decision),
                    format!("unknown decision `{}`", t.expect.decision.value),
                )
                .help("decisions are allow, require_approval, block"),
            );
            continue;
        };
        let payload = match t.payload {
            None => Value::Object(crate::Map::new()),
            Some(p) if matches!(p.value, Value::Object(_)) => p.value,
            Some(p) => {
                diags.push(bad(
                    span_of(file, &p),
                    "a test payload must be a mapping (an object)".to_owned(),
                ));
                continue;
            }
        };
        let now = match &t.now {
            None => Value::Null,
            Some(s) => match DateTime::parse_from_rfc3339(s.value.trim()) {
                Ok(t) => Value::Timestamp(t.with_timezone(&Utc)),
                Err(_) => {
                    diags.push(
                        bad(
                            span_of(file, s),
                            format!("`{}` is not an RFC 3339 timestamp", s.value),
                        )
                        .help("for example `2026-05-23T13:31:08Z`"),
                    );
                    continue;
                }
            },
        };
        let optional_name = |v: Option<Value>| -> Result<Option<Option<String>>, String> {
            match v {
                None => Ok(None),
                Some(Value::Null) => Ok(Some(None)),
                Some(Value::String(s)) => Ok(Some(Some(s))),
                Some(other) => Err(format!(
                    "expected a name or null, got {}",
                    other.type_name()
                )),
            }
        };
        let (rule, approvers) = match (
            optional_name(t.expect.rule),
            optional_name(t.expect.approvers),
        ) {
            (Ok(r), Ok(a)) => (r, a),
            (Err(m), _) | (_, Err(m)) => {
                diags.push(bad(
                    span_of(file, &t.name),
                    format!("in `expect` of `{}`: {m}", t.name.value),
                ));
                continue;
            }
        };
        cases.push(TestCase {
            name: t.name.value.clone(),
            file: file.path().to_owned(),
            line: t.name.referenced.line() as usize,
            action: t.action,
            actor: t.actor,
            payload,
            source: t.source,
            now,
            expect: Expectation {
                decision,
                rule,
                approvers,
                quorum: t.expect.quorum,
                reason: t.expect.reason,
                matched: t.expect.matched,
                shadow: t.expect.shadow,
                errors: t.expect.errors,
            },
        });
    }
}

fn show(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "null".to_owned())
}

fn show_list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

/// Runs every case against `set` and computes rule coverage.
pub fn run_tests(set: &PolicySet, cases: &[TestCase]) -> TestRun {
    let mut hit: HashSet<(&str, &str)> = HashSet::new();
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        let decision = set.decide(&case.request());
        // A rule counts as covered only when its condition really held: a
        // test that reaches a rule only through an evaluation error does
        // not exercise it.
        for h in decision
            .matched
            .iter()
            .chain(decision.shadow.iter())
            .filter(|h| !h.errored)
        {
            if let Some(a) = decision.action {
                hit.insert((a.name.as_str(), h.rule.name.as_str()));
            }
        }
        let report = decision.to_report(&case.action);
        let e = &case.expect;
        let mut mismatches = Vec::new();
        let mut check = |field: &'static str, ok: bool, expected: String, actual: String| {
            if !ok {
                mismatches.push(Mismatch {
                    field,
                    expected,
                    actual,
                });
            }
        };
        check(
            "decision",
            e.decision == report.decision,
            e.decision.to_string(),
            report.decision.to_string(),
        );
        if let Some(rule) = &e.rule {
            check("rule", *rule == report.rule, show(rule), show(&report.rule));
        }
        if let Some(group) = &e.approvers {
            check(
                "approvers",
                *group == report.approvers,
                show(group),
                show(&report.approvers),
            );
        }
        if let Some(q) = e.quorum {
            check(
                "quorum",
                Some(q) == report.quorum,
                q.to_string(),
                report.quorum.map_or("null".to_owned(), |q| q.to_string()),
            );
        }
        if let Some(r) = &e.reason {
            check(
                "reason",
                report.reason.contains(r.as_str()),
                format!("… {r} …"),
                report.reason.clone(),
            );
        }
        let names = |hits: &[crate::decide::HitReport]| {
            hits.iter().map(|h| h.rule.clone()).collect::<Vec<_>>()
        };
        if let Some(m) = &e.matched {
            let got = names(&report.matched);
            check("matched", *m == got, show_list(m), show_list(&got));
        }
        if let Some(s) = &e.shadow {
            let got = names(&report.shadow);
            check("shadow", *s == got, show_list(s), show_list(&got));
        }
        if let Some(errs) = &e.errors {
            let got: Vec<String> = report.errors.iter().map(|x| x.rule.clone()).collect();
            check("errors", *errs == got, show_list(errs), show_list(&got));
        }
        outcomes.push(CaseOutcome {
            case: case.clone(),
            report,
            mismatches,
        });
    }
    let mut uncovered = Vec::new();
    for action in set.actions() {
        for rule in &action.rules {
            if !hit.contains(&(action.name.as_str(), rule.name.as_str())) {
                uncovered.push(UncoveredRule {
                    file: rule.origin.file.to_path_buf(),
                    line: rule.origin.line,
                    action: action.name.clone(),
                    rule: rule.name.clone(),
                });
            }
        }
    }
    uncovered.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    TestRun {
        outcomes,
        uncovered,
        total_rules: set.rule_count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
version: 1
approvers:
  leads:
    members: [{ id: alice }, { id: bob }]
actions:
  remind:
    approvers: leads
    rules:
      - name: large
        when: payload.amount > 500
        decision: require_approval
      - name: default
        decision: allow
      - name: never-hit
        when: payload.amount > 1000000
        decision: block
"#;

    #[test]
    fn passing_failing_and_coverage() {
        let set = PolicySet::from_sources([("p.yaml", POLICY)]).unwrap();
        let cases = parse_tests(
            "p_test.yaml",
            r#"
tests:
  - name: small
    action: remind
    payload: { amount: 100 }
    expect: { decision: allow, rule: default, matched: [default] }
  - name: wrong on purpose
    action: remind
    payload: { amount: 600 }
    expect: { decision: allow, rule: default, quorum: 2 }
"#,
        )
        .unwrap();
        let run = run_tests(&set, &cases);
        assert_eq!((run.passed(), run.failed()), (1, 1));
        let fields: Vec<&str> = run.outcomes[1].mismatches.iter().map(|m| m.field).collect();
        assert_eq!(fields, ["decision", "rule", "quorum"]);
        assert_eq!(run.outcomes[1].mismatches[0].actual, "require_approval");
        let uncovered: Vec<&str> = run.uncovered.iter().map(|u| u.rule.as_str()).collect();
        assert_eq!(uncovered, ["never-hit"]);
        assert_eq!(run.uncovered[0].line, 15);
    }

    #[test]
    fn bad_test_files_are_located() {
        let err = parse_tests(
            "t_test.yaml",
            "tests:\n  - name: x\n    action: a\n    now: yesterday\n    expect: { decision: allow }\n",
        )
        .unwrap_err();
        let d = &err.diagnostics()[0];
        assert!(d.message().contains("RFC 3339"), "{}", d.message());
        assert_eq!(d.location().map(|l| (l.line, l.column)), Some((4, 10)));

        let err = parse_tests(
            "t_test.yaml",
            "tests:\n  - name: x\n    action: a\n    expect: { decision: alow }\n",
        )
        .unwrap_err();
        assert!(
            err.diagnostics()[0]
                .message()
                .contains("unknown decision `alow`")
        );
    }
}
