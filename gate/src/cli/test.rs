//! `countersign test`: run policy tests, with optional rule coverage.

use std::path::PathBuf;
use std::process::ExitCode;

use countersign_engine::PolicySet;
use countersign_engine::testing::{load_tests, run_tests};

pub fn run(dirs: &[PathBuf], coverage: bool, verbose: bool) -> ExitCode {
    let set = match PolicySet::load(dirs) {
        Ok(set) => set,
        Err(err) => {
            super::render::print_policy_error(&err);
            outln!("tests not run: the policies above have errors");
            return ExitCode::FAILURE;
        }
    };
    let cases = match load_tests(dirs) {
        Ok(cases) => cases,
        Err(err) => {
            super::render::print_policy_error(&err);
            outln!("tests not run: the test files above have errors");
            return ExitCode::FAILURE;
        }
    };
    let run = run_tests(&set, &cases);
    for o in &run.outcomes {
        let where_ = format!("{}:{}", o.case.file.display(), o.case.line);
        if o.passed() {
            if verbose {
                outln!("pass  {where_}  {}", o.case.name);
            }
            continue;
        }
        outln!("FAIL  {where_}  {}", o.case.name);
        outln!(
            "      action {} → {} ({})",
            o.case.action,
            o.report.decision,
            o.report.reason
        );
        for m in &o.mismatches {
            outln!("      {:<9} - expected: {}", m.field, m.expected);
            outln!("      {:<9} + actual:   {}", "", m.actual);
        }
        for e in &o.report.errors {
            outln!(
                "      note: rule `{}` failed to evaluate: {}",
                e.rule,
                e.message
            );
        }
    }
    if cases.is_empty() {
        outln!("warning: no *_test.yaml tests found");
    }
    if coverage {
        let covered = run.total_rules - run.uncovered.len();
        outln!(
            "coverage: {covered} of {} rules matched by a test",
            run.total_rules
        );
        let mut last_file = None;
        for u in &run.uncovered {
            if last_file != Some(&u.file) {
                outln!("  {}", u.file.display());
                last_file = Some(&u.file);
            }
            outln!("    line {:<4} {} / {}", u.line, u.action, u.rule);
        }
    }
    outln!("{} passed, {} failed", run.passed(), run.failed());
    if run.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
