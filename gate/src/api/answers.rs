//! Where approvers' answers come in as JSON:
//!
//! - `POST /v1/approvals/{token}` is the webhook receivers' answer URL.
//! - `POST /slack/interactions` takes Slack button clicks, signed by Slack.
//!
//! The confirmation pages of emailed, Teams and console links
//! (`/a/{token}`) are HTML and live in `ui::confirm`. Every path checks the
//! same rules through the store: only the run's approvers, never its actor,
//! escalation members only from their time, one counted answer each,
//! nothing after the run is decided or expired. Personal tokens are
//! single-use; a webhook's answer URL is spent once per approver.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use countersign_store::{AnswerDecision, GovernanceStatus, TokenOutcome};
use serde_json::{Value, json};

use super::{control_body, run_view};
use crate::approvals::channels::names;
use crate::approvals::record::{self, Answer, MAX_COMMENT, Outcome, Refusal, parse_decision};
use crate::approvals::tokens::{approval_token_key, approval_token_well_formed};
use crate::error::ApiError;
use crate::http::{ClientAddr, MAX_FORM_BYTES, read_body, user_agent};
use crate::state::AppState;

/// The largest Slack interaction body read.
const MAX_SLACK_BODY: usize = 64 * 1024;

/// `POST /v1/approvals/{token}` `{decision, approver?, comment?}`: the
/// answer URL of webhook deliveries (and of any link token, for tools).
pub async fn answer_api(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ClientAddr(client_addr): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let mut m = control_body(body, MAX_FORM_BYTES, &["decision", "approver", "comment"]).await?;
    let decision = match m.remove("decision") {
        Some(Value::String(d)) => parse_decision(&d).ok_or_else(|| {
            ApiError::validation("decision", "`decision` must be `approve` or `reject`")
        })?,
        _ => {
            return Err(ApiError::validation(
                "decision",
                "`decision` is required: `approve` or `reject`",
            ));
        }
    };
    let approver = match m.remove("approver") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if !a.is_empty() && a.len() <= record::MAX_APPROVER_ID => Some(a),
        Some(_) => {
            return Err(ApiError::validation(
                "approver",
                "`approver` must be a non-empty string",
            ));
        }
    };
    let comment = match m.remove("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.chars().count() <= MAX_COMMENT => Some(c),
        Some(_) => {
            return Err(ApiError::validation(
                "comment",
                format!("`comment` must be a string of at most {MAX_COMMENT} characters"),
            ));
        }
    };
    let not_found = || ApiError::NotFound("unknown approval token".to_owned());
    if !approval_token_well_formed(&token) {
        return Err(not_found());
    }
    let hash = approval_token_key(&token);
    let t = state.store.find_token(&hash).await?.ok_or_else(not_found)?;
    let shared = t.recipient().is_shared();
    let approver_id = match (shared, approver) {
        (true, Some(a)) => a,
        (true, None) => {
            return Err(ApiError::validation(
                "approver",
                "`approver` is required: who answered",
            ));
        }
        (false, Some(a)) if a != t.approver_id => {
            return Err(ApiError::Forbidden {
                code: "not_your_token",
                message: "this token was issued to another approver".to_owned(),
            });
        }
        (false, _) => t.approver_id.clone(),
    };
    let run = state
        .store
        .get_run(&t.workspace, &t.run_id)
        .await?
        .ok_or_else(not_found)?;
    let now = state.clock.now();
    // Refusals that would waste the single-use token are checked first.
    record::may_answer(&run, &approver_id, now)?;
    let channel = record::token_channel(&state, &t, &hash).await?;
    let answer = Answer {
        workspace: &t.workspace,
        run_id: &t.run_id,
        approver_id: &approver_id,
        decision,
        channel: &channel,
        comment,
        client_addr,
        user_agent: user_agent(&headers),
    };
    let (outcome, run) = if shared {
        shared_answer(&state, &hash, &t, &run, answer).await?
    } else {
        match record::answer_with_token(&state, &hash, answer).await? {
            Ok(answered) => answered,
            Err(TokenOutcome::AlreadyUsed(_) | TokenOutcome::Consumed(_)) => {
                return Err(ApiError::Conflict {
                    code: "token_used",
                    message: "this answer URL was already used".to_owned(),
                });
            }
            Err(TokenOutcome::Expired(_)) => return Err(token_expired()),
            Err(TokenOutcome::Unknown) => return Err(not_found()),
        }
    };
    Ok(Json(json!({
        "outcome": outcome,
        "message": record::describe(outcome, &run, &approver_id, decision),
        "run": run_view(&run),
    })))
}

fn token_expired() -> ApiError {
    ApiError::Conflict {
        code: "token_expired",
        message: "this answer URL has expired".to_owned(),
    }
}

