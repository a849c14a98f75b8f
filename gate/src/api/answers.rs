//! Where approvers' answers come in:
//!
//! - `GET /a/{token}` shows a confirmation page and changes nothing (mail
//!   scanners and link previews follow links); its form POSTs to
//!   `/a/{token}`, which applies the answer. Email, Teams and console
//!   messages carry these links.
//! - `POST /v1/approvals/{token}` is the webhook receivers' answer URL.
//! - `POST /slack/interactions` takes Slack button clicks, signed by Slack.
//!
//! Every path checks the same rules through the store: only the run's
//! approvers, never its actor, one counted answer each, nothing after the
//! run is decided or expired. Tokens are single-use.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use countersign_store::{AnswerDecision, GovernanceStatus, Run, TokenOutcome};
use serde_json::{Value, json};

use super::{control_body, read_body, run_view};
use crate::approvals::channels::names;
use crate::approvals::record::{self, Answer, Outcome};
use crate::approvals::tokens::{approval_token_key, approval_token_well_formed};
use crate::error::ApiError;
use crate::state::AppState;

/// The longest comment kept.
const MAX_COMMENT: usize = 2000;

/// HTML-escapes agent-supplied text, and makes invisible formatting
/// characters (bidirectional overrides, zero-width marks) visible so text
/// cannot be disguised.
fn escape(s: &str) -> String {
    countersign_transports::html_escape(&crate::ui::reveal(s))
}

