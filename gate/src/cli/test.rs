//! `countersign test`: run policy tests, with optional rule coverage, for a
//! person (text) or CI (JUnit XML, JSON).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use countersign_engine::testing::{CaseOutcome, TestRun, load_tests, run_tests};
use countersign_engine::{PolicyError, PolicySet};
use serde_json::{Value as Json, json};

/// Output formats of `countersign test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// Failures with a diff, and a closing `N passed, N failed` line.
    Text,
    /// JUnit XML (testsuites / testsuite per file / testcase), as GitHub,
    /// GitLab and Jenkins read it.
    Junit,
    /// One JSON object.
    Json,
}

/// Options of `countersign test`.
#[derive(Debug, Clone, Copy)]
pub struct TestOptions {
    /// List rules no test matched.
    pub coverage: bool,
    /// List passing tests too (text).
    pub verbose: bool,
    /// The output format.
    pub format: TestFormat,
}

pub fn run(dirs: &[PathBuf], opts: TestOptions) -> ExitCode {
    let set = match PolicySet::load(dirs) {
        Ok(set) => set,
        Err(err) => return load_failure(opts.format, "policies", &err),
    };
    let cases = match load_tests(dirs) {
        Ok(cases) => cases,
        Err(err) => return load_failure(opts.format, "test files", &err),
    };
    let run = run_tests(&set, &cases);
    match opts.format {
        TestFormat::Text => text(&run, opts),
        TestFormat::Junit => outln!("{}", junit(&run)),
        TestFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&json_report(&run, opts.coverage))
                .unwrap_or_else(|_| "{}".to_owned())
        ),
    }
    if run.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The policies or test files do not load: the diagnostics on stderr, and
/// for the machine formats a report CI shows as an error.
fn load_failure(format: TestFormat, what: &str, err: &PolicyError) -> ExitCode {
    super::render::print_policy_error(err);
    match format {
        TestFormat::Text => outln!("tests not run: the {what} above have errors"),
        TestFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": false,
                "error": format!("tests not run: the {what} have errors"),
                "diagnostics": err.diagnostics().iter().map(super::check::diagnostic_json).collect::<Vec<_>>(),
            }))
            .unwrap_or_else(|_| "{}".to_owned())
        ),
        TestFormat::Junit => {
            let details: Vec<String> = err.diagnostics().iter().map(|d| d.to_plain()).collect();
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            let _ = writeln!(
                out,
                "<testsuites name=\"countersign\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0\">"
            );
            let _ = writeln!(
                out,
                "  <testsuite name=\"countersign\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0\">"
            );
            let _ = writeln!(
                out,
                "    <testcase name=\"load {}\" classname=\"countersign\" time=\"0\">",
                xml_escape(what)
            );
            let _ = writeln!(
                out,
                "      <error message=\"{}\" type=\"load_error\">{}</error>",
                xml_escape(&format!("the {what} do not load ({} problems)", details.len())),
                xml_escape(&details.join("\n"))
            );
            out.push_str("    </testcase>\n  </testsuite>\n</testsuites>");
            outln!("{out}");
        }
    }
    ExitCode::FAILURE
}

fn text(run: &TestRun, opts: TestOptions) {
    for o in &run.outcomes {
        let where_ = format!("{}:{}", o.case.file.display(), o.case.line);
        if o.passed() {
            if opts.verbose {
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
    if run.outcomes.is_empty() {
        outln!("warning: no *_test.yaml tests found");
    }
    if opts.coverage {
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
}

/// Escapes text for an XML attribute or element, dropping the characters
/// XML 1.0 cannot carry at all.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `policies/finance/refunds_test.yaml` → `policies.finance.refunds_test`,
/// the dotted class name JUnit consumers group by.
fn classname(file: &std::path::Path) -> String {
    let s = super::check::uri(file);
    let s = s
        .strip_suffix(".yaml")
        .or_else(|| s.strip_suffix(".yml"))
        .unwrap_or(&s);
    s.replace('/', ".")
}

fn failure_text(o: &CaseOutcome) -> String {
    let mut t = format!(
        "action {} → {} ({})\n",
        o.case.action, o.report.decision, o.report.reason
    );
    for m in &o.mismatches {
        let _ = writeln!(
            t,
            "{}: expected {}, actual {}",
            m.field, m.expected, m.actual
        );
    }
    for e in &o.report.errors {
        let _ = writeln!(
            t,
            "note: rule `{}` failed to evaluate: {}",
            e.rule, e.message
        );
    }
    t
}

/// The run as JUnit XML: one `testsuite` per test file (in file order), one
/// `testcase` per case, a `failure` element for each failing case, and the
/// counts on both levels.
pub fn junit(run: &TestRun) -> String {
    let mut files: Vec<&std::path::Path> = Vec::new();
    for o in &run.outcomes {
        if !files.contains(&o.case.file.as_path()) {
            files.push(&o.case.file);
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"countersign\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"0\">",
        run.outcomes.len(),
        run.failed()
    );
    for file in files {
        let cases: Vec<&CaseOutcome> = run
            .outcomes
            .iter()
            .filter(|o| o.case.file == file)
            .collect();
        let failures = cases.iter().filter(|o| !o.passed()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"0\">",
            xml_escape(&super::check::uri(file)),
            cases.len()
        );
        for o in cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"0\"",
                xml_escape(&o.case.name),
                xml_escape(&classname(file)),
                xml_escape(&super::check::uri(file)),
                o.case.line
            );
            if o.passed() {
                out.push_str("/>\n");
                continue;
            }
            let summary: Vec<String> = o
                .mismatches
                .iter()
                .map(|m| format!("{}: expected {}, actual {}", m.field, m.expected, m.actual))
                .collect();
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>\n    </testcase>",
                xml_escape(&summary.join("; ")),
                xml_escape(&failure_text(o))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>");
    out
}

fn json_report(run: &TestRun, coverage: bool) -> Json {
    let cases: Vec<Json> = run
        .outcomes
        .iter()
        .map(|o| {
            json!({
                "name": o.case.name,
                "file": super::check::uri(&o.case.file),
                "line": o.case.line,
                "action": o.case.action,
                "passed": o.passed(),
                "decision": o.report.decision,
                "rule": o.report.rule,
                "reason": o.report.reason,
                "mismatches": o.mismatches.iter().map(|m| json!({
                    "field": m.field,
                    "expected": m.expected,
                    "actual": m.actual,
                })).collect::<Vec<_>>(),
                "errors": o.report.errors,
            })
        })
        .collect();
    let mut report = json!({
        "ok": run.failed() == 0,
        "passed": run.passed(),
        "failed": run.failed(),
        "cases": cases,
    });
    if coverage {
        report["coverage"] = json!({
            "total_rules": run.total_rules,
            "covered_rules": run.total_rules - run.uncovered.len(),
            "uncovered": run.uncovered.iter().map(|u| json!({
                "file": super::check::uri(&u.file),
                "line": u.line,
                "action": u.action,
                "rule": u.rule,
            })).collect::<Vec<_>>(),
        });
    }
    report
}
