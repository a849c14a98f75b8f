//! Policy tests: `*_test.yaml` files of requests with expected decisions,
//! run against a policy set, with rule coverage. The same files, made
//! self-contained, are the engine's own test cases (`engine/tests/cases/`).
//!
//! This module reads files (`load_tests`), which the rest of the engine never
//! does: reading tests is loading, like reading a policy directory, and
//! happens before any decision. Deciding a case stays pure.
//!
//! ```yaml
//! tests:
//!   - name: small reminders go straight through
//!     action: send_invoice_reminder
//!     actor: finance_agent
//!     payload: { amount: 100 }
//!     now: 2026-05-23T13:31:08Z     # optional; `now` is unset otherwise
//!     source: mcp                   # optional, any value; null otherwise
//!     context: { mcp: { server: fs, tool: read_file } }  # optional, likewise
//!     expect:
//!       decision: allow
//!       rule: default               # optional; null means "no rule matched"
//!       approvers: finance-leads    # optional
//!       quorum: 1                   # optional
//!       reason: "substring"         # optional
//!       matched: [a, b]             # optional, exact, in order
//!       shadow: [c]                 # optional
//!       errors: [d]                 # optional: rules whose condition failed
//! ```
//!
//! # Additions for self-contained files
//!
//! Every key above keeps its meaning. These keys were added so that a test
//! file can carry its own policy set and pin what the engine does at load;
//! a file with `policies` or `expressions` is *self-contained*, is run with
//! [`run_test_file`], and is refused by [`load_tests`] (it does not test
//! the policies of a directory).
//!
//! ```yaml
//! note: what this file pins                  # added; optional
//! policies:                                  # added: the policy set, file name -> YAML text
//!   a.yaml: |
//!     version: 1
//!     actions: …
//! tests:
//!   - name: …
//!     payload_json: '{"amount": 1250.10}'    # added: instead of payload, JSON text
//!                                            #   read like a request body (exact digits)
//!     expect:
//!       no_quorum: true                      # added: expects no approval quorum
//!       reason_exact: "…"                    # added: the whole reason
//!       matched_decisions: [allow, block]    # added: the matched rules' decisions
//!       error_contains: "is missing"         # added: a substring of some error message
//!       members: [alice, bob]                # added: ids of the approver group's members
//!       timeout: 24h                         # added: as the report writes it, or null
//!       timeout_seconds: 86400               # added, or null
//!       escalate_to: cfo                     # added, or null
//!       escalate_after_seconds: 3600         # added, or null
//!       declared: true                       # added: whether a policy declares the action
//!       risk: high                           # added: the action's risk, or null
//!
//! load_errors:                               # added, instead of tests: the set must not load
//!   - message: "unknown function `lowr`"     # a substring of the diagnostic message
//!     at: "a.yaml:7:15"                      # optional: file:line:col
//!     snippet: "lowr"                        # optional: the underlined text
//!     help: "did you mean `lower`"           # optional: a substring of the help
//!     kind: "Expression(UnknownFunction)"    # optional: Debug form of the kind
//!     file: a.yaml                           # optional: the file it is located in
//! load_error_count: 1                        # added; optional: exact number of diagnostics
//!
//! same_version_as:                           # added: other sets (file name -> text)
//!   - b.yaml: |                              #   whose policy_version must be equal
//!       …
//! different_version_from:                    # added: other sets whose
//!   - a.yaml: |                              #   policy_version must differ
//!       …
//!
//! expressions:                               # added: single expressions, compiled
//!   - expr: "0.1 + 0.2 == 0.3"               #   with CompiledExpr::compile
//!     name: why                              # optional, named in failures
//!     action: pay                            # optional (default `test_action`)
//!     risk: high                             # optional (default `medium`)
//!     payload: {}                            # optional, any value; also payload_json,
//!     now: 2026-05-23T13:31:08Z              #   actor, source, context and now, as for tests
//!     value: true                            # exactly one of: the value,
//!     # eval_error: "substring"              #   an evaluation error (it compiles), or
//!     # compile_error: "substring"           #   a compile error (rejected at load)
//!     folded: true                           # optional: whether it folded to a constant
//!     at: 3                                  # optional, with compile_error: byte
//!                                            #   offset where the diagnostic starts
//!     help: "did you mean"                   # optional, with compile_error
//! ```
//!
//! A file has `tests` or `load_errors`, not both; `load_errors` and the
//! version keys need `policies`; `expressions` need no policies.

mod case;
mod format;
mod run;
mod suite;

pub use case::{TestCase, TestFile, load_tests, parse_test_file, parse_tests};
pub use run::{CaseOutcome, Mismatch, TestRun, UncoveredRule, run_tests};
pub use suite::{FileRun, run_test_file};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySet;

    const POLICY: &str = r#"