/// A small HTML page with strict security headers: no scripts, no framing,
/// no referrer (the URL holds a token), no caching.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{t} · Countersign</title>\
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1d2433}}\
h1{{font-size:1.4rem}}dl{{display:grid;grid-template-columns:9rem 1fr;gap:.3rem 1rem}}dt{{color:#5b6478}}dd{{margin:0;overflow-wrap:anywhere}}\
textarea{{width:100%;min-height:5rem}}button{{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem;border-radius:.3rem;border:1px solid #888;cursor:pointer}}\
.approve{{background:#1f7a3a;color:#fff;border-color:#1f7a3a}}.reject{{background:#b3261e;color:#fff;border-color:#b3261e}}.note{{color:#5b6478}}\
pre{{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85rem;background:#f4f5f8;padding:.5rem;margin:.3rem 0}}</style></head>\
<body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    crate::ui::harden(
        (status, Html(html)).into_response(),
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        "no-referrer",
    )
}

fn details(run: &Run) -> String {
    let row = |k: &str, v: &str| format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    let mut out = String::from("<dl>");
    out.push_str(&row("Action", &run.proposal.action));
    out.push_str(&row(
        "Proposed by",
        run.proposal.actor.as_deref().unwrap_or("unknown"),
    ));
    if let Some(risk) = &run.proposal.decision.risk {
        out.push_str(&row("Risk", risk));
    }
    if let Some(reasoning) = &run.proposal.reasoning {
        out.push_str(&row("Reasoning", reasoning));
    }
    out.push_str(&row("Payload", &run.proposal.payload_summary));
    out.push_str(&format!(
        "<dt>Full payload</dt><dd><details><summary>show</summary><pre>{}</pre></details></dd>",
        escape(&payload_for_page(&run.proposal.payload_json))
    ));
    out.push_str(&row("Payload SHA-256", &run.proposal.payload_hash));
    out.push_str(&row(
        "Rule",
        run.proposal.decision.rule.as_deref().unwrap_or("-"),
    ));
    out.push_str(&row("Why", &run.proposal.decision.reason));
    if let Some(a) = &run.proposal.approval {
        out.push_str(&row(
            "Needs",
            &format!("{} approval(s) from {}", a.quorum, a.group),
        ));
        out.push_str(&row("Expires", &countersign_store::format_ts(a.expires_at)));
    }
    out.push_str(&row(
        "Status",
        &run.governance_status.as_str().replace('_', " "),
    ));
    out.push_str("</dl>");
    out
}

/// Characters of the payload shown on the page; the dashboard shows all.
const PAGE_PAYLOAD_CHARS: usize = 8_000;

/// The stored payload, indented for reading and cut at
/// [`PAGE_PAYLOAD_CHARS`]. The stored text is re-indented, not re-parsed,
/// so numbers appear exactly as the policy saw them (a JSON library would
/// round `1000.0000000000000001` to a double).
fn payload_for_page(payload_json: &str) -> String {
    let pretty = indent_json(payload_json);
    match pretty.char_indices().nth(PAGE_PAYLOAD_CHARS) {
        Some((cut, _)) => format!(
            "{}\n… (cut here; the dashboard's run page shows all of it)",
            &pretty[..cut]
        ),
        None => pretty,
    }
}

/// Indents compact JSON text two spaces per level, leaving every token,
/// strings and numbers included, as written.
fn indent_json(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on one line.
                if matches!(chars.peek(), Some('}' | ']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// The approver's name from the policies in force, else their id.
fn approver_name(state: &AppState, run: &Run, approver_id: &str) -> String {
    state
        .workspaces
        .get(&run.proposal.workspace)
        .and_then(|w| {
            let group = run.proposal.approval.as_ref().map(|a| a.group.as_str());
            crate::approvals::member_name(&w.policies(), group, approver_id)
        })
        .unwrap_or_else(|| approver_id.to_owned())
}

/// What the run's own actor sees instead of the answer form.
fn own_request_note(run: &Run) -> String {
    let who = if run.governance_status == GovernanceStatus::PendingApproval {
        let group = run
            .proposal
            .approval
            .as_ref()
            .map_or("the approvers", |a| a.group.as_str());
        format!(" Another member of {} decides.", escape(group))
    } else {
        String::new()
    };
    format!("<p><strong>You proposed this action, so you cannot answer it.</strong>{who}</p>")
}

fn parse_decision(s: &str) -> Option<AnswerDecision> {
    match s {
        "approve" => Some(AnswerDecision::Approve),
        "reject" => Some(AnswerDecision::Reject),
        _ => None,
    }
}

fn link_channel(c: Option<&String>) -> &'static str {
    match c.map(String::as_str) {
        Some("teams") => names::TEAMS,
        Some("console") => names::CONSOLE,
        _ => names::EMAIL,
    }
}

/// Looks a link token up without using it; the error is a finished page.
async fn token_and_run(
    state: &AppState,
    token: &str,
) -> Result<(countersign_store::ApprovalToken, Run), Response> {
    let invalid = || {
        page(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "<p>Check that you opened the whole link from the message.</p>",
        )
    };
    if !approval_token_well_formed(token) {
        return Err(invalid());
    }
    let found = state
        .store
        .find_token(&approval_token_key(token))
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let Some(t) = found else {
        return Err(invalid());
    };
    if t.approver_id.starts_with('@') {
        // Shared-destination tokens answer through the JSON API only.
        return Err(invalid());
    }
    let run = state
        .store
        .get_run(&t.workspace, &t.run_id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .ok_or_else(invalid)?;
    if t.used_at.is_some() {
        return Err(page(
            StatusCode::GONE,
            "This link was already used",
            &format!("<p>Each link works once.</p>{}", details(&run)),
        ));
    }
    if state.clock.now() >= t.expires_at {
        return Err(page(
            StatusCode::GONE,
            "This link has expired",
            &format!(
                "<p>The request was not decided in time.</p>{}",
                details(&run)
            ),
        ));
    }
    Ok((t, run))
}

/// `GET /a/{token}?d=approve|reject&c=email|teams|console`: the
/// confirmation page. Changes nothing.
pub async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let (t, run) = match token_and_run(&state, &token).await {
        Ok(x) => x,
        Err(page) => return page,
    };
    let own = countersign_store::is_actor(&run, &t.approver_id);
    let channel = link_channel(q.get("c"));
    if run.governance_status != GovernanceStatus::PendingApproval {
        // An answer would still be recorded, but show the state first.
        let form = if own {
            own_request_note(&run)
        } else {
            answer_form(channel, AnswerDecision::Approve)
        };
        let body = format!(
            "<p>This request is already {}. You may still record your answer; it will not change the outcome.</p>{}{form}",
            escape(&run.governance_status.as_str().replace('_', " ")),
            details(&run)
        );
        return page(StatusCode::OK, "This request was already decided", &body);
    }
    let intent = q
        .get("d")
        .and_then(|d| parse_decision(d))
        .unwrap_or(AnswerDecision::Approve);
    // The actor may not answer at all (the store refuses it): no buttons.
    let form = if own {
        own_request_note(&run)
    } else {
        answer_form(channel, intent)
    };
    let body = format!(
        "<p>Hello {who}, an agent wants to run <strong>{action}</strong> and needs your answer.</p>{details}{form}",
        who = escape(&approver_name(&state, &run, &t.approver_id)),
        action = escape(&run.proposal.action),
        details = details(&run),
    );
    page(StatusCode::OK, "Approval requested", &body)
}

/// The answer form: a comment and the two buttons, the intended one first.
fn answer_form(channel: &str, intent: AnswerDecision) -> String {
    let approve = "<button class=\"approve\" name=\"decision\" value=\"approve\">Approve</button>";
    let reject = "<button class=\"reject\" name=\"decision\" value=\"reject\">Reject</button>";
    let (first, second) = if intent == AnswerDecision::Approve {
        (approve, reject)
    } else {
        (reject, approve)
    };
    format!(
        "<form method=\"post\" action=\"\"><input type=\"hidden\" name=\"c\" value=\"{channel}\">\
<p><label for=\"comment\">Comment (optional)</label><br><textarea id=\"comment\" name=\"comment\" maxlength=\"{MAX_COMMENT}\"></textarea></p>\
<p>{first}{second}</p></form><p class=\"note\">Nothing happens until you press a button. This link works once.</p>",
    )
}

/// The peer address of the connection, when the server records it.
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| super::summarize_text(s, 300))
}

/// `POST /a/{token}` (form: decision, comment, c): applies the answer.
pub async fn confirm_submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ClientAddr(client_addr): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body(body, 16 * 1024).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&bytes).into_owned().collect();
    let Some(decision) = form.get("decision").and_then(|d| parse_decision(d)) else {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose Approve or Reject",
            "<p>The form did not say which.</p>",
        );
    };
    let comment = form
        .get("comment")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(|c| super::summarize_text(c, MAX_COMMENT));
    let channel = link_channel(form.get("c"));
    let (t, run) = match token_and_run(&state, &token).await {
        Ok(x) => x,
        Err(page) => return page,
    };
    if let Err(e) = record::may_answer(&run, &t.approver_id) {
        let (title, text) = match e.code() {
            "self_approval" => (
                "You cannot approve your own request",
                "You proposed this action; another approver has to answer.",
            ),
            _ => (
                "You may not answer this request",
                "You are not one of its approvers.",
            ),
        };
        return page(
            StatusCode::FORBIDDEN,
            title,
            &format!("<p>{text}</p>{}", details(&run)),
        );
    }
    let answer = Answer {
        workspace: &t.workspace,
        run_id: &t.run_id,
        approver_id: &t.approver_id,
        decision,
        channel,
        comment,
        client_addr,
        user_agent: user_agent(&headers),
    };
    match record::answer_with_token(&state, &approval_token_key(&token), answer).await {
        Ok(Ok((outcome, run))) => {
            let text = record::describe(outcome, &run, &t.approver_id, decision);
            let title = match outcome {
                Outcome::Recorded => "Thank you, your answer is recorded",
                Outcome::Duplicate => "You had already answered",
                Outcome::AlreadyDecided => "This request was already decided",
            };
            page(
                StatusCode::OK,
                title,
                &format!("<p>{}</p>{}", escape(&text), details(&run)),
            )
        }
        Ok(Err(TokenOutcome::AlreadyUsed(_) | TokenOutcome::Consumed(_))) => page(
            StatusCode::GONE,
            "This link was already used",
            "<p>Each link works once.</p>",
        ),
        Ok(Err(TokenOutcome::Expired(_))) => page(
            StatusCode::GONE,
            "This link has expired",
            "<p>The request expired.</p>",
        ),
        Ok(Err(TokenOutcome::Unknown)) => page(StatusCode::NOT_FOUND, "This link is not valid", ""),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/approvals/{token}` `{decision, approver?, comment?}`: the
/// answer URL of webhook deliveries (and of any link token, for tools).
pub async fn answer_api(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ClientAddr(client_addr): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let mut m = control_body(body, 16 * 1024, &["decision", "approver", "comment"]).await?;
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
        Some(Value::String(a)) if !a.is_empty() && a.len() <= 256 => Some(a),
        Some(_) => {
            return Err(ApiError::validation(
                "approver",
                "`approver` must be a non-empty string",
            ));
        }
    };
    let comment = match m.remove("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.len() <= MAX_COMMENT => Some(c),
        Some(_) => {
            return Err(ApiError::validation(
                "comment",
                format!("`comment` must be a string of at most {MAX_COMMENT} bytes"),
            ));
        }
    };
    let not_found = || ApiError::NotFound("unknown approval token".to_owned());
    if !approval_token_well_formed(&token) {
        return Err(not_found());
    }
    let hash = approval_token_key(&token);
    let t = state.store.find_token(&hash).await?.ok_or_else(not_found)?;
    let shared = t.approver_id.starts_with('@');
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
    // Refusals that would waste the single-use token are checked first.
    record::may_answer(&run, &approver_id)?;
    let channel = if shared { names::WEBHOOK } else { "api" };
    let answer = Answer {
        workspace: &t.workspace,
        run_id: &t.run_id,
        approver_id: &approver_id,
        decision,
        channel,
        comment,
        client_addr,
        user_agent: user_agent(&headers),
    };
    let (outcome, run) = match record::answer_with_token(&state, &hash, answer).await? {
        Ok(answered) => answered,
        Err(TokenOutcome::AlreadyUsed(_) | TokenOutcome::Consumed(_)) => {
            return Err(ApiError::Conflict {
                code: "token_used",
                message: "this answer URL was already used".to_owned(),
            });
        }
        Err(TokenOutcome::Expired(_)) => {
            return Err(ApiError::Conflict {
                code: "token_expired",
                message: "this answer URL has expired".to_owned(),
            });
        }
        Err(TokenOutcome::Unknown) => return Err(not_found()),
    };
    Ok(Json(json!({
        "outcome": outcome,
        "message": record::describe(outcome, &run, &approver_id, decision),
        "run": run_view(&run),
    })))
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
    let bytes = match read_body(body, 64 * 1024).await {
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
        Some(d) if !d.approver_id.starts_with('@') && d.approver_id != approver_id => {
            return ephemeral(
                "This message was sent to another approver; answer from your own.".to_owned(),
            );
        }
        Some(_) => {}
    }
    if let Err(e) = record::may_answer(&run, &approver_id) {
        return ephemeral(if e.code() == "self_approval" {
            "You proposed this action, so you cannot approve it; another approver has to answer."
                .to_owned()
        } else {
            "You may not answer this request.".to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_indented_with_its_numbers_as_written() {
        let stored = r#"{"a":1000.0000000000000001,"b":[],"c":{},"d":"x,{\"y\":[1]}","e":[12345678901234567890123,{"f":null}]}"#;
        assert_eq!(
            payload_for_page(stored),
            "{\n  \"a\": 1000.0000000000000001,\n  \"b\": [],\n  \"c\": {},\n  \
             \"d\": \"x,{\\\"y\\\":[1]}\",\n  \"e\": [\n    12345678901234567890123,\n    \
             {\n      \"f\": null\n    }\n  ]\n}"
        );
    }

    #[test]
    fn a_long_payload_is_cut_on_a_character() {
        let stored = format!("{{\"k\":\"{}\"}}", "é".repeat(PAGE_PAYLOAD_CHARS * 2));
        let shown = payload_for_page(&stored);
        let body = shown
            .strip_suffix("\n… (cut here; the dashboard's run page shows all of it)")
            .expect("the cut is said");
        assert_eq!(body.chars().count(), PAGE_PAYLOAD_CHARS);
    }
}
