//! The JSON Schemas of `schemas/`: they are what `countersign schema`
//! prints, and a real validator (`check-jsonschema`) accepts every policy
//! the engine loads and rejects every file the engine rejects for its
//! structure (unknown or missing keys, wrong types, an unsupported version).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use countersign_engine::{DiagnosticKind, PolicySet};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn countersign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run countersign")
}

fn check_jsonschema() -> PathBuf {
    let venv = root().join("target/py-venv/bin/check-jsonschema");
    if venv.exists() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("check-jsonschema"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "check-jsonschema is needed: run scripts/test.sh once, or \
                 `python3 -m venv target/py-venv && target/py-venv/bin/pip install check-jsonschema`"
            )
        })
}

fn validate(schema: &str, files: &[PathBuf]) -> Output {
    Command::new(check_jsonschema())
        .arg("--schemafile")
        .arg(root().join("schemas").join(schema))
        .args(files)
        .output()
        .expect("run check-jsonschema")
}

fn show(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn shipped_schemas_are_what_countersign_schema_prints() {
    for (kind, file) in [
        ("policy", "policy.schema.json"),
        ("tests", "tests.schema.json"),
    ] {
        let out = countersign(&["schema", kind]);
        assert!(out.status.success());
        let shipped = std::fs::read(root().join("schemas").join(file)).unwrap();
        assert!(
            out.stdout == shipped,
            "schemas/{file} is stale: run `countersign schema {kind} > schemas/{file}`"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    }
    // Both are valid draft 2020-12 schemas.
    let res = Command::new(check_jsonschema())
        .arg("--check-metaschema")
        .arg(root().join("schemas/policy.schema.json"))
        .arg(root().join("schemas/tests.schema.json"))
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", show(&res));
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

#[test]
fn the_example_policies_and_tests_point_at_the_schemas_and_pass_them() {
    let dir = root().join("policies/finance");
    let (tests, policies): (Vec<PathBuf>, Vec<PathBuf>) = yaml_files(&dir)
        .into_iter()
        .partition(|p| p.to_string_lossy().ends_with("_test.yaml"));
    assert!(!tests.is_empty() && !policies.is_empty());
    for (files, schema) in [(&policies, "policy"), (&tests, "tests")] {
        for f in files {
            let text = std::fs::read_to_string(f).unwrap();
            let modeline =
                format!("# yaml-language-server: $schema=../../schemas/{schema}.schema.json");
            assert_eq!(
                text.lines().next(),
                Some(modeline.as_str()),
                "{}",
                f.display()
            );
        }
        let res = validate(&format!("{schema}.schema.json"), files);
        assert!(res.status.success(), "{}", show(&res));
    }
    // The engine's own case files are test files too.
    let cases = yaml_files(&root().join("engine/tests/cases"));
    let res = validate("tests.schema.json", &cases);
    assert!(res.status.success(), "{}", show(&res));
}

/// Whether the engine rejects `file` of this set for its structure.
fn structural_problem(diagnostics: &[countersign_engine::PolicyDiagnostic], file: &str) -> bool {
    diagnostics.iter().any(|d| {
        let here = d.location().is_some_and(|l| l.file == Path::new(file));
        here && (d.kind() == DiagnosticKind::Yaml
            || d.message().starts_with("unsupported policy version"))
    })
}

/// Every inline policy set of the engine's case files: the files of sets
/// that load must pass the policy schema; each file the engine rejects for
/// its structure must fail it.
#[test]
fn the_policy_schema_agrees_with_the_engine_on_every_inline_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let mut accept = Vec::new();
    let mut reject = Vec::new();
    for case in yaml_files(&root().join("engine/tests/cases")) {
        let text = std::fs::read_to_string(&case).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let mut sets = Vec::new();
        if let Some(p) = doc.get("policies") {
            sets.push(p.clone());
        }
        for key in ["same_version_as", "different_version_from"] {
            if let Some(list) = doc.get(key).and_then(|v| v.as_array()) {
                sets.extend(list.iter().cloned());
            }
        }
        let stem = case.file_stem().unwrap().to_string_lossy().into_owned();
        for (n, set) in sets.iter().enumerate() {
            let files: Vec<(String, String)> = set
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            let loaded =
                PolicySet::from_sources(files.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let dir = tmp.path().join(format!("{stem}-{n}"));
            std::fs::create_dir_all(&dir).unwrap();
            for (name, body) in &files {
                let path = dir.join(name.replace('/', "_"));
                std::fs::write(&path, body).unwrap();
                match &loaded {
                    Ok(_) => accept.push(path),
                    Err(e) if structural_problem(e.diagnostics(), name) => reject.push(path),
                    Err(_) => {}
                }
            }
        }
    }
    assert!(
        accept.len() > 50,
        "only {} valid inline policies found",
        accept.len()
    );
    assert!(
        reject.len() >= 9,
        "only {} structurally broken ones found",
        reject.len()
    );
    let res = validate("policy.schema.json", &accept);
    assert!(res.status.success(), "{}", show(&res));
    for bad in &reject {
        let res = validate("policy.schema.json", std::slice::from_ref(bad));
        assert!(
            !res.status.success(),
            "the schema accepts {}, which the engine rejects:\n{}",
            bad.display(),
            std::fs::read_to_string(bad).unwrap()
        );
    }
}

/// Broken examples beyond the engine's cases: each is refused by both.
#[test]
fn structurally_broken_policies_are_refused_by_engine_and_schema() {
    let broken = [
        (
            "typo_when.yaml",
            "version: 1\nactions:\n  pay:\n    rules:\n      - name: r\n        wen: payload.x > 1\n        decision: block\n",
        ),
        (
            "decision_list.yaml",
            "version: 1\nactions:\n  pay:\n    rules:\n      - name: r\n        decision: [allow]\n",
        ),
        (
            "members_map.yaml",
            "version: 1\napprovers:\n  g:\n    members: { id: a }\nactions: {}\n",
        ),
        (
            "rules_map.yaml",
            "version: 1\nactions:\n  pay:\n    rules: { name: r, decision: allow }\n",
        ),
        ("version_text.yaml", "version: one\n"),
        (
            "no_member_id.yaml",
            "version: 1\napprovers:\n  g:\n    members: [{ name: Ann }]\n",
        ),
        (
            "quorum_negative.yaml",
            "version: 1\napprovers:\n  g:\n    members: [{ id: a }]\n    quorum: -1\n",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (name, body) in broken {
        let err = PolicySet::from_sources([(name, body)]).expect_err(name);
        assert!(
            structural_problem(err.diagnostics(), name),
            "{name}: {:?}",
            err.diagnostics()
        );
        let path = tmp.path().join(name);
        std::fs::write(&path, body).unwrap();
        let res = validate("policy.schema.json", std::slice::from_ref(&path));
        assert!(!res.status.success(), "the schema accepts {name}");
    }
}

/// The CI recipes of the README are valid for their CI, by the schemas
/// check-jsonschema ships for GitHub workflows and GitLab CI.
#[test]
fn the_ci_recipes_are_valid_workflow_files() {
    for (schema, file) in [
        ("vendor.github-workflows", "examples/ci/github-actions.yml"),
        ("vendor.gitlab-ci", "examples/ci/gitlab-ci.yml"),
    ] {
        let res = Command::new(check_jsonschema())
            .args(["--builtin-schema", schema])
            .arg(root().join(file))
            .output()
            .unwrap();
        assert!(res.status.success(), "{file}: {}", show(&res));
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        for step in [
            "check --format",
            "test --format junit",
            "diff --git",
            "replay --store",
        ] {
            assert!(text.contains(step), "{file} lacks `{step}`");
        }
    }
}
