//! Data-driven policy cases: every `engine/tests/cases/*.yaml` file is one
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]
//! test (files under `cases/pending/` are not run; they pin behaviour the
//! engine does not have yet).
//!
//! # Case file format
//!
//! ```yaml
//! note: what this file pins                  # required
//! policies:                                  # the policy set: file name -> YAML text
//!   a.yaml: |
//!     version: 1
//!     actions: …
//!
//! cases:                                     # requests decided against that set
//!   - note: what this case shows             # required; named in failures
//!     action: send_invoice_reminder          # required
//!     actor: finance_agent                   # optional, any value (default null)
//!     payload: {amount: 100}                 # optional, any value (default {})
//!     payload_json: '{"amount": 1250.10}'    # optional instead of payload: JSON text
//!                                            #   read with parse_json (exact digits)
//!     source: {ip: 10.0.0.1}                 # optional, any value (default null)
//!     now: 2026-05-23T13:31:08Z              # optional RFC 3339 instant (default null)
//!     want:                                  # every key but `decision` is optional
//!       decision: allow                      # allow | require_approval | block
//!       rule: small                          # deciding rule, or null for none
//!       reason: "…"                          # the exact reason
//!       reason_contains: "…"                 # a substring of the reason
//!       matched: [a, b]                      # enforced matching rules, in order
//!       matched_decisions: [allow, block]    # their decisions (on_error if errored)
//!       shadow: [c]                          # shadow matching rules, in order
//!       errors: [a]                          # rules whose condition failed, in order
//!       error_contains: "is missing"         # a substring of some error message
//!       approvers: finance-leads             # approver group, or null
//!       members: [alice, bob]                # ids of that group's members
//!       quorum: 2                            # or null
//!       timeout: 24h                         # as the report writes it, or null
//!       timeout_seconds: 86400               # or null
//!       escalate_to: cfo                     # or null
//!       escalate_after_seconds: 3600         # or null
//!       declared: true                       # whether a policy declares the action
//!       risk: high                           # the action's risk, or null
//!
//! load_error:                                # instead of cases: the set must not load
//!   - contains: "unknown function `lowr`"    # a substring of the diagnostic message
//!     at: "a.yaml:7:15"                      # optional: PolicyDiagnostic::location()
//!     snippet: "lowr"                        # optional: PolicyDiagnostic::snippet()
//!     help_contains: "did you mean `lower`"  # optional: a substring of the help
//!     kind: "Expression(UnknownFunction)"    # optional: Debug form of the kind
//!     file: a.yaml                           # optional: the file it is located in
//! load_error_count: 1                        # optional: exact number of diagnostics
//!
//! same_version_as:                           # optional: other sets (file name -> text)
//!   - b.yaml: |                              #   whose policy_version must be equal
//!       …
//! different_version_from:                    # optional: other sets whose
//!   - a.yaml: |                              #   policy_version must differ
//!       …
//!
//! expressions:                               # optional: single expressions, compiled
//!   - expr: "0.1 + 0.2 == 0.3"               #   with CompiledExpr::compile
//!     note: why                              # optional, named in failures
//!     action: pay                            # optional (default `test_action`)
//!     risk: high                             # optional (default `medium`)
//!     payload: {}                            # optional; also payload_json, actor,
//!     now: 2026-05-23T13:31:08Z              #   source and now, as for cases
//!     want: true                             # exactly one of: the value,
//!     # eval_error: "substring"              #   an evaluation error (it compiles), or
//!     # compile_error: "substring"           #   a compile error (rejected at load)
//!     folded: true                           # optional: whether it folded to a constant
//!     at: 3                                  # optional, with compile_error: byte
//!                                            #   offset where the diagnostic starts
//!     help_contains: "did you mean"          # optional, with compile_error
//! ```
//!
//! Run the pending files instead with `COUNTERSIGN_PENDING_CASES=1`.
//!
//! A file has `cases`, `load_error` or neither (then the set must simply
//! load); `expressions` may appear in any file, even without `policies`.
//! Every mismatch in a file is reported, each naming its case and showing
//! what was wanted and what the engine gave.

use std::fmt::{self, Write as _};
use std::path::Path;

use countersign_engine::{
    Bindings, CompiledExpr, DecisionReport, PolicyError, PolicySet, Request, Value, Verdict,
    parse_json,
};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

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

