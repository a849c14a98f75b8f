//! `countersign diff`: semantic changes between policy sets, from two
//! directories or a git revision; reformatting is no change.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const OLD: &str = r#"version: 1
approvers:
  leads:
    members: [{ id: alice, email: alice@example.com }, { id: bob }]
    timeout: 24h
actions:
  refund:
    risk: high
    approvers: leads
    rules:
      - name: large
        when: payload.amount > 1000 && payload.currency == "eur"
        decision: require_approval
      - name: default
        decision: allow
  export:
    rules:
      - name: ok
        decision: allow
"#;

/// OLD with other layout, comments, key order, file split and condition
/// spelling: the same meaning.
const OLD_REFORMATTED_A: &str = r#"# groups live here now
version: 1
approvers:
  leads:
    timeout: 1d
    members:
      - id: alice
        email: alice@example.com
      - id: bob
"#;
const OLD_REFORMATTED_B: &str = r#"version: 1
actions:
  export: { rules: [ { name: ok, decision: allow } ] }
  refund:
    approvers: leads
    risk: high
    rules:
      - name: large
        decision: require_approval
        when: >-
          payload.amount > 1000.00
          and payload.currency == "eur"
      - { name: default, decision: allow }
"#;

const NEW: &str = r#"version: 1
approvers:
  leads:
    members: [{ id: alice, email: alice@example.com }, { id: carol }]
    quorum: 2
    timeout: 48h
  cfo:
    members: [{ id: dana }]
actions:
  refund:
    risk: critical
    approvers: leads
    rules:
      - name: default
        decision: allow
      - name: large
        when: payload.amount > 500 && payload.currency == "eur"
        decision: require_approval
      - name: huge
        when: payload.amount > 100000
        decision: block
        approvers: cfo
  ping:
    rules:
      - name: ok
        decision: allow
"#;

fn countersign(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn reformatting_is_no_change() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("old"), &[("p.yaml", OLD)]);
    write(
        &d.path().join("new"),
        &[
            ("groups.yaml", OLD_REFORMATTED_A),
            ("actions.yaml", OLD_REFORMATTED_B),
        ],
    );
    for format in ["text", "json", "markdown"] {
        let out = countersign(&["diff", "old", "new", "--format", format], d.path());
        assert_eq!(out.status.code(), Some(0), "{format}: {}", text(&out));
        if format == "json" {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["changes"], json!([]));
            assert_eq!(v["old_version"], v["new_version"]);
        }
    }
    let out = countersign(&["diff", "old", "new"], d.path());
    assert!(
        text(&out).starts_with("no semantic change"),
        "{}",
        text(&out)
    );
}

#[test]
fn every_kind_of_change_is_named() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("old"), &[("p.yaml", OLD)]);
    write(&d.path().join("new"), &[("p.yaml", NEW)]);
    let out = countersign(&["diff", "old", "new", "--format", "json"], d.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(String, String, String, String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
            (
                s("change"),
                s("subject"),
                s("field"),
                s("before"),
                s("after"),
            )
        })
        .collect();
    let want = |c: &str, s: &str, f: &str, b: &str, a: &str| {
        (
            c.to_owned(),
            s.to_owned(),
            f.to_owned(),
            b.to_owned(),
            a.to_owned(),
        )
    };
    assert_eq!(
        got,
        vec![
            want("changed", "group leads", "quorum", "1", "2"),
            want("changed", "group leads", "timeout", "24h", "2d"),
            want("removed", "group leads / member bob", "", "bob", ""),
            want("added", "group leads / member carol", "", "", "carol"),
            want("added", "group cfo", "", "", "1 member(s), quorum 1"),
            want("removed", "action export", "", "risk medium, 1 rule(s)", ""),
            want("changed", "action refund", "risk", "high", "critical"),
            want(
                "changed",
                "action refund / rule large",
                "when",
                "payload.amount > 1000 && payload.currency == \"eur\"",
                "payload.amount > 500 && payload.currency == \"eur\""
            ),
            want(
                "added",
                "action refund / rule huge",
                "",
                "",
                "block when payload.amount > 100000"
            ),
            want(
                "changed",
                "action refund",
                "rule order",
                "large, default",
                "default, large"
            ),
            want("added", "action ping", "", "", "risk medium, 1 rule(s)"),
        ],
        "{v:#}"
    );

    let out = countersign(&["diff", "old", "new"], d.path());
    let t = text(&out);
    assert!(t.contains("~ group leads: quorum: 1 → 2"), "{t}");
    assert!(
        t.contains("- action export (risk medium, 1 rule(s))"),
        "{t}"
    );
    assert!(
        t.contains("+ action refund / rule huge (block when payload.amount > 100000)"),
        "{t}"
    );
    assert!(
        t.lines()
            .last()
            .unwrap()
            .starts_with("11 changes; policy version"),
        "{t}"
    );
    let out = countersign(&["diff", "old", "new", "--format", "markdown"], d.path());
    let md = text(&out);
    assert!(
        md.starts_with("### Countersign policy diff: 11 changes"),
        "{md}"
    );
    assert!(
        md.contains("| changed | group leads | quorum | `1` | `2` |"),
        "{md}"
    );
}

#[test]
fn bad_input_exits_2() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("old"), &[("p.yaml", OLD)]);
    write(
        &d.path().join("broken"),
        &[(
            "p.yaml",
            "version: 1\nactions:\n  a:\n    rules:\n      - name: r\n        decision: alow\n",
        )],
    );
    assert_eq!(
        countersign(&["diff", "old", "broken"], d.path())
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        countersign(&["diff", "old", "missing"], d.path())
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        countersign(&["diff", "old"], d.path()).status.code(),
        Some(2)
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn git_revision_against_the_work_tree() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path();
    git(repo, &["init", "-q"]);
    write(
        &repo.join("policies"),
        &[("p.yaml", OLD), ("p_test.yaml", "tests: []\n")],
    );
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "old"]);
    // Reformatted only: no change against HEAD.
    std::fs::remove_file(repo.join("policies/p.yaml")).unwrap();
    write(
        &repo.join("policies"),
        &[("a.yaml", OLD_REFORMATTED_A), ("b.yaml", OLD_REFORMATTED_B)],
    );
    let out = countersign(&["diff", "--git", "HEAD"], repo);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    // A real change, seen from a subdirectory with an explicit DIR.
    std::fs::remove_file(repo.join("policies/a.yaml")).unwrap();
    std::fs::remove_file(repo.join("policies/b.yaml")).unwrap();
    write(&repo.join("policies"), &[("p.yaml", NEW)]);
    let out = countersign(
        &["diff", "--git", "HEAD", "--format", "json", "policies"],
        repo,
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["changes"].as_array().unwrap().len(), 11);
    let out = countersign(&["diff", "--git", "HEAD", "."], &repo.join("policies"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown revision is bad input.
    assert_eq!(
        countersign(&["diff", "--git", "nope"], repo).status.code(),
        Some(2)
    );
}
