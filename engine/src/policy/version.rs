//! The policy version: SHA-256 of the canonical form of a policy set.
//!
//! The canonical form is built from the validated model, not the file bytes,
//! so reformatting, comments, renaming or splitting files leave the version
//! unchanged while any change of meaning (a rule, a threshold, a member)
//! changes it. Conditions are hashed in their canonical spelling, so
//! `1000.00` and `1000`, `&&` and `and`, or a condition wrapped over lines
//! give the same version. (CEL conditions are hashed as written, trimmed.) Object keys are sorted; rule order is kept because it decides
//! which rule is reported.

use sha2::{Digest, Sha256};

use super::model::{Condition, PolicySet};
use crate::value::{Map, Value};

fn s(v: &str) -> Value {
    Value::string(v)
}

fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, s)
}

fn num(n: u64) -> Value {
    Value::Number(n.into())
}

fn obj(entries: Vec<(&str, Value)>) -> Value {
    Value::Object(Map::from_entries(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    ))
}

pub(crate) fn canonical(set: &PolicySet) -> String {
    let groups = set
        .groups
        .iter()
        .map(|g| {
            let members = g
                .members
                .iter()
                .map(|m| {
                    obj(vec![
                        ("id", s(&m.id)),
                        ("name", opt(m.name.as_deref())),
                        ("email", opt(m.email.as_deref())),
                        ("slack", opt(m.slack.as_deref())),
                        ("teams", opt(m.teams.as_deref())),
                    ])
                })
                .collect();
            (
                g.name.clone(),
                obj(vec![
                    ("description", opt(g.description.as_deref())),
                    ("members", Value::List(members)),
                    ("quorum", num(u64::from(g.quorum))),
                    ("timeout_seconds", num(g.timeout.as_secs())),
                    ("escalate_to", opt(g.escalate_to.as_deref())),
                    (
                        "escalate_after_seconds",
                        g.escalate_after.map_or(Value::Null, |d| num(d.as_secs())),
                    ),
                ]),
            )
        })
        .collect();
    let actions = set
        .actions
        .iter()
        .map(|a| {
            let rules = a
                .rules
                .iter()
                .map(|r| {
                    let (when, when_cel) = match &r.condition {
                        Condition::Always => (Value::Null, Value::Null),
                        Condition::Expr(e) => (s(e.canonical()), Value::Null),
                        Condition::Cel(c) => (Value::Null, s(c.source().trim())),
                    };
                    obj(vec![
                        ("name", s(&r.name)),
                        ("description", opt(r.description.as_deref())),
                        ("when", when),
                        ("when_cel", when_cel),
                        ("decision", s(r.decision.as_str())),
                        ("reason", s(&r.reason)),
                        (
                            "quorum",
                            r.quorum.map_or(Value::Null, |q| num(u64::from(q))),
                        ),
                        (
                            "approvers",
                            opt(r.approvers.map(|i| set.groups[i].name.as_str())),
                        ),
                        (
                            "mode",
                            s(if r.mode == super::model::Mode::Shadow {
                                "shadow"
                            } else {
                                "enforce"
                            }),
                        ),
                    ])
                })
                .collect();
            (
                a.name.clone(),
                obj(vec![
                    ("description", opt(a.description.as_deref())),
                    ("risk", s(a.risk.as_str())),
                    (
                        "approvers",
                        opt(a.approvers.map(|i| set.groups[i].name.as_str())),
                    ),
                    ("default", s(a.default.as_str())),
                    ("on_error", s(a.on_error.as_str())),
                    ("rules", Value::List(rules)),
                ]),
            )
        })
        .collect();
    obj(vec![
        ("format", num(1)),
        ("approvers", Value::Object(Map::from_entries(groups))),
        ("actions", Value::Object(Map::from_entries(actions))),
    ])
    .to_json()
}

pub(crate) fn policy_version(set: &PolicySet) -> String {
    hex::encode(Sha256::digest(canonical(set).as_bytes()))
}
