//! Running test cases against a policy set: each expectation compared with
//! the decision, and the rules no case reached.

use std::collections::HashSet;
use std::path::PathBuf;

use super::case::{Expectation, TestCase};
use crate::decide::{DecisionReport, HitReport};
use crate::expr::{Aggregates, Bindings};
use crate::policy::PolicySet;

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

/// Runs every case against `set` and computes rule coverage.
pub fn run_tests(set: &PolicySet, cases: &[TestCase]) -> TestRun {
    let mut hit: HashSet<(&str, &str)> = HashSet::new();
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        let (aggregates, unknown) = case_aggregates(set, case);
        let decision = set.decide_with(&case.request(), &aggregates);
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
        let mut mismatches = compare(&case.expect, &report);
        mismatches.extend(unknown);
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

/// The aggregates a case hands the engine, as the gate would: an
/// aggregate whose `where:` values cannot be computed from the request
/// fails (so `on_error` applies) whatever the case gives; the others take
/// the case's values. A value given for no aggregate of the action is a
/// mismatch (a typo would otherwise pass unnoticed).
fn case_aggregates(set: &PolicySet, case: &TestCase) -> (Aggregates, Vec<Mismatch>) {
    let specs = set.aggregates(&case.action);
    let bindings = Bindings {
        actor: &case.actor,
        payload: &case.payload,
        source: &case.source,
        context: &case.context,
        now: &case.now,
    };
    let mut out = Aggregates::new();
    // A case that gives neither `history` nor `aggregates` has no past runs.
    let no_runs = Vec::new();
    let history = match (&case.history, case.aggregates.is_empty()) {
        (Some(h), _) => Some(h),
        (None, true) => Some(&no_runs),
        (None, false) => None,
    };
    for spec in &specs {
        if let Some(history) = history {
            let result = match &case.now {
                crate::value::Value::Timestamp(now) => spec.scan(&bindings, *now, history),
                // With no runs, the window does not matter.
                _ if history.is_empty() => {
                    spec.scan(&bindings, chrono::DateTime::UNIX_EPOCH, history)
                }
                _ => Err("a case with `history` needs `now`".to_owned()),
            };
            match result {
                Ok(v) => out.insert(spec.key(), v),
                Err(m) => out.insert_error(spec.key(), m),
            }
            continue;
        }
        match spec.group_values(&bindings) {
            Err(e) => out.insert_error(spec.key(), e.message),
            Ok(_) => match case.aggregates.get(spec.key()) {
                Some(Ok(v)) => out.insert(spec.key(), v.clone()),
                Some(Err(m)) => out.insert_error(spec.key(), m.clone()),
                None => {}
            },
        }
    }
    let unknown = case
        .aggregates
        .iter()
        .filter(|(k, _)| !specs.iter().any(|s| s.key() == *k))
        .map(|(k, _)| Mismatch {
            field: "aggregates",
            expected: format!("an aggregate of `{}`'s rules", case.action),
            actual: format!(
                "`{k}` is none of them (they are: {})",
                if specs.is_empty() {
                    "none".to_owned()
                } else {
                    specs
                        .iter()
                        .map(|s| format!("`{}`", s.key()))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        })
        .collect();
    (out, unknown)
}

fn show<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "null".to_owned(), ToString::to_string)
}

fn show_list<S: AsRef<str>>(v: &[S]) -> String {
    let items: Vec<&str> = v.iter().map(AsRef::as_ref).collect();
    format!("[{}]", items.join(", "))
}

/// Collects the mismatches of one case.
#[derive(Default)]
struct Checks(Vec<Mismatch>);

impl Checks {
    fn check(&mut self, field: &'static str, ok: bool, expected: String, actual: String) {
        if !ok {
            self.0.push(Mismatch {
                field,
                expected,
                actual,
            });
        }
    }

    /// Compares an optional expectation whose value may be null.
    fn nullable<T: PartialEq + ToString>(
        &mut self,
        field: &'static str,
        want: &Option<Option<T>>,
        got: &Option<T>,
    ) {
        if let Some(w) = want {
            self.check(field, w == got, show(w), show(got));
        }
    }

    /// Compares an optional list of names, in order.
    fn list(&mut self, field: &'static str, want: &Option<Vec<String>>, got: &[&str]) {
        if let Some(w) = want {
            self.check(field, w == got, show_list(w), show_list(got));
        }
    }
}

fn names(hits: &[HitReport]) -> Vec<&str> {
    hits.iter().map(|h| h.rule.as_str()).collect()
}

fn compare(e: &Expectation, report: &DecisionReport) -> Vec<Mismatch> {
    let mut c = Checks::default();
    c.check(
        "decision",
        e.decision == report.decision,
        e.decision.to_string(),
        report.decision.to_string(),
    );
    c.nullable("rule", &e.rule, &report.rule);
    c.nullable("approvers", &e.approvers, &report.approvers);
    c.nullable("quorum", &e.quorum, &report.quorum);
    if let Some(r) = &e.reason {
        c.check(
            "reason",
            report.reason.contains(r.as_str()),
            format!("… {r} …"),
            report.reason.clone(),
        );
    }
    if let Some(r) = &e.reason_exact {
        c.check(
            "reason_exact",
            *r == report.reason,
            r.clone(),
            report.reason.clone(),
        );
    }
    c.list("matched", &e.matched, &names(&report.matched));
    let decisions: Vec<&str> = report.matched.iter().map(|h| h.decision.as_str()).collect();
    c.list("matched_decisions", &e.matched_decisions, &decisions);
    c.list("shadow", &e.shadow, &names(&report.shadow));
    let errored: Vec<&str> = report.errors.iter().map(|x| x.rule.as_str()).collect();
    c.list("errors", &e.errors, &errored);
    if let Some(part) = &e.error_contains {
        let messages: Vec<&str> = report.errors.iter().map(|x| x.message.as_str()).collect();
        c.check(
            "error_contains",
            messages.iter().any(|m| m.contains(part.as_str())),
            format!("… {part} …"),
            show_list(&messages),
        );
    }
    let members: Vec<&str> = report
        .approver_members
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    c.list("members", &e.members, &members);
    c.nullable("timeout", &e.timeout, &report.timeout);
    c.nullable(
        "timeout_seconds",
        &e.timeout_seconds,
        &report.timeout_seconds,
    );
    let escalation = report.escalation.as_ref();
    c.nullable(
        "escalate_to",
        &e.escalate_to,
        &escalation.map(|x| x.to.clone()),
    );
    c.nullable(
        "escalate_after_seconds",
        &e.escalate_after_seconds,
        &escalation.map(|x| x.after_seconds),
    );
    if let Some(d) = e.declared {
        c.check(
            "declared",
            d == report.declared,
            d.to_string(),
            report.declared.to_string(),
        );
    }
    c.nullable("risk", &e.risk, &report.risk);
    c.0
}