version: 1
approvers:
  leads:
    members: [{ id: alice }, { id: bob }]
actions:
  remind:
    approvers: leads
    rules:
      - name: large
        when: payload.amount > 500
        decision: require_approval
      - name: default
        decision: allow
      - name: never-hit
        when: payload.amount > 1000000
        decision: block
"#;

    #[test]
    fn passing_failing_and_coverage() {
        let set = PolicySet::from_sources([("p.yaml", POLICY)]).unwrap();
        let cases = parse_tests(
            "p_test.yaml",
            r#"
tests:
  - name: small
    action: remind
    payload: { amount: 100 }
    expect: { decision: allow, rule: default, matched: [default] }
  - name: wrong on purpose
    action: remind
    payload: { amount: 600 }
    expect: { decision: allow, rule: default, quorum: 2 }
"#,
        )
        .unwrap();
        let run = run_tests(&set, &cases);
        assert_eq!((run.passed(), run.failed()), (1, 1));
        let fields: Vec<&str> = run.outcomes[1].mismatches.iter().map(|m| m.field).collect();
        assert_eq!(fields, ["decision", "rule", "quorum"]);
        assert_eq!(run.outcomes[1].mismatches[0].actual, "require_approval");
        let uncovered: Vec<&str> = run.uncovered.iter().map(|u| u.rule.as_str()).collect();
        assert_eq!(uncovered, ["never-hit"]);
        assert_eq!(run.uncovered[0].line, 15);
    }

    #[test]
    fn bad_test_files_are_located() {
        let err = parse_tests(
            "t_test.yaml",
            "tests:\n  - name: x\n    action: a\n    now: yesterday\n    expect: { decision: allow }\n",
        )
        .unwrap_err();
        let d = &err.diagnostics()[0];
        assert!(d.message().contains("RFC 3339"), "{}", d.message());
        assert_eq!(d.location().map(|l| (l.line, l.column)), Some((4, 10)));

        let err = parse_tests(
            "t_test.yaml",
            "tests:\n  - name: x\n    action: a\n    expect: { decision: alow }\n",
        )
        .unwrap_err();
        assert!(
            err.diagnostics()[0]
                .message()
                .contains("unknown decision `alow`")
        );
    }

    #[test]
    fn self_contained_files_run_on_their_own_and_are_refused_against_a_directory() {
        let text = r#"
note: an inline set
policies:
  p.yaml: |
    version: 1
    actions:
      ping:
        rules:
          - name: ok
            decision: allow
            reason: all good
tests:
  - name: exact reason
    action: ping
    expect: { decision: allow, reason_exact: all good, declared: true, risk: medium }
  - name: wrong on purpose
    action: ping
    expect: { decision: allow, reason_exact: all, quorum: null }
"#;
        let file = parse_test_file("s_test.yaml", text).unwrap();
        assert!(file.is_self_contained());
        assert_eq!(file.check_count(), 2);
        let run = run_test_file(&file);
        assert!(run.problems.is_empty(), "{:?}", run.problems);
        let cases = run.run.unwrap();
        assert_eq!((cases.passed(), cases.failed()), (1, 1));
        let fields: Vec<&str> = cases.outcomes[1]
            .mismatches
            .iter()
            .map(|m| m.field)
            .collect();
        assert_eq!(fields, ["reason_exact"]);

        let err = parse_tests("s_test.yaml", text).unwrap_err();
        let d = &err.diagnostics()[0];
        assert!(d.message().contains("carries its own"), "{}", d.message());
        assert_eq!(d.location().map(|l| l.line), Some(4));
    }

    #[test]
    fn expected_load_errors_are_matched_with_location_and_help() {
        let file = parse_test_file(
            "e_test.yaml",
            r#"
policies:
  p.yaml: |
    version: 1
    actions:
      a:
        rules:
          - name: r
            when: lowr(payload.x) == "y"
            decision: allow
load_errors:
  - message: "unknown function `lowr`"
    at: "p.yaml:6:15"
    help: "did you mean `lower`"
load_error_count: 1
"#,
        )
        .unwrap();
        let run = run_test_file(&file);
        assert!(run.passed(), "{:?}", run.problems);

        let wrong = parse_test_file(
            "e_test.yaml",
            "policies:\n  p.yaml: |\n    version: 1\nload_errors:\n  - message: x\n",
        )
        .unwrap();
        assert!(!run_test_file(&wrong).passed());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = parse_tests(
            "t_test.yaml",
            "tests:\n  - name: x\n    action: a\n    expect: { decision: allow, reason_contains: y }\n",
        )
        .unwrap_err();
        assert!(
            err.diagnostics()[0].message().contains("reason_contains"),
            "{}",
            err.diagnostics()[0].message()
        );
    }
}
