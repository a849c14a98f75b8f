//! Data-driven policy cases: every `engine/tests/cases/*.yaml` file is one
//! test, run through the runner `countersign test` uses
//! (`countersign_engine::testing`). The files are self-contained test
//! files: the `*_test.yaml` format with its policy set inline; the format is
//! documented on that module. Files under `cases/pending/` are not run; they
//! pin behaviour the engine does not have yet. Run them instead with
//! `COUNTERSIGN_PENDING_CASES=1`.
//!
//! Every mismatch in a file is reported, each naming its case and showing
//! what was wanted and what the engine gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::fmt::{self, Write as _};
use std::path::Path;

use countersign_engine::testing::{parse_test_file, run_test_file};

datatest_stable::harness! {
    { test = run_case_file, root = "tests/cases", pattern = case_pattern() },
}

/// The files run: `cases/*.yaml`, or with `COUNTERSIGN_PENDING_CASES=1` only
/// `cases/pending/*.yaml` (to see which pending cases the engine now passes).
fn case_pattern() -> &'static str {
    if std::env::var_os("COUNTERSIGN_PENDING_CASES").is_some_and(|v| v == "1") {
        r"^pending/[^/]+\.yaml$"
    } else {
        r"^[^/]+\.yaml$"
    }
}

fn run_case_file(path: &Path, text: String) -> datatest_stable::Result<()> {
    let file = parse_test_file(path, &text).map_err(|e| {
        let mut msg = format!("{}: cannot read the case file:\n", path.display());
        for d in e.diagnostics() {
            let _ = writeln!(msg, "  {}", d.to_plain());
        }
        CaseFailure(msg)
    })?;
    let outcome = run_test_file(&file);
    let mut failures = outcome.problems.clone();
    if file.note.is_none() {
        failures.push("a case file says what it pins in `note`".to_owned());
    }
    for o in outcome.run.iter().flat_map(|r| &r.outcomes) {
        if o.passed() {
            continue;
        }
        for m in &o.mismatches {
            failures.push(format!(
                "case `{}`: {}\n      want: {}\n       got: {}",
                o.case.name, m.field, m.expected, m.actual
            ));
        }
        let report = serde_json::to_string_pretty(&o.report)
            .unwrap_or_else(|e| format!("<unprintable: {e}>"));
        failures.push(format!("case `{}`: full report:\n{report}", o.case.name));
    }
    if failures.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} ({}): {} problem{}\n",
        path.display(),
        file.note.as_deref().unwrap_or("no note"),
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    for f in &failures {
        let _ = writeln!(msg, "  - {f}");
    }
    Err(Box::new(CaseFailure(msg)))
}

/// The failure report of one file. Its `Debug` form is the plain text, since
/// the harness prints errors with `{:?}`.
struct CaseFailure(String);

impl fmt::Debug for CaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaseFailure {}
