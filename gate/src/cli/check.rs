//! `countersign check`: validate a policy set, for a person (text) or a
//! machine (JSON, or SARIF 2.1.0 for code-scanning annotations).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use countersign_engine::{PolicyDiagnostic, PolicyError, PolicySet};
use serde_json::{Value as Json, json};

/// Output formats of `countersign check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// A summary line, or every problem with its snippet (stderr).
    Text,
    /// One JSON object on stdout.
    Json,
    /// A SARIF 2.1.0 log on stdout (GitHub code scanning, GitLab, …).
    Sarif,
}

/// Where the SARIF 2.1.0 schema is published (OASIS errata 01).
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

pub fn run(dirs: &[PathBuf], format: CheckFormat) -> ExitCode {
    let loaded = PolicySet::load(dirs);
    match format {
        CheckFormat::Text => text(&loaded),
        CheckFormat::Json => {
            outln!("{}", pretty(&json_report(&loaded)));
            exit(&loaded)
        }
        CheckFormat::Sarif => {
            let diagnostics = loaded.as_ref().err().map_or(&[][..], |e| e.diagnostics());
            outln!("{}", pretty(&sarif_log(diagnostics)));
            exit(&loaded)
        }
    }
}

fn exit(loaded: &Result<PolicySet, PolicyError>) -> ExitCode {
    if loaded.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn pretty(v: &Json) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".to_owned())
}

fn text(loaded: &Result<PolicySet, PolicyError>) -> ExitCode {
    match loaded {
        Ok(set) => {
            let actions = set.actions().len();
            let rules = set.rule_count();
            outln!(
                "ok: {actions} action{}, {rules} rule{}, policy version {}",
                if actions == 1 { "" } else { "s" },
                if rules == 1 { "" } else { "s" },
                set.version()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            super::render::print_policy_error(err);
            ExitCode::FAILURE
        }
    }
}

/// The diagnostic's stable code (`countersign::yaml`, …).
pub fn code(d: &PolicyDiagnostic) -> String {
    miette::Diagnostic::code(d).map_or_else(|| "countersign::error".to_owned(), |c| c.to_string())
}

/// A path as SARIF and CI tools want it: relative as given, `/` separated.
pub fn uri(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./")
        .map_or_else(|| s.clone(), str::to_owned)
}

/// Start and end (line, column), 1-based, of a diagnostic's span.
fn region(d: &PolicyDiagnostic) -> Option<(usize, usize, usize, usize)> {
    let start = d.location()?;
    let (mut end_line, mut end_col) = (start.line, start.column);
    if let Some(snippet) = d.snippet() {
        for c in snippet.chars() {
            if c == '\n' {
                end_line += 1;
                end_col = 1;
            } else {
                end_col += 1;
            }
        }
    }
    if (end_line, end_col) == (start.line, start.column) {
        end_col += 1;
    }
    Some((start.line, start.column, end_line, end_col))
}

/// The JSON form of one diagnostic.
pub fn diagnostic_json(d: &PolicyDiagnostic) -> Json {
    let loc = d.location();
    let region = region(d);
    json!({
        "code": code(d),
        "message": d.message(),
        "help": d.help_text(),
        "file": loc.as_ref().map(|l| uri(&l.file)),
        "line": loc.as_ref().map(|l| l.line),
        "column": loc.as_ref().map(|l| l.column),
        "end_line": region.map(|r| r.2),
        "end_column": region.map(|r| r.3),
        "snippet": d.snippet(),
    })
}

fn json_report(loaded: &Result<PolicySet, PolicyError>) -> Json {
    match loaded {
        Ok(set) => json!({
            "ok": true,
            "policy_version": set.version(),
            "actions": set.actions().len(),
            "rules": set.rule_count(),
            "groups": set.groups().len(),
            "files": set.files().iter().map(|f| uri(f)).collect::<Vec<_>>(),
            "diagnostics": [],
        }),
        Err(err) => json!({
            "ok": false,
            "diagnostics": err.diagnostics().iter().map(diagnostic_json).collect::<Vec<_>>(),
        }),
    }
}

/// A SARIF 2.1.0 log with one run of `countersign` and one result per
/// diagnostic; each distinct diagnostic code is a reporting rule.
pub fn sarif_log(diagnostics: &[PolicyDiagnostic]) -> Json {
    let mut rule_ids: Vec<String> = diagnostics.iter().map(code).collect();
    rule_ids.sort();
    rule_ids.dedup();
    let rules: Vec<Json> = rule_ids
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "name": id.trim_start_matches("countersign::").replace("::", "/"),
                "shortDescription": { "text": format!("Countersign policy problem: {id}") },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let results: Vec<Json> = diagnostics
        .iter()
        .map(|d| {
            let id = code(d);
            let index = rule_ids.iter().position(|r| *r == id).unwrap_or(0);
            let mut text = d.message().to_owned();
            if let Some(help) = d.help_text() {
                text.push_str(" (help: ");
                text.push_str(help);
                text.push(')');
            }
            let mut result = json!({
                "ruleId": id,
                "ruleIndex": index,
                "level": "error",
                "message": { "text": text },
            });
            if let (Some(loc), Some((sl, sc, el, ec))) = (d.location(), region(d)) {
                result["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&loc.file), "uriBaseId": "%SRCROOT%" },
                        "region": {
                            "startLine": sl,
                            "startColumn": sc,
                            "endLine": el,
                            "endColumn": ec,
                        },
                    },
                }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "countersign",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/countersign-dev/countersign",
                    "rules": rules,
                },
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}
