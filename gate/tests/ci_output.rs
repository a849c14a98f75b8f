//! The CI faces of the policy commands: `check --format json|sarif`,
//! `test --format junit|json`, `eval --exit-code`, and `schema`, checked
//! against what their consumers read (SARIF 2.1.0 schema with a real
//! validator, JUnit's testsuites/testsuite/testcase/failure structure).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const POLICY: &str = r#"version: 1
approvers:
  finance-leads:
    members:
      - { id: alice, email: alice@example.com }
      - { id: bob, email: bob@example.com }
actions:
  send_invoice_reminder:
    risk: medium
    approvers: finance-leads
    rules:
      - name: large-amount
        when: payload.amount > 500
        decision: require_approval
      - name: default
        decision: allow
  wire:
    rules:
      - name: never
        decision: block
"#;

const TESTS: &str = r#"tests:
  - name: small reminders go straight through
    action: send_invoice_reminder
    payload: { amount: 100 }
    expect: { decision: allow, rule: default }
  - name: "wrong on purpose: <large> & \"quoted\""
    action: send_invoice_reminder
    payload: { amount: 900 }
    expect: { decision: allow }
"#;

const MORE_TESTS: &str = r#"tests:
  - name: wires are blocked
    action: wire
    expect: { decision: block }
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn countersign(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("run countersign")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn set_up(policy: &str, tests: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("policies")).expect("mkdir");
    std::fs::write(dir.path().join("policies/finance.yaml"), policy).expect("write");
    for (name, body) in tests {
        std::fs::write(dir.path().join("policies").join(name), body).expect("write");
    }
    dir
}

/// `check-jsonschema` from the test venv (scripts/test.sh installs it), or
/// from the PATH.
pub fn check_jsonschema() -> PathBuf {
    let venv = root().join("target/py-venv/bin/check-jsonschema");
    if venv.exists() {
        return venv;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("check-jsonschema"))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "check-jsonschema is needed: run scripts/test.sh once, or \
             `python3 -m venv target/py-venv && target/py-venv/bin/pip install check-jsonschema`"
        )
    })
}

fn validate(schema: &Path, instance: &Path) -> Output {
    Command::new(check_jsonschema())
        .arg("--schemafile")
        .arg(schema)
        .arg(instance)
        .output()
        .expect("run check-jsonschema")
}

// --- check --format json|sarif ---------------------------------------------

#[test]
fn check_json_reports_ok_and_every_problem_located() {
    let dir = set_up(POLICY, &[]);
    let out = countersign(&["check", "--format", "json", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["actions"], 2);
    assert_eq!(v["rules"], 3);
    assert_eq!(v["policy_version"].as_str().unwrap().len(), 64);

    let broken = POLICY
        .replace("payload.amount > 500", "lowr(payload.amount) > 500")
        .replace("decision: allow", "decision: alow");
    let dir = set_up(&broken, &[]);
    let out = countersign(&["check", "--format", "json", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let d = v["diagnostics"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{v:#}");
    assert_eq!(d[0]["file"], "policies/finance.yaml");
    assert_eq!(
        (d[0]["line"].as_u64(), d[0]["column"].as_u64()),
        (Some(13), Some(15))
    );
    assert_eq!(d[0]["code"], "countersign::expr::unknown_function");
    assert_eq!(d[0]["snippet"], "lowr");
    assert_eq!(d[0]["end_column"], 19);
    assert!(d[0]["help"].as_str().unwrap().contains("lower"));
    assert_eq!(
        (d[1]["line"].as_u64(), d[1]["column"].as_u64()),
        (Some(16), Some(19))
    );
}

#[test]
fn check_sarif_is_valid_sarif_2_1_0_with_what_github_needs() {
    let broken = POLICY
        .replace("payload.amount > 500", "lowr(payload.amount) > 500")
        .replace("decision: allow", "decision: alow");
    let dir = set_up(&broken, &[]);
    let out = countersign(&["check", "--format", "sarif", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let sarif_path = dir.path().join("check.sarif");
    std::fs::write(&sarif_path, &out.stdout).unwrap();
    let schema = root().join("gate/tests/fixtures/sarif-schema-2.1.0.json");
    let res = validate(&schema, &sarif_path);
    assert!(
        res.status.success(),
        "{}{}",
        text(&res.stdout),
        text(&res.stderr)
    );

    // What GitHub code scanning requires of an upload, property by property.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert!(
        v["$schema"]
            .as_str()
            .unwrap()
            .contains("sarif-schema-2.1.0")
    );
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "countersign");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let id = r["ruleId"].as_str().unwrap();
        let idx = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[idx]["id"], id);
        assert_eq!(r["level"], "error");
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "policies/finance.yaml");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"],
        serde_json::json!({"startLine": 13, "startColumn": 15, "endLine": 13, "endColumn": 19})
    );

    // A clean set: a valid log with no results, exit 0.
    let dir = set_up(POLICY, &[]);
    let out = countersign(&["check", "--format", "sarif", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&sarif_path, &out.stdout).unwrap();
    assert!(validate(&schema, &sarif_path).status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"][0]["results"], serde_json::json!([]));
}

/// The validator really rejects a log GitHub would refuse (no tool name):
/// the test above cannot pass vacuously.
#[test]
fn the_sarif_schema_rejects_a_log_without_a_driver_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sarif");
    std::fs::write(
        &bad,
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{}},"results":[]}]}"#,
    )
    .unwrap();
    let schema = root().join("gate/tests/fixtures/sarif-schema-2.1.0.json");
    assert!(!validate(&schema, &bad).status.success());
}