/// Policy files in the order written: file name -> YAML text.
#[derive(Debug, Default)]
struct Files(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Files {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FilesVisitor;
        impl<'de> Visitor<'de> for FilesVisitor {
            type Value = Files;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of file names to YAML text")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Files, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, String>()? {
                    out.push(entry);
                }
                Ok(Files(out))
            }
        }
        d.deserialize_map(FilesVisitor)
    }
}

/// `Some(None)` for an explicit null, `None` (via `default`) when absent.
fn explicit<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    note: String,
    #[serde(default)]
    policies: Option<Files>,
    #[serde(default)]
    cases: Vec<Case>,
    #[serde(default)]
    load_error: Option<Vec<WantDiagnostic>>,
    #[serde(default)]
    load_error_count: Option<usize>,
    #[serde(default)]
    same_version_as: Vec<Files>,
    #[serde(default)]
    different_version_from: Vec<Files>,
    #[serde(default)]
    expressions: Vec<ExprCase>,
}

/// The request fields shared by `cases` and `expressions`.
#[derive(Debug, Default)]
struct Inputs {
    actor: Value,
    payload: Option<Value>,
    payload_json: Option<String>,
    source: Value,
    now: Option<String>,
}

/// Owned request values.
struct Resolved {
    actor: Value,
    payload: Value,
    source: Value,
    now: Value,
}

