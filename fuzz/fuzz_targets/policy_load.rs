//! Arbitrary bytes (read as lossy UTF-8) as one policy file.
//!
//! When loading fails, every diagnostic is rendered every way a user sees it:
//! `location()`, `snippet()`, `to_plain()` and miette's graphical report, the
//! way `countersign check` prints it. Spans computed from YAML positions and
//! mapped back through quoted and block scalars are where off-by-one and
//! char-boundary bugs hide, and they surface here as panics or as a report
//! miette cannot render.
//!
//! When loading succeeds, a few requests are decided for every declared
//! action (and one undeclared action), twice each to check determinism, and
//! the set is loaded again under another file name to check that its
//! version does not depend on the name.

#![no_main]

use std::sync::LazyLock;

use chrono::DateTime;
use countersign_engine::{PolicyDiagnostic, PolicyError, PolicySet, Request, Value, parse_json};
use libfuzzer_sys::fuzz_target;
use miette::{GraphicalReportHandler, GraphicalTheme};

fn json(text: &str) -> Value {
    match parse_json(text.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("the fuzz target's own fixture is invalid JSON: {e}"),
    }
}

/// (actor, payload, source, now) tuples decided for each action.
static REQUESTS: LazyLock<Vec<[Value; 4]>> = LazyLock::new(|| {
    let now = match DateTime::from_timestamp(1_709_649_000, 0) {
        Some(t) => Value::Timestamp(t),
        None => panic!("fixture timestamp out of range"),
    };
    vec![
        [
            Value::string("agent:ops-bot"),
            json(
                r#"{"amount": 1250.10, "currency": "EUR", "country": "FR", "env": "prod",
                    "customer": {"id": "cus_42", "tier": "gold", "tags": ["vip"]},
                    "items": [{"sku": "A-1", "qty": 2}], "count": 3, "path": "/etc/passwd"}"#,
            ),
            json(r#"{"ip": "10.0.0.7", "channel": "slack"}"#),
            now.clone(),
        ],
        [Value::Null, json("{}"), Value::Null, Value::Null],
        [
            json("[1, {}]"),
            json(r#"{"amount": -79228162514264337593543950335, "currency": 7, "customer": null, "items": {}}"#),
            Value::string(""),
            now,
        ],
    ]
});

fn handler() -> GraphicalReportHandler {
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(80)
}

fn render(diagnostic: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    if handler().render_report(&mut out, diagnostic).is_err() {
        panic!("miette could not render the diagnostic `{diagnostic}` (is its span outside the file?)");
    }
    out
}

fn exercise_diagnostic(text: &str, d: &PolicyDiagnostic) {
    let _ = d.kind();
    let _ = d.message();
    let _ = d.help_text();
    if let Some((start, end)) = d.span() {
        assert!(
            start <= end && end <= text.len(),
            "span {start}..{end} of `{}` is outside the {}-byte file",
            d.message(),
            text.len()
        );
        assert!(
            text.is_char_boundary(start) && text.is_char_boundary(end),
            "span {start}..{end} of `{}` splits a UTF-8 character",
            d.message()
        );
        assert!(d.snippet().is_some(), "a located diagnostic has no snippet");
    }
    if let Some(loc) = d.location() {
        assert!(loc.line >= 1 && loc.column >= 1, "location {loc} is not 1-based");
        let _ = loc.to_string();
    }
    let plain = d.to_plain();
    assert!(plain.contains(d.message()), "to_plain() lost the message: {plain:?}");
    let _ = render(d);
}

fn exercise_error(text: &str, e: &PolicyError) {
    assert!(!e.diagnostics().is_empty(), "a policy error without diagnostics");
    for d in e.diagnostics() {
        exercise_diagnostic(text, d);
    }
    // The whole error, with every diagnostic as a related report.
    let _ = render(e);
}

fn exercise_set(text: &str, set: &PolicySet) {
    let mut names: Vec<&str> = set.actions().iter().map(|a| a.name.as_str()).collect();
    names.push("fuzz.undeclared-action");
    for name in names {
        for [actor, payload, source, now] in REQUESTS.iter() {
            let req = Request { action: name, actor, payload, source, context: &Value::Null, now };
            let first = set.decide(&req).to_report(name);
            let second = set.decide(&req).to_report(name);
            assert_eq!(first, second, "deciding `{name}` twice gave different reports");
            assert_eq!(first.policy_version, set.version());
        }
    }
    let _ = set.rule_count();
    for g in set.groups() {
        assert!(set.group(&g.name).is_some(), "group `{}` is listed but not found by name", g.name);
    }
    for a in set.actions() {
        assert!(set.action(&a.name).is_some(), "action `{}` is listed but not found by name", a.name);
        let _ = set.action_group(a);
        for r in &a.rules {
            let _ = set.rule_group(a, r);
        }
    }
    match PolicySet::from_sources([("renamed/other.yml", text)]) {
        Ok(again) => assert_eq!(again.version(), set.version(), "the version depends on the file name"),
        Err(e) => panic!("the same text loaded once and then failed: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    match PolicySet::from_sources([("fuzz.yaml", text)]) {
        Ok(set) => exercise_set(text, &set),
        Err(e) => exercise_error(text, &e),
    }
});
