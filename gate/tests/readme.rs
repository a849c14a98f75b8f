//! The README's `console` examples run: each `$ countersign …` line is run
//! from the repository root, must succeed, and every output line shown under
//! it must appear in the real output (64-digit hashes compare as equal).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::path::Path;
use std::process::Command;

fn normalize(line: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() == 64 { "<sha256>" } else { &run });
        run.clear();
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// Splits a shell-like command line (single quotes only, as the README uses).
fn split(command: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    args.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        args.push(cur);
    }
    args
}

#[test]
fn readme_console_examples_run_as_shown() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut in_console = false;
    let mut examples: Vec<(String, Vec<String>)> = Vec::new();
    for line in readme.lines() {
        if line.starts_with("```console") {
            in_console = true;
        } else if line.starts_with("```") {
            in_console = false;
        } else if in_console {
            if let Some(cmd) = line.strip_prefix("$ ") {
                examples.push((cmd.to_owned(), Vec::new()));
            } else if let Some(last) = examples.last_mut() {
                last.1.push(line.to_owned());
            }
        }
    }
    assert!(examples.len() >= 3, "the README lost its console examples");
    for (cmd, expected) in examples {
        let args = split(&cmd);
        assert_eq!(
            args[0], "countersign",
            "only countersign commands are run: {cmd}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(&args[1..])
            .current_dir(&root)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let actual: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(normalize)
            .collect();
        for want in expected {
            let want = normalize(&want);
            assert!(
                actual.contains(&want),
                "`{cmd}`: the README shows\n  {want}\nbut the output was\n{}",
                actual.join("\n")
            );
        }
    }
}
