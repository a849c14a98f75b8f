//! `POST /v1/intercept`: parse and authorise a proposed action, hand it to
//! [`crate::intercept::intercept`] (decide, plan approvals, record), and
//! answer with the run.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use countersign_engine::is_valid_action_name;
use countersign_engine::{JsonLimits, Map, Value, parse_json_with_limits};

use super::RunView;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::read_body;
pub use crate::intercept::ProposedAction;
use crate::state::AppState;

const MAX_IDEMPOTENCY_KEY: usize = 255;
const MAX_ACTOR: usize = 256;
const MAX_REASONING: usize = 8 * 1024;
/// The longest `context` accepted, as canonical JSON text.
pub const MAX_CONTEXT_BYTES: usize = 4 * 1024;
const ALLOWED_FIELDS: [&str; 7] = [
    "action",
    "payload",
    "idempotency_key",
    "actor",
    "reasoning",
    "source",
    "context",
];

/// Takes `field` from the top level or, when the top level does not have
/// the key, from the payload. The top level wins: a top-level key, even
/// `null`, means the payload's field of that name is an argument like any
/// other (an MCP tool may well take an `actor` argument), not the run's
/// actor, reasoning or source.
fn top_or_payload<'a>(top: &'a Map, payload: &'a Map, field: &str) -> Option<&'a Value> {
    match top.get(field) {
        Some(v) => Some(v),
        None => payload.get(field),
    }
}

/// The `context` object: absent or null is none; anything but an object,
/// or an object longer than [`MAX_CONTEXT_BYTES`] as JSON, is refused.
fn context(top: &mut Map) -> Result<Option<Value>, ApiError> {
    match top.remove("context") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) if v.to_json().len() <= MAX_CONTEXT_BYTES => Ok(Some(v)),
        Some(Value::Object(_)) => Err(ApiError::validation(
            "context",
            format!("`context` is longer than {MAX_CONTEXT_BYTES} bytes as JSON"),
        )),
        Some(other) => Err(ApiError::validation(
            "context",
            format!(
                "`context` must be a JSON object, not {}",
                other.json_type_name()
            ),
        )),
    }
}

fn optional_string(v: Option<&Value>, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::validation(
            field,
            format!("`{field}` is longer than {max} characters"),
        )),
        Some(other) => Err(ApiError::validation(
            field,
            format!("`{field}` must be a string, not {}", other.json_type_name()),
        )),
    }
}

