//! Large synthetic policy sets: `n` actions of 10 rules each, generated as
//! Countersign YAML and as the equivalent Cedar policies.
//!
//! Every action uses the same ten rule shapes (numeric thresholds, list
//! membership, `has`, prefix and suffix tests, a sum, equality with the
//! actor, …) in a rotated order, with thresholds, prefixes and suffixes that
//! depend on the action's index, so conditions differ from one action to
//! the next and the verdicts of the benchmarked requests vary. All shapes are
//! ones Cedar expresses natively (no derived attributes), and the payload
//! holds integers only, so both sets mean exactly the same.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;

use cedar_policy::{Authorizer, Entities, PolicyId, PolicySet as CedarSet};
use countersign_engine::{PolicySet, Value, Verdict, parse_json};

use crate::cedar_peer;

/// Rules per action.
pub const RULES_PER_ACTION: usize = 10;

/// Actions per generated YAML file (files are capped at 8 MiB).
const ACTIONS_PER_FILE: usize = 1000;

/// The name of action `i`.
pub fn action_name(i: usize) -> String {
    format!("action_{i:05}")
}

/// Rule `j` of action `i`: (Countersign condition, Cedar condition, verdict).
fn rule(i: usize, j: usize) -> (String, String, Verdict) {
    use Verdict::{Allow as A, Block as B, RequireApproval as R};
    match (i + j) % RULES_PER_ACTION {
        0 => {
            let n = 100 + i % 900;
            (
                format!("payload.amount > {n}"),
                format!("context.payload.amount > {n}"),
                R,
            )
        }
        1 => {
            let n = 50 + i % 500;
            (
                format!(r#"payload.region in ["eu", "uk"] and payload.amount > {n}"#),
                format!(
                    r#"["eu", "uk"].contains(context.payload.region) && context.payload.amount > {n}"#
                ),
                R,
            )
        }
        2 => (
            r#"has(payload.tags) and "urgent" in payload.tags"#.to_owned(),
            r#"context.payload has tags && context.payload.tags.contains("urgent")"#.to_owned(),
            if i.is_multiple_of(3) { B } else { R },
        ),
        3 => {
            let k = i % 97;
            (
                format!(r#"starts_with(payload.ref, "R-{k}-")"#),
                format!(r#"context.payload.ref like "R-{k}-*""#),
                A,
            )
        }
        4 => {
            let n = 5 + i % 20;
            (
                format!("payload.count >= {n}"),
                format!("context.payload.count >= {n}"),
                B,
            )
        }
        5 => {
            let k = i % 13;
            (
                format!(r#"ends_with(payload.email, "@corp{k}.example.com")"#),
                format!(r#"context.payload.email like "*@corp{k}.example.com""#),
                A,
            )
        }
        6 => {
            let n = 300 + i % 5000;
            (
                format!("payload.amount + payload.fee > {n}"),
                format!("context.payload.amount + context.payload.fee > {n}"),
                R,
            )
        }
        7 => {
            let k = i % 4;
            (
                format!(r#"payload.priority == "p{k}""#),
                format!(r#"context.payload.priority == "p{k}""#),
                R,
            )
        }
        8 => {
            let n = 1 + i % 10;
            (
                format!(r#"payload.region != "us" and payload.count < {n}"#),
                format!(r#"context.payload.region != "us" && context.payload.count < {n}"#),
                A,
            )
        }
        _ => (
            "has(payload.approved_by) and payload.approved_by == actor".to_owned(),
            "context.payload has approved_by && context.payload.approved_by == context.actor"
                .to_owned(),
            B,
        ),
    }
}

/// The Countersign set with `n` actions, as `(file name, YAML)` pairs.
pub fn yaml_sources(n: usize) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + ACTIONS_PER_FILE).min(n);
        let mut y = String::with_capacity((end - start) * 1300);
        y.push_str("version: 1\n");
        if start == 0 {
            y.push_str(
                "approvers:\n  ops:\n    members:\n      - { id: alice }\n      - { id: bruno }\n    quorum: 1\n    timeout: 24h\n",
            );
        }
        y.push_str("actions:\n");
        for i in start..end {
            let _ = write!(
                y,
                "  {}:\n    risk: medium\n    approvers: ops\n    default: allow\n    on_error: block\n    rules:\n",
                action_name(i)
            );
            for j in 0..RULES_PER_ACTION {
                let (cond, _, verdict) = rule(i, j);
                let _ = write!(
                    y,
                    "      - name: r{j}\n        when: '{}'\n        decision: {}\n        reason: generated rule {j} of action {i}\n",
                    cond.replace('\'', "''"),
                    verdict.as_str()
                );
            }
        }
        files.push((format!("scale_{start:05}.yaml"), y));
        start = end;
    }
    files
}

/// Loads and compiles the Countersign set with `n` actions.
pub fn load_ours(sources: &[(String, String)]) -> PolicySet {
    PolicySet::from_sources(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .unwrap_or_else(|e| panic!("the generated set does not load: {e:?}"))
}

/// The Cedar policies for `n` actions, as one text.
pub fn cedar_source(n: usize) -> String {
    let mut s = String::with_capacity(n * RULES_PER_ACTION * 200);
    for i in 0..n {
        let action = action_name(i);
        for j in 0..RULES_PER_ACTION {
            let (_, cond, verdict) = rule(i, j);
            let effect = if verdict == Verdict::Block {
                "forbid"
            } else {
                "permit"
            };
            let _ = writeln!(
                s,
                "@decision(\"{}\")\n{effect} (principal, action == Action::\"{action}\", resource)\nwhen {{ {cond} }};",
                verdict.as_str()
            );
        }
    }
    s
}

/// The Cedar set with its annotations read.
pub struct CedarScale {
    /// The policies.
    pub policies: CedarSet,
    permits: HashMap<PolicyId, Verdict>,
    entities: Entities,
    authorizer: Authorizer,
}

impl CedarScale {
    /// Parses generated Cedar text.
    pub fn parse(text: &str) -> Self {
        let policies = CedarSet::from_str(text)
            .unwrap_or_else(|e| panic!("generated Cedar does not parse: {e:?}"));
        let permits = cedar_peer::verdict_annotations(&policies);
        CedarScale {
            policies,
            permits,
            entities: Entities::empty(),
            authorizer: Authorizer::new(),
        }
    }

    /// Decides one request (every generated action defaults to allow and
    /// fails closed).
    pub fn decide(&self, request: &cedar_policy::Request) -> Verdict {
        let response = self
            .authorizer
            .is_authorized(request, &self.policies, &self.entities);
        cedar_peer::combine(&response, &self.permits, Verdict::Allow, Verdict::Block)
    }
}

/// The payloads the scale benchmarks decide, in the order they are timed.
pub const PAYLOADS: &[&str] = &[
    r#"{"amount": 420, "fee": 35, "region": "eu", "ref": "R-12-889", "count": 3, "email": "ops@corp3.example.com", "priority": "p2", "approved_by": "alice"}"#,
    r#"{"amount": 40, "fee": 5, "region": "us", "ref": "X-1", "count": 0, "email": "someone@example.org", "priority": "p9"}"#,
    r#"{"amount": 9000, "fee": 120, "region": "uk", "tags": ["urgent", "q3"], "ref": "R-7-1", "count": 30, "email": "a@corp1.example.com", "priority": "p1", "approved_by": "agent-7"}"#,
];

/// The actor of every scale request.
pub const ACTOR: &str = "agent-7";

/// The actions the latency benchmark decides for a set of `n` actions: the
/// first, one in the middle and the last.
pub fn probe_actions(n: usize) -> Vec<String> {
    vec![action_name(0), action_name(n / 2 + 1), action_name(n - 1)]
}

/// One scale request for both engines.
pub struct ScaleRequest {
    /// Action name.
    pub action: String,
    /// Actor.
    pub actor: Value,
    /// Parsed payload.
    pub payload: Value,
    /// The same request for Cedar.
    pub cedar: cedar_policy::Request,
}

/// The requests timed against a set of `n` actions: each probe action with
/// each payload.
pub fn requests(n: usize) -> Vec<ScaleRequest> {
    let actor = Value::string(ACTOR);
    let mut out = Vec::new();
    for action in probe_actions(n) {
        for p in PAYLOADS {
            let payload = parse_json(p.as_bytes()).unwrap_or_else(|e| panic!("bad payload: {e}"));
            let ctx = serde_json::json!({
                "actor": ACTOR,
                "payload": serde_json::from_str::<serde_json::Value>(p).unwrap_or_else(|e| panic!("{e}")),
            });
            let cedar = cedar_peer::request(&action, &actor, ctx);
            out.push(ScaleRequest {
                action: action.clone(),
                actor: actor.clone(),
                payload,
                cedar,
            });
        }
    }
    out
}
