//! The finance example set and its test cases, as every benchmark sees them.

use std::path::PathBuf;

use countersign_engine::testing::{TestCase, load_tests, run_tests};
use countersign_engine::{PolicySet, Verdict};

/// `policies/finance/` in this repository.
pub fn finance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/finance")
}

/// One finance test case and the verdict Countersign reaches for it.
pub struct Case {
    /// The case as `load_tests` reads it.
    pub test: TestCase,
    /// Countersign's verdict, which the case's own expectations confirm.
    pub expected: Verdict,
}

/// The loaded finance set with its cases.
pub struct Finance {
    /// The compiled policy set.
    pub set: PolicySet,
    /// Every case in `*_test.yaml`, in file order.
    pub cases: Vec<Case>,
}

impl Finance {
    /// Loads the set and its cases, and checks that every case passes (a
    /// benchmark of a set that fails its own tests would time the wrong
    /// thing).
    pub fn load() -> Self {
        let dir = finance_dir();
        let set = match PolicySet::load(&[&dir]) {
            Ok(set) => set,
            Err(e) => panic!("the finance policies do not load: {e:?}"),
        };
        let tests = match load_tests(&[&dir]) {
            Ok(t) => t,
            Err(e) => panic!("the finance tests do not load: {e:?}"),
        };
        let run = run_tests(&set, &tests);
        let failing: Vec<&str> = run
            .outcomes
            .iter()
            .filter(|o| !o.passed())
            .map(|o| o.case.name.as_str())
            .collect();
        assert!(failing.is_empty(), "finance test cases fail: {failing:?}");
        // Cases of actions whose rules count or sum past runs are left out:
        // no stateless peer can express those rules, and deciding them
        // needs the aggregates' values (which `decide` alone does not have).
        let cases = run
            .outcomes
            .into_iter()
            .filter(|o| set.aggregates(&o.case.action).is_empty())
            .map(|o| Case {
                expected: o.report.decision,
                test: o.case,
            })
            .collect();
        Finance { set, cases }
    }

    /// The representative subset timed case by case: every action, every
    /// verdict, a failing condition, a time-of-day rule and an undeclared
    /// action.
    pub fn representative(&self) -> Vec<&Case> {
        REPRESENTATIVE
            .iter()
            .map(|name| {
                self.cases
                    .iter()
                    .find(|c| c.test.name == *name)
                    .unwrap_or_else(|| panic!("no finance test case is named {name:?}"))
            })
            .collect()
    }
}

/// Names of the cases timed one by one (the whole suite is also timed as a
/// batch).
pub const REPRESENTATIVE: &[&str] = &[
    "two weeks of read-only access is granted automatically",
    "a privileged role needs two security approvals",
    "an agent cannot grant access to itself, whatever the case",
    "a verified change needs two members of the CFO office",
    "an IBAN with spaces is refused",
    "a small reminder goes straight through",
    "above 10000 the CFO office is asked instead",
    "late Friday UTC is already Saturday morning in Tokyo",
    "an unknown reminder count goes to a human",
    "a full payment needs two controllers",
    "one cent short is not paid",
    "a 50 refund is automatic",
    "a charge with an open chargeback is not refunded",
    "partial refunds may not add up to more than the charge",
    "personal data needs data protection",
    "the bucket pattern is anchored at the end",
    "an action no policy declares is blocked",
];

/// What the finance policies declare per action besides their rules: the
/// verdict when no rule matches (`default`) and the verdict of a rule whose
/// condition cannot be evaluated (`on_error`). The CEL and Cedar
/// translations have no place for these, so they read them from here; the
/// Rego translation carries its own copy.
pub const ACTIONS: &[(&str, Verdict, Verdict)] = &[
    ("grant_access", Verdict::RequireApproval, Verdict::Block),
    ("change_bank_details", Verdict::Block, Verdict::Block),
    (
        "send_invoice_reminder",
        Verdict::Allow,
        Verdict::RequireApproval,
    ),
    ("mark_invoice_paid", Verdict::Block, Verdict::Block),
    ("issue_refund", Verdict::Block, Verdict::Block),
    ("export_customer_data", Verdict::Block, Verdict::Block),
];

/// `(default, on_error)` of a declared finance action.
pub fn action_defaults(name: &str) -> Option<(Verdict, Verdict)> {
    ACTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, d, e)| (d, e))
}