/// Parses and validates an intercept body. Public so the fuzz target can
/// drive it directly.
pub fn parse_intercept(bytes: &[u8], max_bytes: usize) -> Result<ProposedAction, ApiError> {
    let limits = JsonLimits {
        max_depth: 64,
        max_bytes,
    };
    let value = parse_json_with_limits(bytes, limits)
        .map_err(|e| ApiError::validation("body", format!("malformed JSON: {}", e)))?;
    let Value::Object(mut top) = value else {
        return Err(ApiError::validation(
            "body",
            "the body must be a JSON object",
        ));
    };
    if let Some((unknown, _)) = top.iter().find(|(k, _)| !ALLOWED_FIELDS.contains(k)) {
        // The field is named as sent, but never empty and never huge: an
        // empty or long key is reported against the body.
        let shown = crate::http::summarize_text(unknown, 64);
        let field = if unknown.is_empty() || shown != unknown {
            "body"
        } else {
            unknown
        };
        return Err(ApiError::validation(
            field,
            format!(
                "unknown field `{shown}`; expected one of {}",
                ALLOWED_FIELDS.join(", ")
            ),
        ));
    }
    let action = match top.get("action") {
        Some(Value::String(a)) if is_valid_action_name(a) => a.clone(),
        Some(Value::String(a)) => {
            return Err(ApiError::validation(
                "action",
                format!(
                    "`{}` is not a valid action name (1–128 letters, digits, `_`, `-`, `.`, `:`)",
                    crate::http::summarize_text(a, 64)
                ),
            ));
        }
        Some(other) => {
            return Err(ApiError::validation(
                "action",
                format!("`action` must be a string, not {}", other.json_type_name()),
            ));
        }
        None => return Err(ApiError::validation("action", "`action` is required")),
    };
    let payload_map = match top.remove("payload") {
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(ApiError::validation(
                "payload",
                format!(
                    "`payload` must be a JSON object, not {}",
                    other.json_type_name()
                ),
            ));
        }
        None => return Err(ApiError::validation("payload", "`payload` is required")),
    };
    let idempotency_key = match top.get("idempotency_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k))
            if !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY
                && !k.chars().any(char::is_control) =>
        {
            Some(k.clone())
        }
        Some(_) => {
            return Err(ApiError::validation(
                "idempotency_key",
                format!(
                    "`idempotency_key` must be a string of 1–{MAX_IDEMPOTENCY_KEY} bytes without control characters"
                ),
            ));
        }
    };
    let context = context(&mut top)?;
    let actor = optional_string(
        top_or_payload(&top, &payload_map, "actor"),
        "actor",
        MAX_ACTOR,
    )?;
    let reasoning = optional_string(
        top_or_payload(&top, &payload_map, "reasoning"),
        "reasoning",
        MAX_REASONING,
    )?;
    let source = top_or_payload(&top, &payload_map, "source")
        .filter(|v| **v != Value::Null)
        .cloned();
    Ok(ProposedAction {
        action,
        payload: Value::Object(payload_map),
        idempotency_key,
        actor,
        actor_bound: false,
        reasoning,
        source,
        context,
    })
}

