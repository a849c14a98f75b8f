//! Intercepting a proposed action: decide it with the workspace's
//! policies, plan who is asked for approval and through which channels, and
//! record the run with its deliveries in one store transaction (an outbox),
//! durable before anyone is answered.
//!
//! This is the gate's core path, independent of the surface a proposal came
//! through: the JSON API calls [`intercept`] after parsing and
//! authenticating, and other surfaces (an MCP proxy, limits over time) call
//! it the same way. It neither parses requests nor writes responses.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use countersign_engine::{Aggregates, PolicySet, Value, Verdict};
use countersign_store::{
    AggregateResult, ApiKeyRecord, ApprovalRequirement, CreateRunOutcome, DecideRun,
    DecisionRecord, GovernanceStatus, NewRun, Proposal, Run, StoreError,
};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::http::summarize_text;
use crate::metrics::DecisionKind;
use crate::run_id::RunId;
use crate::state::AppState;
use crate::workspace::Workspace;

/// A proposed action, validated: what an agent asks to do, whichever
/// surface it came through (the JSON API today).
#[derive(Debug, Clone)]
pub struct ProposedAction {
    /// The action name.
    pub action: String,
    /// The payload object.
    pub payload: Value,
    /// Optional idempotency key.
    pub idempotency_key: Option<String>,
    /// Who proposes it.
    pub actor: Option<String>,
    /// Whether `actor` comes from the API key (bound with `keys create
    /// --actor`) rather than from the request; see [`ProposedAction::bind_to_key`].
    pub actor_bound: bool,
    /// Why, in the agent's words.
    pub reasoning: Option<String>,
    /// Where the request came from.
    pub source: Option<Value>,
    /// What the surface the request came through adds about it (an
    /// object, such as the MCP proxy's `{"mcp": {"server", "tool",
    /// "client"}}`): stored with the run, read by policies as `context`.
    pub context: Option<Value>,
}

impl ProposedAction {
    /// Applies the key's actor binding. An unbound key changes nothing: the
    /// request names its own actor, unchecked. For a key bound to an actor,
    /// the run is that actor's (as the key spells it); a request naming
    /// another actor (compared by identity skeleton, see
    /// [`countersign_store::same_identity`]) is refused with 403
    /// `actor_mismatch`, and one naming none or the same is accepted.
    pub fn bind_to_key(&mut self, key: &ApiKeyRecord) -> Result<(), ApiError> {
        let Some(bound) = &key.actor else {
            return Ok(());
        };
        if let Some(claimed) = &self.actor {
            if !countersign_store::same_identity(claimed, bound) {
                return Err(ApiError::Forbidden {
                    code: "actor_mismatch",
                    message: format!(
                        "this API key is bound to actor `{bound}`; it cannot propose as `{}`",
                        crate::http::summarize_text(claimed, 64)
                    ),
                });
            }
        }
        self.actor = Some(bound.clone());
        self.actor_bound = true;
        Ok(())
    }
}

/// The run recorded for a proposal.
#[derive(Debug)]
pub struct Intercepted {
    /// The run, as stored.
    pub run: Run,
    /// The run already existed (same idempotency key and request): this is
    /// a replay, and nothing new was recorded.
    pub replay: bool,
    /// What the policies decided, for the metrics.
    pub kind: DecisionKind,
}

