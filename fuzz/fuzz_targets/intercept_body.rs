//! The body of `POST /v1/intercept`, as the gate validates it: arbitrary
//! bytes must give either a validated request or a 422 naming a field,
//! never a panic. A valid request must be decidable by a fixed policy set,
//! and its JSON must read back to the same request.
#![no_main]

use std::sync::LazyLock;

use countersign_engine::{PolicySet, Request, Value};
use countersign_gate::api::intercept::parse_intercept;
use countersign_gate::error::ApiError;
use libfuzzer_sys::fuzz_target;

static POLICIES: LazyLock<Option<PolicySet>> = LazyLock::new(|| {
    PolicySet::from_sources([(
        "fuzz.yaml",
        "version: 1\napprovers:\n  leads:\n    members: [{id: alice}, {id: bob}]\nactions:\n  send_invoice_reminder:\n    approvers: leads\n    rules:\n      - name: large\n        when: payload.amount > 500\n        decision: require_approval\n      - name: actor-known\n        when: actor != null and len(actor) > 0\n        decision: allow\n",
    )])
    .ok()
});

fuzz_target!(|data: &[u8]| {
    match parse_intercept(data, 64 * 1024) {
        Ok(body) => {
            assert!(matches!(body.payload, Value::Object(_)), "payload must be an object");
            assert!(countersign_engine::is_valid_action_name(&body.action));
            if let Some(set) = POLICIES.as_ref() {
                let actor = body.actor.clone().map_or(Value::Null, Value::String);
                let source = body.source.clone().unwrap_or(Value::Null);
                let context = body.context.clone().unwrap_or(Value::Null);
                let req = Request { action: &body.action, actor: &actor, payload: &body.payload, source: &source, context: &context, now: &Value::Null };
                let a = set.decide(&req).to_report(&body.action);
                let b = set.decide(&req).to_report(&body.action);
                assert_eq!(a, b, "decisions are deterministic");
            }
        }
        Err(ApiError::Validation { field, message }) => {
            assert!(!field.is_empty() && !message.is_empty());
        }
        Err(other) => panic!("an intercept body may only fail validation, got {other:?}"),
    }
});