/// The handler: parses and authorises, then answers with the run.
pub async fn intercept(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, axum::response::Response), ApiError> {
    let started = Instant::now();
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let mut proposal = parse_intercept(&bytes, state.config.max_body_bytes)?;
    proposal.bind_to_key(&caller.key)?;
    let done = crate::intercept::intercept(&state, &caller.workspace, &proposal).await?;
    state
        .metrics
        .record_intercept(done.kind, done.replay, started.elapsed().as_secs_f64());
    let code = if done.replay {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(RunView::new(&done.run)).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intercept::{request_hash, sha256_hex};

    fn field(r: Result<ProposedAction, ApiError>) -> String {
        match r {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_field() {
        let p = |s: &str| parse_intercept(s.as_bytes(), 65536);
        assert_eq!(field(p("{")), "body");
        assert_eq!(field(p("[]")), "body");
        assert_eq!(field(p(r#"{"payload":{}}"#)), "action");
        assert_eq!(field(p(r#"{"action":"bad name!","payload":{}}"#)), "action");
        assert_eq!(field(p(r#"{"action":"a","payload":[1]}"#)), "payload");
        assert_eq!(field(p(r#"{"action":"a"}"#)), "payload");
        assert_eq!(
            field(p(r#"{"action":"a","payload":{},"extra":1}"#)),
            "extra"
        );
        assert_eq!(field(p(r#"{"action":"a","payload":{"actor":7}}"#)), "actor");
        assert_eq!(
            field(p(r#"{"action":"a","payload":{},"context":[1]}"#)),
            "context"
        );
        assert_eq!(
            field(p(r#"{"action":"a","payload":{},"context":"mcp"}"#)),
            "context"
        );
        let long = format!(
            r#"{{"action":"a","payload":{{}},"context":{{"k":"{}"}}}}"#,
            "x".repeat(MAX_CONTEXT_BYTES)
        );
        assert_eq!(field(p(&long)), "context");
        assert_eq!(
            field(p(r#"{"action":"a","payload":{},"idempotency_key":""}"#)),
            "idempotency_key"
        );
    }

    /// Found by the `intercept_body` fuzz target: `{"":55}` gave a 422
    /// whose `field` was empty, and a long unknown key was echoed whole.
    #[test]
    fn regression_unknown_empty_or_long_key_names_the_body() {
        assert_eq!(field(parse_intercept(br#"{"":55}"#, 65536)), "body");
        let long = format!(r#"{{"{}":1,"action":"a","payload":{{}}}}"#, "k".repeat(500));
        match parse_intercept(long.as_bytes(), 65536) {
            Err(ApiError::Validation { field, message }) => {
                assert_eq!(field, "body");
                assert!(message.len() < 200, "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn actor_reasoning_and_source_come_from_the_payload_or_the_top() {
        let b = parse_intercept(
            br#"{"action":"a","payload":{"actor":"bot","reasoning":"why"},"source":{"app":"crm"}}"#,
            65536,
        )
        .unwrap();
        assert_eq!(b.actor.as_deref(), Some("bot"));
        assert_eq!(b.reasoning.as_deref(), Some("why"));
        assert!(b.source.is_some());
    }

    #[test]
    fn the_top_level_wins_over_the_payload() {
        let p = |s: &str| parse_intercept(s.as_bytes(), 65536).unwrap();
        let b =
            p(r#"{"action":"a","actor":"x","source":"mcp","payload":{"actor":"y","source":"z"}}"#);
        assert_eq!(b.actor.as_deref(), Some("x"));
        assert_eq!(b.source, Some(Value::string("mcp")));
        assert_eq!(
            b.payload.as_object().unwrap().get("actor"),
            Some(&Value::string("y"))
        );
        // A top-level null also wins: the payload's field is only an argument.
        let b = p(r#"{"action":"a","actor":null,"payload":{"actor":7}}"#);
        assert_eq!(b.actor, None);
        let b = p(r#"{"action":"a","payload":{},"context":{"mcp":{"tool":"t"}}}"#);
        assert_eq!(b.context.unwrap().to_json(), r#"{"mcp":{"tool":"t"}}"#);
        assert!(
            p(r#"{"action":"a","payload":{},"context":null}"#)
                .context
                .is_none()
        );
    }

    /// The hash of the first implementation, which built the object as a
    /// value: stored runs' hashes must keep matching their retries.
    fn request_hash_as_a_value(b: &ProposedAction) -> String {
        let mut m = Map::new();
        m.insert("action".into(), Value::string(&b.action));
        m.insert("payload".into(), b.payload.clone());
        m.insert(
            "actor".into(),
            b.actor.clone().map_or(Value::Null, Value::String),
        );
        m.insert(
            "reasoning".into(),
            b.reasoning.clone().map_or(Value::Null, Value::String),
        );
        m.insert("source".into(), b.source.clone().unwrap_or(Value::Null));
        sha256_hex(&Value::Object(m).to_json())
    }

    #[test]
    fn the_request_hash_is_the_one_stored_runs_have() {
        for body in [
            r#"{"action":"a","payload":{}}"#,
            r#"{"action":"issue_refund","actor":"bot \"x\"","reasoning":"line\nnext",
                "source":{"app":"crm","tags":[1,2.50,null]},
                "payload":{"amount":500,"note":"é\u0001","nested":{"b":1,"a":[true]}}}"#,
            r#"{"action":"a","payload":{"actor":"in-payload","source":"mail"}}"#,
        ] {
            let b = parse_intercept(body.as_bytes(), 65536).unwrap();
            assert_eq!(
                request_hash(&b, &b.payload.to_json()),
                request_hash_as_a_value(&b),
                "{body}"
            );
        }
    }

    #[test]
    fn the_request_hash_ignores_key_order_only() {
        let h = |s: &str| {
            let b = parse_intercept(s.as_bytes(), 65536).unwrap();
            request_hash(&b, &b.payload.to_json())
        };
        assert_eq!(
            h(r#"{"action":"a","payload":{"x":1,"y":2.50}}"#),
            h(r#"{"payload":{"y":2.5,"x":1},"action":"a"}"#)
        );
        assert_ne!(
            h(r#"{"action":"a","payload":{"x":1}}"#),
            h(r#"{"action":"a","payload":{"x":2}}"#)
        );
    }
}