/// An answer through the answer URL of a shared destination (a webhook
/// event, one per run for the whole group). That URL is spent per
/// approver, not per run: each eligible approver (checked by the caller)
/// answers through it once, so a webhook-only team can reach any quorum.
/// The answer must name them; a second answer by the same approver is
/// refused and records nothing. Two answers by one approver racing each
/// other are both recorded, the second uncounted (the store counts one
/// answer per approver).
async fn shared_answer(
    state: &AppState,
    token_hash: &str,
    t: &countersign_store::ApprovalToken,
    run: &countersign_store::Run,
    answer: Answer<'_>,
) -> Result<(Outcome, countersign_store::Run), ApiError> {
    if state.clock.now() >= t.expires_at {
        return Err(token_expired());
    }
    if run
        .approvals
        .iter()
        .any(|a| a.approver_id == answer.approver_id)
    {
        return Err(ApiError::Conflict {
            code: "already_answered",
            message: format!(
                "`{}` has already answered run `{}`; each approver answers once",
                answer.approver_id, run.proposal.run_id
            ),
        });
    }
    match record::answer_with_shared_token(state, token_hash, answer).await? {
        Ok(answered) => Ok(answered),
        Err(TokenOutcome::Expired(_)) => Err(token_expired()),
        Err(_) => Err(ApiError::NotFound("unknown approval token".to_owned())),
    }
}

/// `POST /slack/interactions`: a button click from Slack.
pub async fn slack_interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let unauthorized = |m: &str| ApiError::Unauthorized(m.to_owned()).into_response();
    let Some(secret) = state.channels.slack_signing_secret.clone() else {
        return ApiError::NotFound("Slack is not configured on this gate".to_owned())
            .into_response();
    };
    let bytes = match read_body(body, MAX_SLACK_BODY).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let header_str = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if countersign_transports::slack::verify_signature(
        &secret,
        header_str("x-slack-request-timestamp"),
        header_str("x-slack-signature"),
        &bytes,
        state.clock.now(),
    )
    .is_err()
    {
        return unauthorized("invalid or stale Slack signature");
    }
    let interaction = match countersign_transports::slack::parse_interaction(&bytes) {
        Ok(i) => i,
        Err(e) => {
            return ApiError::validation("payload", format!("not a Countersign button click: {e}"))
                .into_response();
        }
    };
    let ephemeral = |text: String| {
        Json(json!({ "response_type": "ephemeral", "replace_original": false, "text": text }))
            .into_response()
    };
    if let Some(team) = &state.channels.slack_team_id {
        if interaction.team_id.as_deref() != Some(team.as_str()) {
            return ApiError::Forbidden {
                code: "wrong_slack_team",
                message: "this click comes from another Slack workspace".to_owned(),
            }
            .into_response();
        }
    }
    let v = &interaction.value;
    let decision = match v.decision {
        countersign_transports::slack::Decision::Approve => AnswerDecision::Approve,
        countersign_transports::slack::Decision::Reject => AnswerDecision::Reject,
    };
    let run = match state.store.get_run(&v.workspace, &v.run_id).await {
        Ok(Some(run)) => run,
        Ok(None) => return ephemeral("This request no longer exists.".to_owned()),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let approver = run
        .proposal
        .approval
        .as_ref()
        .and_then(|a| {
            a.approvers
                .iter()
                .find(|m| m.slack.as_deref() == Some(interaction.user_id.as_str()))
        })
        .map(|m| m.id.clone());
    let Some(approver_id) = approver else {
        return ephemeral(
            "You are not an approver of this request, so you may not answer it.".to_owned(),
        );
    };
    // The button must be on a Slack message this gate sent for this run:
    // in a direct message, to the approver who clicked.
    let delivery = match state
        .store
        .deliveries_for_run(&v.workspace, &v.run_id)
        .await
    {
        Ok(list) => list
            .into_iter()
            .find(|d| d.delivery_id == v.delivery_id && d.channel == names::SLACK),
        Err(e) => return ApiError::from(e).into_response(),
    };
    match delivery {
        None => {
            return ephemeral(
                "This button is not on a request Countersign sent for this run.".to_owned(),
            );
        }
        Some(d) if !d.recipient().is_shared() && d.approver_id != approver_id => {
            return ephemeral(
                "This message was sent to another approver; answer from your own.".to_owned(),
            );
        }
        Some(_) => {}
    }
    if let Err(e) = record::may_answer(&run, &approver_id, state.clock.now()) {
        return ephemeral(match e {
            Refusal::SelfApproval { .. } => "You proposed this action, so you cannot approve it; \
                 another approver has to answer."
                .to_owned(),
            Refusal::NotAnApprover { .. } => "You may not answer this request.".to_owned(),
            Refusal::NotYetEligible { eligible_from, .. } => format!(
                "You may answer this request only from {}, if it is still open then.",
                record::eligible_text(eligible_from)
            ),
        });
    }
    let result = record::record_answer(
        &state,
        Answer {
            workspace: &v.workspace,
            run_id: &v.run_id,
            approver_id: &approver_id,
            decision,
            channel: names::SLACK,
            comment: None,
            client_addr: None,
            user_agent: None,
        },
    )
    .await;
    match result {
        Ok((outcome, run)) => {
            let text = record::describe(outcome, &run, &approver_id, decision);
            // Replace the buttons with the outcome: in a DM as soon as its
            // approver has answered; in a shared channel post only once the
            // run is settled, because others may still need to click.
            let settled = run.governance_status != GovernanceStatus::PendingApproval;
            let own_message = !state.channels.slack_channel_mode;
            if settled || (own_message && outcome == Outcome::Recorded) {
                if let Some(slack) = &state.channels.slack {
                    if let Err(e) = slack
                        .update_outcome(&interaction.channel_id, &interaction.message_ts, &text)
                        .await
                    {
                        tracing::warn!(error = %e.message(), "could not update the Slack message");
                    }
                }
            }
            ephemeral(text)
        }
        Err(e) => e.into_response(),
    }
}