/// Why a proposal could not be recorded. A refusal by the policies is not
/// an error: it is a run with a blocked decision.
#[derive(Debug, thiserror::Error)]
pub enum InterceptError {
    /// The store refused or failed (an idempotency conflict, an outage).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or an inconsistent configuration; logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl From<InterceptError> for ApiError {
    fn from(e: InterceptError) -> Self {
        match e {
            InterceptError::Store(e) => e.into(),
            InterceptError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// Decides `proposal` for `workspace` at the state's clock, plans its
/// approval requests, and records the run (or finds the earlier run of the
/// same idempotent request). The caller has authenticated the proposer and
/// records the metrics.
///
/// When the action's rules read aggregates over past runs (`count(…)`,
/// `sum(…)`), the decision is taken inside the store's transaction, after
/// the store computed their values from its index: concurrent intercepts
/// of the workspace are serialized there, so they cannot both slip under a
/// limit. The values are recorded with the decision (`details.aggregates`).
pub async fn intercept(
    state: &AppState,
    workspace: &Workspace,
    proposal: &ProposedAction,
) -> Result<Intercepted, InterceptError> {
    let policies = workspace.policies();
    let now = state.clock.now();
    let specs = policies.aggregates(&proposal.action);
    let outcome = if specs.is_empty() {
        let (new_run, _) = decide_run(
            state,
            workspace.name(),
            &policies,
            proposal,
            now,
            &Aggregates::new(),
        )?;
        state.store.create_run(new_run).await?
    } else {
        let actor_value = proposal.actor.clone().map_or(Value::Null, Value::String);
        let source_value = proposal.source.clone().unwrap_or(Value::Null);
        let context_value = proposal.context.clone().unwrap_or(Value::Null);
        let now_value = Value::Timestamp(now);
        let bindings = countersign_engine::Bindings {
            actor: &actor_value,
            payload: &proposal.payload,
            source: &source_value,
            context: &context_value,
            now: &now_value,
        };
        let (queries, keys, failed) = crate::limits::queries(&specs, &bindings);
        let shared_queries = Arc::new(queries.clone());
        let (st, ws, pol, prop) = (
            state.clone(),
            workspace.name().to_owned(),
            Arc::clone(&policies),
            Arc::new(proposal.clone()),
        );
        let decide: DecideRun = Arc::new(move |results: &[AggregateResult]| {
            let aggregates = crate::limits::values(&failed, &keys, results, &shared_queries);
            decide_run(&st, &ws, &pol, &prop, now, &aggregates)
                .map(|(run, _)| run)
                .map_err(|e| StoreError::Unavailable {
                    message: e.to_string(),
                })
        });
        state
            .store
            .create_run_deciding(workspace.name(), now, queries, decide)
            .await?
    };
    let (run, replay) = match outcome {
        CreateRunOutcome::Created(run) => {
            // Committed: the worker (here and on other gates) can send now.
            if run.proposal.approval.is_some() {
                state.outbox.queued();
            }
            (run, false)
        }
        CreateRunOutcome::Existing(run) => (run, true),
    };
    let kind = match run.proposal.decision.governance_status {
        GovernanceStatus::Allowed => DecisionKind::Allowed,
        GovernanceStatus::PendingApproval => DecisionKind::Pending,
        _ => DecisionKind::Blocked,
    };
    // One line per intercept, never the payload (it may hold personal
    // data); the action name is checked to a safe alphabet on the way in.
    // `RUST_LOG=info,countersign::intercept=off` turns these lines off.
    tracing::info!(
        target: "countersign::intercept",
        run = %run.proposal.run_id,
        workspace = %run.proposal.workspace,
        action = %run.proposal.action,
        decision = %run.proposal.decision.governance_status.as_str(),
        rule = %run.proposal.decision.rule.as_deref().unwrap_or("-"),
        replay,
        "intercept"
    );
    Ok(Intercepted { run, replay, kind })
}

/// Decides `proposal` with the aggregates' values and builds the run to
/// record: its decision, approval requirement and deliveries.
fn decide_run(
    state: &AppState,
    workspace: &str,
    policies: &PolicySet,
    proposal: &ProposedAction,
    now: DateTime<Utc>,
    aggregates: &Aggregates,
) -> Result<(NewRun, DecisionKind), InterceptError> {
    let actor_value = proposal.actor.clone().map_or(Value::Null, Value::String);
    let source_value = proposal.source.clone().unwrap_or(Value::Null);
    let context_value = proposal.context.clone().unwrap_or(Value::Null);
    let now_value = Value::Timestamp(now);
    let decision = policies.decide_with(
        &countersign_engine::Request {
            action: &proposal.action,
            actor: &actor_value,
            payload: &proposal.payload,
            source: &source_value,
            context: &context_value,
            now: &now_value,
        },
        aggregates,
    );
    let report = decision.to_report(&proposal.action);
    let (status, kind) = match decision.verdict {
        Verdict::Allow => (GovernanceStatus::Allowed, DecisionKind::Allowed),
        Verdict::RequireApproval => (GovernanceStatus::PendingApproval, DecisionKind::Pending),
        Verdict::Block => (GovernanceStatus::Blocked, DecisionKind::Blocked),
    };
    let mut deliveries = Vec::new();
    let approval = match decision.approval {
        Some(a) => {
            let ws_config = state.config.workspace(workspace).ok_or_else(|| {
                InterceptError::Internal("workspace missing from config".to_owned())
            })?;
            let plan = crate::approvals::plan::plan(
                policies,
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
                    + Duration::from_std(a.timeout).map_err(|e| {
                        InterceptError::Internal(format!("timeout out of range: {e}"))
                    })?,
                approvers: plan.approvers,
            })
        }
        None => None,
    };
    let mut details = serde_json::json!({
        "approval_rule": report.approval_rule,
        "matched": report.matched,
        "shadow": report.shadow,
        "errors": report.errors,
    });
    // Recorded (in the policy_decided event too) only when true, so runs of
    // unbound keys keep their shape; receipts read it back as `actor_bound`.
    if let (true, Some(map)) = (proposal.actor_bound, details.as_object_mut()) {
        map.insert("actor_bound".to_owned(), serde_json::Value::Bool(true));
    }
    // The aggregates' values the decision read, only when there were any.
    if let (false, Some(map)) = (aggregates.is_empty(), details.as_object_mut()) {
        map.insert("aggregates".to_owned(), crate::limits::recorded(aggregates));
    }
    let payload_json = proposal.payload.to_json();
    let request_hash = request_hash(proposal, &payload_json);
    let new_run = NewRun {
        proposal: Proposal {
            workspace: workspace.to_owned(),
            run_id: RunId::generate().into_string(),
            action: proposal.action.clone(),
            actor: proposal.actor.clone(),
            source: proposal.source.as_ref().map(Value::to_serde_json),
            context: proposal.context.as_ref().map(Value::to_serde_json),
            reasoning: proposal.reasoning.clone(),
            payload_hash: sha256_hex(&payload_json),
            payload_summary: summarize_payload(&proposal.payload),
            payload_json,
            idempotency_key: proposal.idempotency_key.clone(),
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
            created_at: now,
        },
        deliveries,
    };
    Ok((new_run, kind))
}

pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The identity of a request for idempotency: the same action, payload
/// (whatever its key order), actor, reasoning and source. `payload_json` is
/// the payload's canonical text ([`Value::to_json`], keys sorted).
///
/// The hashed text is the JSON object `{action, actor, payload, reasoning,
/// source}` with its keys in that (sorted) order, as `Value::to_json` writes
/// it; it is built here without copying the payload into a new object. A
/// request with a `context` adds it between `actor` and `payload` (its
/// sorted place), so the hashes of requests without one never changed.
pub(crate) fn request_hash(b: &ProposedAction, payload_json: &str) -> String {
    let optional = |v: Option<&str>, out: &mut String| match v {
        Some(s) => countersign_engine::write_json_string(s, out),
        None => out.push_str("null"),
    };
    let mut text = String::with_capacity(payload_json.len() + 128);
    text.push_str("{\"action\":");
    countersign_engine::write_json_string(&b.action, &mut text);
    text.push_str(",\"actor\":");
    optional(b.actor.as_deref(), &mut text);
    if let Some(context) = &b.context {
        text.push_str(",\"context\":");
        context.write_json(&mut text);
    }
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

/// A short, human-readable summary of a payload: `amount=1250.1, customer={…}`.
pub fn summarize_payload(payload: &countersign_engine::Value) -> String {
    use countersign_engine::Value as V;
    let Some(map) = payload.as_object() else {
        return summarize_text(&payload.to_json(), 240);
    };
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            let shown = match v {
                V::Object(m) if !m.is_empty() => "{…}".to_owned(),
                V::List(items) if !items.is_empty() => format!("[{} items]", items.len()),
                V::String(s) => summarize_text(s, 40),
                other => summarize_text(&other.to_json(), 40),
            };
            format!("{k}={shown}")
        })
        .collect();
    summarize_text(&parts.join(", "), 240)
}