// --- test --format junit|json ------------------------------------------------

#[test]
fn test_junit_has_the_structure_jenkins_and_gitlab_read() {
    let dir = set_up(
        POLICY,
        &[("finance_test.yaml", TESTS), ("wire_test.yaml", MORE_TESTS)],
    );
    let out = countersign(&["test", "--format", "junit", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let xml = text(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    assert_eq!(suites.attribute("tests"), Some("3"));
    assert_eq!(suites.attribute("failures"), Some("1"));
    assert_eq!(suites.attribute("errors"), Some("0"));
    let suite_elems: Vec<_> = suites
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suite_elems.len(), 2);
    let finance = suite_elems[0];
    assert_eq!(
        finance.attribute("name"),
        Some("policies/finance_test.yaml")
    );
    assert_eq!(finance.attribute("tests"), Some("2"));
    assert_eq!(finance.attribute("failures"), Some("1"));
    let cases: Vec<_> = finance
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2);
    assert_eq!(
        cases[0].attribute("name"),
        Some("small reminders go straight through")
    );
    assert_eq!(
        cases[0].attribute("classname"),
        Some("policies.finance_test")
    );
    assert_eq!(
        cases[0].attribute("file"),
        Some("policies/finance_test.yaml")
    );
    assert_eq!(cases[0].attribute("line"), Some("2"));
    assert!(cases[0].children().all(|n| !n.has_tag_name("failure")));
    // Escaping round-trips: the name comes back exactly.
    assert_eq!(
        cases[1].attribute("name"),
        Some("wrong on purpose: <large> & \"quoted\"")
    );
    let failure = cases[1]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure element");
    assert_eq!(
        failure.attribute("message"),
        Some("decision: expected allow, actual require_approval")
    );
    assert!(
        failure
            .text()
            .unwrap()
            .contains("action send_invoice_reminder")
    );
    let wire = suite_elems[1];
    assert_eq!(
        (wire.attribute("tests"), wire.attribute("failures")),
        (Some("1"), Some("0"))
    );

    // All passing: exit 0, zero failures.
    let dir = set_up(POLICY, &[("wire_test.yaml", MORE_TESTS)]);
    let out = countersign(&["test", "--format", "junit", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let xml = text(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(doc.root_element().attribute("failures"), Some("0"));
}

#[test]
fn test_junit_reports_policies_that_do_not_load_as_an_error() {
    let dir = set_up(
        &POLICY.replace("decision: allow", "decision: alow"),
        &[("finance_test.yaml", TESTS)],
    );
    let out = countersign(&["test", "--format", "junit", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let xml = text(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(doc.root_element().attribute("errors"), Some("1"));
    let error = doc
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .expect("an error element");
    assert!(
        error.text().unwrap().contains("unknown decision `alow`"),
        "{xml}"
    );
}

#[test]
fn test_json_lists_each_case_with_its_mismatches_and_coverage() {
    let dir = set_up(POLICY, &[("finance_test.yaml", TESTS)]);
    let out = countersign(
        &["test", "--format", "json", "--coverage", "policies"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["ok"], false);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases[1]["passed"], false);
    assert_eq!(cases[1]["decision"], "require_approval");
    assert_eq!(cases[1]["mismatches"][0]["field"], "decision");
    assert_eq!(cases[1]["line"], 6);
    assert_eq!(v["coverage"]["total_rules"], 3);
    assert_eq!(v["coverage"]["uncovered"][0]["rule"], "never");
}

// --- eval --exit-code ----------------------------------------------------------

#[test]
fn eval_exit_code_says_the_decision() {
    let dir = set_up(POLICY, &[]);
    let eval = |action: &str, payload: &str, extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--policies",
            "policies",
            "--action",
            action,
            "--payload",
            payload,
        ];
        args.extend_from_slice(extra);
        countersign(&args, dir.path())
    };
    let code = |o: Output| o.status.code();
    assert_eq!(
        code(eval(
            "send_invoice_reminder",
            r#"{"amount":1}"#,
            &["--exit-code"]
        )),
        Some(0)
    );
    assert_eq!(
        code(eval(
            "send_invoice_reminder",
            r#"{"amount":900}"#,
            &["--exit-code"]
        )),
        Some(3)
    );
    assert_eq!(code(eval("wire", "{}", &["--exit-code"])), Some(4));
    assert_eq!(code(eval("undeclared", "{}", &["--exit-code"])), Some(4));
    // Without the flag the decision does not change the exit code.
    assert_eq!(code(eval("wire", "{}", &[])), Some(0));
    // Bad input stays 2.
    assert_eq!(code(eval("wire", "[1]", &["--exit-code"])), Some(2));
    // The JSON is printed either way.
    let out = eval(
        "send_invoice_reminder",
        r#"{"amount":900}"#,
        &["--exit-code"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "require_approval");
}