impl Inputs {
    fn resolve(&self) -> Result<Resolved, String> {
        let payload = match (&self.payload, &self.payload_json) {
            (Some(_), Some(_)) => return Err("give `payload` or `payload_json`, not both".into()),
            (Some(p), None) => p.clone(),
            (None, Some(text)) => {
                parse_json(text.as_bytes()).map_err(|e| format!("payload_json: {e}"))?
            }
            (None, None) => Value::Object(countersign_engine::Map::new()),
        };
        let now = match &self.now {
            None => Value::Null,
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| Value::Timestamp(t.with_timezone(&chrono::Utc)))
                .map_err(|e| format!("now `{text}` is not RFC 3339: {e}"))?,
        };
        Ok(Resolved {
            actor: self.actor.clone(),
            payload,
            source: self.source.clone(),
            now,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    note: String,
    action: String,
    #[serde(default)]
    actor: Value,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    payload_json: Option<String>,
    #[serde(default)]
    source: Value,
    #[serde(default)]
    now: Option<String>,
    want: Want,
}

impl Case {
    fn inputs(&self) -> Inputs {
        Inputs {
            actor: self.actor.clone(),
            payload: self.payload.clone(),
            payload_json: self.payload_json.clone(),
            source: self.source.clone(),
            now: self.now.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Want {
    decision: String,
    #[serde(default, deserialize_with = "explicit")]
    rule: Option<Option<String>>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reason_contains: Option<String>,
    #[serde(default)]
    matched: Option<Vec<String>>,
    #[serde(default)]
    matched_decisions: Option<Vec<String>>,
    #[serde(default)]
    shadow: Option<Vec<String>>,
    #[serde(default)]
    errors: Option<Vec<String>>,
    #[serde(default)]
    error_contains: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    approvers: Option<Option<String>>,
    #[serde(default)]
    members: Option<Vec<String>>,
    #[serde(default, deserialize_with = "explicit")]
    quorum: Option<Option<u32>>,
    #[serde(default, deserialize_with = "explicit")]
    timeout: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit")]
    timeout_seconds: Option<Option<u64>>,
    #[serde(default, deserialize_with = "explicit")]
    escalate_to: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit")]
    escalate_after_seconds: Option<Option<u64>>,
    #[serde(default)]
    declared: Option<bool>,
    #[serde(default, deserialize_with = "explicit")]
    risk: Option<Option<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WantDiagnostic {
    contains: String,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    snippet: Option<String>,
    #[serde(default)]
    help_contains: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprCase {
    expr: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    risk: Option<String>,
    #[serde(default)]
    actor: Value,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    payload_json: Option<String>,
    #[serde(default)]
    source: Value,
    #[serde(default)]
    now: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    want: Option<Option<Value>>,
    #[serde(default)]
    eval_error: Option<String>,
    #[serde(default)]
    compile_error: Option<String>,
    #[serde(default)]
    folded: Option<bool>,
    #[serde(default)]
    at: Option<usize>,
    #[serde(default)]
    help_contains: Option<String>,
}

/// Collects every mismatch of one file.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn push(&mut self, msg: impl Into<String>) {
        self.0.push(msg.into());
    }

    /// Records `field` of case `note` when `want` and `got` differ.
    fn check<T: PartialEq + fmt::Debug>(
        &mut self,
        note: &str,
        field: &str,
        want: &T,
        got: &T,
    ) -> bool {
        if want == got {
            return true;
        }
        self.push(format!(
            "case `{note}`: {field}\n      want: {want:?}\n       got: {got:?}"
        ));
        false
    }
}

fn run_case_file(path: &Path, text: String) -> datatest_stable::Result<()> {
    let file: CaseFile = serde_saphyr::from_str(&text).map_err(|e| {
        CaseFailure(format!(
            "{}: cannot read the case file: {e}",
            path.display()
        ))
    })?;
    let mut failures = Failures::default();
    if file.policies.is_none()
        && (!file.cases.is_empty()
            || file.load_error.is_some()
            || !file.same_version_as.is_empty()
            || !file.different_version_from.is_empty())
    {
        failures.push("`cases`, `load_error` and the version keys need `policies`");
    }
    if file.load_error.is_some() && !file.cases.is_empty() {
        failures.push("a file has `cases` or `load_error`, not both");
    }
    if file.cases.is_empty()
        && file.load_error.is_none()
        && file.expressions.is_empty()
        && file.same_version_as.is_empty()
        && file.different_version_from.is_empty()
    {
        failures.push(
            "the file checks nothing: add `cases`, `load_error`, `expressions` or a version key",
        );
    }
    if let Some(policies) = &file.policies {
        let loaded = load(policies);
        match (&file.load_error, loaded) {
            (Some(wanted), Err(err)) => {
                check_load_error(&mut failures, wanted, file.load_error_count, &err);
            }
            (Some(_), Ok(_)) => {
                failures.push("the policy set loaded, but `load_error` wants it rejected")
            }
            (None, Err(err)) => failures.push(format!(
                "the policy set does not load:\n{}",
                render_diagnostics(&err)
            )),
            (None, Ok(set)) => {
                for case in &file.cases {
                    run_case(&mut failures, &set, case);
                }
                check_versions(&mut failures, &set, &file);
            }
        }
    }
    for (i, e) in file.expressions.iter().enumerate() {
        run_expression(&mut failures, i, e);
    }
    if failures.0.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} ({}): {} problem{}\n",
        path.display(),
        file.note,
        failures.0.len(),
        if failures.0.len() == 1 { "" } else { "s" }
    );
    for f in &failures.0 {
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

fn load(files: &Files) -> Result<PolicySet, PolicyError> {
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

fn check_load_error(
    failures: &mut Failures,
    wanted: &[WantDiagnostic],
    count: Option<usize>,
    err: &PolicyError,
) {
    let diags = err.diagnostics();
    let mut used = vec![false; diags.len()];
    for w in wanted {
        let found = diags.iter().enumerate().position(|(i, d)| {
            !used[i]
                && d.message().contains(&w.contains)
                && w.at
                    .as_ref()
                    .is_none_or(|at| d.location().is_some_and(|l| l.to_string() == *at))
                && w.snippet
                    .as_ref()
                    .is_none_or(|s| d.snippet() == Some(s.as_str()))
                && w.help_contains
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
            None => failures.push(format!(
                "load_error `{}`: no diagnostic matches\n      want: contains={:?} file={:?} at={:?} snippet={:?} help_contains={:?} kind={:?}\n       got:\n{}",
                w.contains,
                w.contains,
                w.file,
                w.at,
                w.snippet,
                w.help_contains,
                w.kind,
                render_diagnostics(err)
            )),
        }
    }
    if let Some(n) = count {
        if n != diags.len() {
            failures.push(format!(
                "load_error_count: want {n} diagnostics, got {}:\n{}",
                diags.len(),
                render_diagnostics(err)
            ));
        }
    }
}

fn check_versions(failures: &mut Failures, set: &PolicySet, file: &CaseFile) {
    for (i, other) in file.same_version_as.iter().enumerate() {
        match load(other) {
            Ok(o) => {
                failures.check(
                    &format!("same_version_as[{i}]"),
                    "policy_version",
                    &set.version(),
                    &o.version(),
                );
            }
            Err(e) => failures.push(format!(
                "same_version_as[{i}] does not load:\n{}",
                render_diagnostics(&e)
            )),
        }
    }
    for (i, other) in file.different_version_from.iter().enumerate() {
        match load(other) {
            Ok(o) if o.version() == set.version() => failures.push(format!(
                "different_version_from[{i}]: both sets have policy_version {}",
                o.version()
            )),
            Ok(_) => {}
            Err(e) => failures.push(format!(
                "different_version_from[{i}] does not load:\n{}",
                render_diagnostics(&e)
            )),
        }
    }
}

fn run_case(failures: &mut Failures, set: &PolicySet, case: &Case) {
    let note = case.note.as_str();
    let inputs = match case.inputs().resolve() {
        Ok(r) => r,
        Err(e) => return failures.push(format!("case `{note}`: {e}")),
    };
    let request = Request {
        action: &case.action,
        actor: &inputs.actor,
        payload: &inputs.payload,
        source: &inputs.source,
        now: &inputs.now,
    };
    let report = set.decide(&request).to_report(&case.action);
    let before = failures.0.len();
    compare_report(failures, note, &case.want, &report);
    if failures.0.len() > before {
        failures.push(format!("case `{note}`: full report:\n{}", pretty(&report)));
    }
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

fn compare_report(f: &mut Failures, note: &str, want: &Want, got: &DecisionReport) {
    match Verdict::parse(&want.decision) {
        Some(v) => {
            f.check(note, "decision", &v, &got.decision);
        }
        None => f.push(format!(
            "case `{note}`: `{}` is not a decision",
            want.decision
        )),
    }
    if let Some(rule) = &want.rule {
        f.check(note, "rule", rule, &got.rule);
    }
    if let Some(reason) = &want.reason {
        f.check(note, "reason", reason, &got.reason);
    }
    if let Some(part) = &want.reason_contains {
        if !got.reason.contains(part.as_str()) {
            f.push(format!(
                "case `{note}`: reason_contains\n      want: …{part:?}…\n       got: {:?}",
                got.reason
            ));
        }
    }
    if let Some(names) = &want.matched {
        let got_names: Vec<&str> = got.matched.iter().map(|h| h.rule.as_str()).collect();
        f.check(
            note,
            "matched",
            &names.iter().map(String::as_str).collect::<Vec<_>>(),
            &got_names,
        );
    }
    if let Some(decisions) = &want.matched_decisions {
        let got_d: Vec<&str> = got.matched.iter().map(|h| h.decision.as_str()).collect();
        f.check(
            note,
            "matched_decisions",
            &decisions.iter().map(String::as_str).collect::<Vec<_>>(),
            &got_d,
        );
    }
    if let Some(names) = &want.shadow {
        let got_names: Vec<&str> = got.shadow.iter().map(|h| h.rule.as_str()).collect();
        f.check(
            note,
            "shadow",
            &names.iter().map(String::as_str).collect::<Vec<_>>(),
            &got_names,
        );
    }
    if let Some(names) = &want.errors {
        let got_names: Vec<&str> = got.errors.iter().map(|e| e.rule.as_str()).collect();
        f.check(
            note,
            "errors",
            &names.iter().map(String::as_str).collect::<Vec<_>>(),
            &got_names,
        );
    }
    if let Some(part) = &want.error_contains {
        if !got.errors.iter().any(|e| e.message.contains(part.as_str())) {
            let messages: Vec<&str> = got.errors.iter().map(|e| e.message.as_str()).collect();
            f.push(format!(
                "case `{note}`: error_contains\n      want: …{part:?}…\n       got: {messages:?}"
            ));
        }
    }
    if let Some(a) = &want.approvers {
        f.check(note, "approvers", a, &got.approvers);
    }
    if let Some(m) = &want.members {
        let got_ids: Vec<&str> = got.approver_members.iter().map(|m| m.id.as_str()).collect();
        f.check(
            note,
            "members",
            &m.iter().map(String::as_str).collect::<Vec<_>>(),
            &got_ids,
        );
    }
    if let Some(q) = &want.quorum {
        f.check(note, "quorum", q, &got.quorum);
    }
    if let Some(t) = &want.timeout {
        f.check(note, "timeout", t, &got.timeout);
    }
    if let Some(t) = &want.timeout_seconds {
        f.check(note, "timeout_seconds", t, &got.timeout_seconds);
    }
    if let Some(e) = &want.escalate_to {
        f.check(
            note,
            "escalate_to",
            e,
            &got.escalation.as_ref().map(|e| e.to.clone()),
        );
    }
    if let Some(e) = &want.escalate_after_seconds {
        f.check(
            note,
            "escalate_after_seconds",
            e,
            &got.escalation.as_ref().map(|e| e.after_seconds),
        );
    }
    if let Some(d) = &want.declared {
        f.check(note, "declared", d, &got.declared);
    }
    if let Some(r) = &want.risk {
        f.check(note, "risk", r, &got.risk);
    }
}

fn run_expression(f: &mut Failures, i: usize, e: &ExprCase) {
    let label = match &e.note {
        Some(n) => format!("expressions[{i}] `{}` ({n})", e.expr),
        None => format!("expressions[{i}] `{}`", e.expr),
    };
    let label = label.as_str();
    let outcomes = usize::from(e.want.is_some())
        + usize::from(e.eval_error.is_some())
        + usize::from(e.compile_error.is_some());
    if outcomes != 1 {
        return f.push(format!(
            "case {label}: give exactly one of want, eval_error, compile_error"
        ));
    }
    let inputs = Inputs {
        actor: e.actor.clone(),
        payload: e.payload.clone(),
        payload_json: e.payload_json.clone(),
        source: e.source.clone(),
        now: e.now.clone(),
    };
    let r = match inputs.resolve() {
        Ok(r) => r,
        Err(msg) => return f.push(format!("case {label}: {msg}")),
    };
    let action = e.action.as_deref().unwrap_or("test_action");
    let risk = e.risk.as_deref().unwrap_or("medium");
    let compiled = CompiledExpr::compile(&e.expr, action, risk);
    if let Some(want) = &e.compile_error {
        match compiled {
            Ok(c) => f.push(format!(
                "case {label}: compile_error\n      want: rejected with …{want:?}…\n       got: compiled (constant: {:?})",
                c.constant()
            )),
            Err(diags) => {
                let hit = diags.iter().find(|d| d.message.contains(want.as_str()));
                match hit {
                    None => f.push(format!(
                        "case {label}: compile_error\n      want: …{want:?}…\n       got: {:?}",
                        diags.iter().map(|d| d.message.as_str()).collect::<Vec<_>>()
                    )),
                    Some(d) => {
                        if let Some(at) = e.at {
                            f.check(label, "compile_error offset", &at, &d.span.start);
                        }
                        if let Some(h) = &e.help_contains {
                            if !d.help.as_deref().is_some_and(|t| t.contains(h.as_str())) {
                                f.push(format!(
                                    "case {label}: help_contains\n      want: …{h:?}…\n       got: {:?}",
                                    d.help
                                ));
                            }
                        }
                    }
                }
            }
        }
        return;
    }
    let compiled = match compiled {
        Ok(c) => c,
        Err(diags) => {
            return f.push(format!(
                "case {label}: does not compile: {:?}",
                diags.iter().map(|d| d.message.as_str()).collect::<Vec<_>>()
            ));
        }
    };
    if let Some(folded) = e.folded {
        f.check(label, "folded", &folded, &compiled.constant().is_some());
    }
    let bindings = Bindings {
        actor: &r.actor,
        payload: &r.payload,
        source: &r.source,
        now: &r.now,
    };
    let got = compiled.evaluate(&bindings);
    match (&e.want, &e.eval_error, got) {
        (Some(want), _, Ok(v)) => {
            let want = want.clone().unwrap_or(Value::Null);
            if want != v {
                f.push(format!(
                    "case {label}: value\n      want: {}\n       got: {}",
                    want.to_json(),
                    v.to_json()
                ));
            }
        }
        (Some(want), _, Err(err)) => f.push(format!(
            "case {label}: value\n      want: {}\n       got: evaluation error {:?}",
            want.clone().unwrap_or(Value::Null).to_json(),
            err.message()
        )),
        (_, Some(want), Ok(v)) => f.push(format!(
            "case {label}: eval_error\n      want: …{want:?}…\n       got: value {}",
            v.to_json()
        )),
        (_, Some(want), Err(err)) => {
            if !err.message().contains(want.as_str()) {
                f.push(format!(
                    "case {label}: eval_error\n      want: …{want:?}…\n       got: {:?}",
                    err.message()
                ));
            }
        }
        (None, None, _) => {}
    }
}
