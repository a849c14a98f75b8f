//! `POST /v1/intercept`: decide a proposed action and record it durably.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Duration;
use countersign_engine::policy::is_valid_action_name;
use countersign_engine::{JsonLimits, Map, Value, Verdict, parse_json_with_limits};
use countersign_store::{
    ApprovalRequirement, CreateRunOutcome, DecisionRecord, GovernanceStatus, NewRun,
};
use sha2::{Digest, Sha256};

use super::{RunView, read_body, summarize_payload};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics::DecisionKind;
use crate::state::AppState;

const MAX_IDEMPOTENCY_KEY: usize = 255;
const MAX_ACTOR: usize = 256;
const MAX_REASONING: usize = 8 * 1024;
const ALLOWED_FIELDS: [&str; 6] = [
    "action",
    "payload",
    "idempotency_key",
    "actor",
    "reasoning",
    "source",
];

/// A validated intercept body.
#[derive(Debug)]
pub struct InterceptBody {
    /// The action name.
    pub action: String,
    /// The payload object.
    pub payload: Value,
    /// Optional idempotency key.
    pub idempotency_key: Option<String>,
    /// Who proposes it.
    pub actor: Option<String>,
    /// Why, in the agent's words.
    pub reasoning: Option<String>,
    /// Where the request came from.
    pub source: Option<Value>,
}

/// Takes `field` from the top level or, failing that, from the payload;
/// giving it in both places with different values is refused.
fn top_or_payload<'a>(
    top: &'a Map,
    payload: &'a Map,
    field: &str,
) -> Result<Option<&'a Value>, ApiError> {
    match (top.get(field), payload.get(field)) {
        (Some(a), Some(b)) if a != b => Err(ApiError::validation(
            field,
            format!("`{field}` is given at the top level and in the payload with different values"),
        )),
        (Some(v), _) | (None, Some(v)) => Ok(Some(v)),
        (None, None) => Ok(None),
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
pub fn parse_intercept(bytes: &[u8], max_bytes: usize) -> Result<InterceptBody, ApiError> {
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
    let actor = optional_string(
        top_or_payload(&top, &payload_map, "actor")?,
        "actor",
        MAX_ACTOR,
    )?;
    let reasoning = optional_string(
        top_or_payload(&top, &payload_map, "reasoning")?,
        "reasoning",
        MAX_REASONING,
    )?;
    let source = top_or_payload(&top, &payload_map, "source")?
        .filter(|v| **v != Value::Null)
        .cloned();
    Ok(InterceptBody {
        action,
        payload: Value::Object(payload_map),
        idempotency_key,
        actor,
        reasoning,
        source,
    })
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The identity of a request for idempotency: the same action, payload
/// (whatever its key order), actor, reasoning and source. `payload_json` is
/// the payload's canonical text ([`Value::to_json`], keys sorted).
///
/// The hashed text is the JSON object `{action, actor, payload, reasoning,
/// source}` with its keys in that (sorted) order, as `Value::to_json` writes
/// it; it is built here without copying the payload into a new object.
fn request_hash(b: &InterceptBody, payload_json: &str) -> String {
    let optional = |v: Option<&str>, out: &mut String| match v {
        Some(s) => countersign_engine::write_json_string(s, out),
        None => out.push_str("null"),
    };
    let mut text = String::with_capacity(payload_json.len() + 128);
    text.push_str("{\"action\":");
    countersign_engine::write_json_string(&b.action, &mut text);
    text.push_str(",\"actor\":");
    optional(b.actor.as_deref(), &mut text);
    text.push_str(",\"payload\":");
    text.push_str(payload_json);
    text.push_str(",\"reasoning\":");
    optional(b.reasoning.as_deref(), &mut text);
    text.push_str(",\"source\":");
    match &b.source {
        Some(v) => v.write_json(&mut text),
        None => text.push_str("null"),
    }
    text.push('}');
    sha256_hex(&text)
}

/// The handler.
pub async fn intercept(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, axum::response::Response), ApiError> {
    let started = Instant::now();
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let req = parse_intercept(&bytes, state.config.max_body_bytes)?;
    let policies = caller.workspace.policies();
    let now = state.clock.now();
    let actor_value = req.actor.clone().map_or(Value::Null, Value::String);
    let source_value = req.source.clone().unwrap_or(Value::Null);
    let now_value = Value::Timestamp(now);
    let decision = policies.decide(&countersign_engine::Request {
        action: &req.action,
        actor: &actor_value,
        payload: &req.payload,
        source: &source_value,
        now: &now_value,
    });
    let report = decision.to_report(&req.action);
    let (status, kind) = match decision.verdict {
        Verdict::Allow => (GovernanceStatus::Allowed, DecisionKind::Allowed),
        Verdict::RequireApproval => (GovernanceStatus::PendingApproval, DecisionKind::Pending),
        Verdict::Block => (GovernanceStatus::Blocked, DecisionKind::Blocked),
    };
    let mut deliveries = Vec::new();
    let approval = match decision.approval {
        Some(a) => {
            let ws_config = state
                .config
                .workspace(caller.workspace.name())
                .ok_or_else(|| ApiError::Internal("workspace missing from config".to_owned()))?;
            let plan = crate::approvals::plan::plan(
                &policies,
                a.group,
                ws_config,
                &state.channels,
                &state.token_secret,
                now,
            );
            deliveries = plan.deliveries;
            Some(ApprovalRequirement {
                group: a.group.name.clone(),
                quorum: a.quorum,
                expires_at: now
                    + Duration::from_std(a.timeout)
                        .map_err(|e| ApiError::Internal(format!("timeout out of range: {e}")))?,
                approvers: plan.approvers,
            })
        }
        None => None,
    };
    let details = serde_json::json!({
        "approval_rule": report.approval_rule,
        "matched": report.matched,
        "shadow": report.shadow,
        "errors": report.errors,
    });
    let payload_json = req.payload.to_json();
    let request_hash = request_hash(&req, &payload_json);
    let new_run = NewRun {
        workspace: caller.workspace.name().to_owned(),
        run_id: format!("run_{}", uuid::Uuid::now_v7().simple()),
        action: req.action.clone(),
        actor: req.actor.clone(),
        source: req.source.as_ref().map(Value::to_serde_json),
        reasoning: req.reasoning.clone(),
        payload_hash: sha256_hex(&payload_json),
        payload_summary: summarize_payload(&req.payload),
        payload_json,
        idempotency_key: req.idempotency_key.clone(),
        request_hash,
        decision: DecisionRecord {
            governance_status: status,
            rule: report.rule.clone(),
            reason: report.reason.clone(),
            policy_version: report.policy_version.clone(),
            risk: report.risk.clone(),
            details,
        },
        approval,
        deliveries,
        created_at: now,
    };
    let (code, run, replay) = match state.store.create_run(new_run).await? {
        CreateRunOutcome::Created(run) => (StatusCode::CREATED, run, false),
        CreateRunOutcome::Existing(run) => (StatusCode::OK, run, true),
    };
    state
        .metrics
        .record_intercept(kind, replay, started.elapsed().as_secs_f64());
    Ok((code, Json(RunView::new(&run)).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<InterceptBody, ApiError>) -> String {
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
            field(p(r#"{"action":"a","actor":"x","payload":{"actor":"y"}}"#)),
            "actor"
        );
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

    /// The hash of the first implementation, which built the object as a
    /// value: stored runs' hashes must keep matching their retries.
    fn request_hash_as_a_value(b: &InterceptBody) -> String {
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
