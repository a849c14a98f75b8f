//! A benchmark of a wrong policy proves nothing: every peer translation must
//! reach Countersign's verdict on every finance test case, and Cedar's
//! generated scale set must agree with Countersign's.

use countersign_benches::{check_finance_equivalence, scale};
use countersign_engine::{Request, Value};

#[test]
fn every_peer_agrees_on_every_finance_case() {
    let problems = check_finance_equivalence();
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn cedar_agrees_on_the_generated_scale_set() {
    let n = 200;
    let ours = scale::load_ours(&scale::yaml_sources(n));
    assert_eq!(ours.rule_count(), n * scale::RULES_PER_ACTION);
    let cedar = scale::CedarScale::parse(&scale::cedar_source(n));
    let null = Value::Null;
    let mut seen = std::collections::HashSet::new();
    // Every action, not only the probes, with every payload.
    for i in 0..n {
        let action = scale::action_name(i);
        for p in scale::PAYLOADS {
            let payload = countersign_engine::parse_json(p.as_bytes()).unwrap();
            let actor = Value::string(scale::ACTOR);
            let req = Request {
                action: &action,
                actor: &actor,
                payload: &payload,
                source: &null,
            context: &null,
                now: &null,
            };
            let v = ours.decide(&req).verdict;
            let ctx = serde_json::json!({"actor": scale::ACTOR, "payload": serde_json::from_str::<serde_json::Value>(p).unwrap()});
            let c = cedar.decide(&countersign_benches::cedar_peer::request(
                &action, &actor, ctx,
            ));
            assert_eq!(v, c, "{action} with {p}");
            seen.insert(v);
        }
    }
    assert_eq!(
        seen.len(),
        3,
        "the generated set should produce every verdict: {seen:?}"
    );
}
