//! The `countersign` policy commands, run as a user runs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::path::Path;
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
        reason: Reminders above $500 need a finance lead
      - name: default
        decision: allow
  mark_invoice_paid:
    risk: high
    approvers: finance-leads
    rules:
      - name: always
        decision: require_approval
        quorum: 2
"#;

const TESTS: &str = r#"tests:
  - name: small reminders go straight through
    action: send_invoice_reminder
    payload: { amount: 100 }
    expect: { decision: allow, rule: default }
  - name: exactly 500 is not large
    action: send_invoice_reminder
    payload: { amount: 500.00 }
    expect: { decision: allow }
"#;

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

fn set_up(policy: &str, tests: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("policies")).expect("mkdir");
    std::fs::write(dir.path().join("policies/finance.yaml"), policy).expect("write");
    if let Some(t) = tests {
        std::fs::write(dir.path().join("policies/finance_test.yaml"), t).expect("write");
    }
    dir
}

#[test]
fn check_prints_one_summary_line() {
    let dir = set_up(POLICY, None);
    let out = countersign(&["check"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let (head, version) = lines[0].split_once(", policy version ").expect("version");
    assert_eq!(head, "ok: 2 actions, 3 rules");
    assert_eq!(version.len(), 64);
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn check_reports_every_problem_with_location_and_underline() {
    let broken = POLICY
        .replace("payload.amount > 500", "lowr(payload.amount) > 500")
        .replace("decision: allow", "decision: alow");
    let dir = set_up(&broken, None);
    let out = countersign(&["check", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("policies/finance.yaml:13:15: unknown function `lowr`"),
        "{err}"
    );
    assert!(err.contains("did you mean `lower`?"), "{err}");
    assert!(
        err.contains("policies/finance.yaml:17:19: unknown decision `alow`"),
        "{err}"
    );
    // miette draws the source line and underlines the span.
    assert!(err.contains("when: lowr(payload.amount) > 500"), "{err}");
    assert!(err.contains("────"), "{err}");
    assert!(err.contains("2 problems found"), "{err}");
}

#[test]
fn check_fails_on_a_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = countersign(&["check", "nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`nowhere` is not a directory"));
}

#[test]
fn test_passes_and_ends_with_the_count() {
    let dir = set_up(POLICY, Some(TESTS));
    let out = countersign(&["test", "policies"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout).lines().last(), Some("2 passed, 0 failed"));
}

#[test]
fn test_failure_shows_a_diff_and_exits_1() {
    let tests = TESTS.replace(
        "payload: { amount: 500.00 }\n    expect: { decision: allow }",
        "payload: { amount: 500.01 }\n    expect: { decision: allow }",
    );
    let dir = set_up(POLICY, Some(&tests));
    let out = countersign(&["test", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAIL  policies/finance_test.yaml:6  exactly 500 is not large"),
        "{stdout}"
    );
    assert!(stdout.contains("- expected: allow"), "{stdout}");
    assert!(stdout.contains("+ actual:   require_approval"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("1 passed, 1 failed"));
}

#[test]
fn test_coverage_lists_unmatched_rules_per_file() {
    let dir = set_up(POLICY, Some(TESTS));
    let out = countersign(&["test", "--coverage", "policies"], dir.path());
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("coverage: 1 of 3 rules matched by a test"),
        "{stdout}"
    );
    assert!(stdout.contains("  policies/finance.yaml\n"), "{stdout}");
    assert!(
        stdout.contains("line 12   send_invoice_reminder / large-amount"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 22   mark_invoice_paid / always"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("2 passed, 0 failed"));
}

#[test]
fn test_with_an_invalid_policy_exits_1() {
    let dir = set_up(&POLICY.replace("quorum: 2", "quorum: 3"), Some(TESTS));
    let out = countersign(&["test", "policies"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("quorum 3 can never be reached"));
}

fn eval_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["eval", "--policies", "policies"];
    all.extend_from_slice(args);
    let out = countersign(&all, dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("eval prints JSON")
}

#[test]
fn eval_prints_the_decision_as_json() {
    let dir = set_up(POLICY, None);
    let v = eval_json(
        dir.path(),
        &[
            "--action",
            "send_invoice_reminder",
            "--payload",
            r#"{"amount": 1250.10}"#,
            "--actor",
            "agent-7",
        ],
    );
    assert_eq!(v["decision"], "require_approval");
    assert_eq!(v["rule"], "large-amount");
    assert_eq!(v["reason"], "Reminders above $500 need a finance lead");
    assert_eq!(v["approvers"], "finance-leads");
    assert_eq!(v["quorum"], 1);
    assert_eq!(v["timeout"], "24h");
    assert_eq!(v["matched"][0]["rule"], "large-amount");
    assert_eq!(v["matched"][1]["rule"], "default");
    assert_eq!(v["shadow"], serde_json::json!([]));
    assert_eq!(v["errors"], serde_json::json!([]));
    assert_eq!(v["policy_version"].as_str().map(str::len), Some(64));

    let v = eval_json(dir.path(), &["--action", "mark_invoice_paid"]);
    assert_eq!(v["quorum"], 2, "the rule's quorum overrides the group's");
}

#[test]
fn eval_blocks_undeclared_actions_with_exit_0() {
    let dir = set_up(POLICY, None);
    let v = eval_json(dir.path(), &["--action", "delete_everything"]);
    assert_eq!(v["decision"], "block");
    assert_eq!(v["declared"], false);
    assert!(
        v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("`delete_everything`"))
    );
}

#[test]
fn eval_reads_the_payload_from_a_file() {
    let dir = set_up(POLICY, None);
    std::fs::write(dir.path().join("p.json"), r#"{"amount": 500.00}"#).expect("write");
    let v = eval_json(
        dir.path(),
        &["--action", "send_invoice_reminder", "--payload", "@p.json"],
    );
    assert_eq!(v["decision"], "allow");
}

#[test]
fn eval_rejects_bad_arguments_with_exit_2() {
    let dir = set_up(POLICY, None);
    let cases: [(&[&str], &str); 4] = [
        (&["--payload", "{nope"], "--payload is not valid JSON"),
        (&["--payload", "[1]"], "--payload must be a JSON object"),
        (&["--now", "yesterday"], "is not an RFC 3339 timestamp"),
        (&["--payload", "@missing.json"], "cannot read payload file"),
    ];
    for (extra, message) in cases {
        let mut args = vec![
            "eval",
            "--policies",
            "policies",
            "--action",
            "send_invoice_reminder",
        ];
        args.extend_from_slice(extra);
        let out = countersign(&args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(
            text(&out.stderr).contains(message),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
    let out = countersign(&["eval", "--action", "x"], dir.path());
    assert_eq!(out.status.code(), Some(2), "--policies is required");
}

#[test]
fn eval_with_an_invalid_policy_exits_2() {
    let dir = set_up(&POLICY.replace("risk: high", "risk: extreme"), None);
    let out = countersign(
        &[
            "eval",
            "--policies",
            "policies",
            "--action",
            "mark_invoice_paid",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown risk `extreme`"));
}

#[test]
fn bench_prints_a_row_per_action() {
    let dir = set_up(POLICY, Some(TESTS));
    let out = countersign(&["bench", "--samples", "10", "policies"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.starts_with("send_invoice_reminder"))
        .expect("a row for the action");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "2", "two cases: {row}");
    assert!(row.contains("ns") || row.contains("µs"), "{row}");
}

#[test]
fn commands_on_existing_data_do_not_create_a_database() {
    let dir = set_up(POLICY, None);
    for args in [
        &["audit", "verify"][..],
        &["keys", "list", "--workspace", "default"][..],
        &["keys", "revoke", "--workspace", "default", "0123abcd"][..],
    ] {
        let out = countersign(args, dir.path());
        assert!(
            !out.status.success(),
            "{args:?} succeeded without a database"
        );
        let err = text(&out.stderr);
        assert!(
            err.contains("no database at `countersign-data/countersign.db`"),
            "{args:?}: {err}"
        );
        assert!(
            !dir.path().join("countersign-data").exists(),
            "{args:?} created a data directory"
        );
    }
}

#[test]
fn keys_name_their_database_and_a_second_revoke_says_so() {
    let dir = set_up(POLICY, None);
    let out = countersign(
        &[
            "keys",
            "create",
            "--workspace",
            "default",
            "--role",
            "agent",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = text(&out.stdout).trim().to_owned();
    let key_id = secret
        .strip_prefix("csk_")
        .and_then(|s| s.get(..8))
        .expect("csk_ key")
        .to_owned();
    let err = text(&out.stderr);
    assert!(
        err.contains("in sqlite://countersign-data/countersign.db"),
        "{err}"
    );
    let out = countersign(&["audit", "verify"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("checking sqlite://countersign-data/countersign.db"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("default: ok"),
        "{}",
        text(&out.stdout)
    );
    let revoke = ["keys", "revoke", "--workspace", "default", key_id.as_str()];
    let first = countersign(&revoke, dir.path());
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout).trim(),
        format!("revoked {key_id} (agent)")
    );
    let second = countersign(&revoke, dir.path());
    assert!(second.status.success(), "{}", text(&second.stderr));
    let again = text(&second.stdout);
    assert!(
        again.starts_with(&format!("{key_id} was already revoked at ")),
        "{again}"
    );
}

/// Issue 16: `keys create --actor` binds an agent key to an actor, says so,
/// and `keys list` shows each key's binding (`-` for an unbound key).
/// Admin keys cannot be bound.
#[test]
fn keys_bound_to_an_actor_are_listed_with_it() {
    let dir = set_up(POLICY, None);
    let create = |role: &str, actor: Option<&str>| {
        let mut args = vec!["keys", "create", "--workspace", "default", "--role", role];
        if let Some(a) = actor {
            args.extend(["--actor", a]);
        }
        countersign(&args, dir.path())
    };
    let bound = create("agent", Some("deploy-bot"));
    assert!(bound.status.success(), "{}", text(&bound.stderr));
    assert!(
        text(&bound.stderr).contains("bound to actor `deploy-bot`"),
        "{}",
        text(&bound.stderr)
    );
    let unbound = create("agent", None);
    assert!(unbound.status.success(), "{}", text(&unbound.stderr));
    let admin = create("admin", Some("deploy-bot"));
    assert!(!admin.status.success());
    assert!(
        text(&admin.stderr).contains("only an agent key can be bound to an actor"),
        "{}",
        text(&admin.stderr)
    );
    let id = |out: &Output| text(&out.stdout).trim()[4..12].to_owned();
    let list = countersign(&["keys", "list", "--workspace", "default"], dir.path());
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listing = text(&list.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].contains(" actor "), "{listing}");
    let row = |key: &str| *lines.iter().find(|l| l.starts_with(key)).unwrap();
    assert!(row(&id(&bound)).contains(" deploy-bot "), "{listing}");
    let fields: Vec<&str> = row(&id(&unbound)).split_whitespace().collect();
    assert_eq!(fields[4], "-", "unbound: {listing}");
    assert_eq!(
        lines.len(),
        3,
        "the refused admin key was not created: {listing}"
    );
}

#[test]
fn a_broken_test_file_says_the_tests_did_not_run() {
    let dir = set_up(POLICY, Some("tests:\n  - name: x\n    action: [\n"));
    let out = countersign(&["test"], dir.path());
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("tests not run: the test files above have errors"),
        "{stdout}"
    );
    assert!(!stdout.contains("0 passed"), "{stdout}");
    assert!(
        text(&out.stderr).contains("policies/finance_test.yaml:3:13"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_with_invalid_policies_stops_before_creating_its_data_directory() {
    let dir = set_up("version: 1\nactions: [\n", None);
    std::fs::write(
        dir.path().join("gate.yaml"),
        "listen: 127.0.0.1:0\nworkspaces:\n  default: { policies: ./policies }\n",
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["serve", "--config", "gate.yaml"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("serve kept running with invalid policies");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("the policies of workspace `default` (`"),
        "{err}"
    );
    assert!(
        err.contains("policies`) are invalid; not starting"),
        "{err}"
    );
    assert!(
        !dir.path().join("countersign-data").exists(),
        "the data directory was created"
    );
}

/// A receipt issued by the gate before the canonical form kept numbers
/// exact (commit 0d1be31), with the public keys it served.
const OLD_RECEIPT: &str = include_str!("fixtures/receipt-v1-main.json");
const OLD_KEYS: &str = include_str!("fixtures/receipt-v1-main-keys.json");

fn receipt_verify(receipt: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("receipt.json"), receipt).expect("write");
    std::fs::write(dir.path().join("keys.json"), OLD_KEYS).expect("write");
    countersign(
        &["receipt", "verify", "receipt.json", "--keys", "keys.json"],
        dir.path(),
    )
}

#[test]
fn a_receipt_issued_before_exact_numbers_still_verifies_also_pretty_printed() {
    let out = receipt_verify(OLD_RECEIPT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("valid receipt: run run_01a237050ffc761b947d24fc68ae8fd0"),
        "{}",
        text(&out.stdout)
    );
    let value: serde_json::Value = serde_json::from_str(OLD_RECEIPT).unwrap();
    let out = receipt_verify(&serde_json::to_string_pretty(&value).unwrap());
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn receipt_verify_refuses_duplicate_keys_unsigned_members_and_trailing_content() {
    // The reviewer's attack: a second `governance_status` that a lenient
    // reader keeps (the last one wins in serde_json) while the signature
    // covers the first.
    let dup = OLD_RECEIPT.replace(
        r#""governance_status":"approved""#,
        "\"governance_status\":\"approved\",\n\"governance_status\":\"allowed\"",
    );
    assert_ne!(dup, OLD_RECEIPT);
    let out = receipt_verify(&dup);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("duplicate key `governance_status` at line 2, column 1"),
        "{err}"
    );

    let extra = OLD_RECEIPT.replacen('{', r#"{"verified_by":"the CFO","#, 1);
    let out = receipt_verify(&extra);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`verified_by` is not covered by the signature"),
        "{err}"
    );

    let extra = OLD_RECEIPT.replace(r#""alg":"Ed25519","#, r#""alg":"Ed25519","note":"ok","#);
    let out = receipt_verify(&extra);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`signature.note` is not covered by the signature"),
        "{}",
        text(&out.stderr)
    );

    let out = receipt_verify(&format!("{OLD_RECEIPT}\n{{}}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unexpected content after the JSON value at line 2, column 1"),
        "{}",
        text(&out.stderr)
    );

    // A changed value is a bad signature, as before.
    let out = receipt_verify(&OLD_RECEIPT.replace(r#""seq":8"#, r#""seq":9"#));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("the signature does not match"));
}

const LIMIT_POLICY: &str = "version: 1
actions:
  issue_refund:
    default: allow
    rules:
      - name: per-customer
        when: >-
          count(within: \"24h\", where: run.payload.customer == payload.customer) >= 3
        decision: block
";

#[test]
fn eval_takes_the_values_of_aggregates() {
    let dir = set_up(LIMIT_POLICY, None);
    let key = r#"count(within: "24h", where: run.payload.customer == payload.customer)"#;
    let run = |n: u32| {
        let aggregates = serde_json::json!({ key: n }).to_string();
        eval_json(
            dir.path(),
            &[
                "--action",
                "issue_refund",
                "--payload",
                r#"{"customer": "c1"}"#,
                "--aggregates",
                &aggregates,
            ],
        )
    };
    assert_eq!(run(2)["decision"], "allow");
    assert_eq!(run(3)["decision"], "block");
    assert_eq!(run(3)["rule"], "per-customer");
    // A missing value, or a value for no aggregate, is a usage error.
    let cases: [(&str, &str); 2] = [
        ("{}", "give the value of each aggregate with --aggregates"),
        (
            r#"{"count(within: \"1h\")": 1}"#,
            "is not an aggregate of `issue_refund`",
        ),
    ];
    for (aggregates, message) in cases {
        let out = countersign(
            &[
                "eval",
                "--policies",
                "policies",
                "--action",
                "issue_refund",
                "--payload",
                r#"{"customer": "c1"}"#,
                "--aggregates",
                aggregates,
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{aggregates}");
        assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
    }
    // Without the `where:` field the aggregate fails and on_error blocks.
    let v = eval_json(dir.path(), &["--action", "issue_refund", "--payload", "{}"]);
    assert_eq!(v["decision"], "block");
    assert_eq!(v["errors"][0]["rule"], "per-customer");
}
