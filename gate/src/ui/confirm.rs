//! The confirmation pages of emailed, Teams and console links.
//!
//! `GET /a/{token}` shows what is asked and changes nothing (mail scanners
//! and link previews follow links); its form POSTs to `/a/{token}`, which
//! applies the answer under the same rules as every other channel. The
//! pages stand alone, outside the dashboard: no session, no script, an
//! inline style, and no referrer (the URL holds a token).

use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use countersign_store::{AnswerDecision, GovernanceStatus, Run, TokenOutcome};

use crate::approvals::record::{self, Answer, MAX_COMMENT, Outcome, Refusal, parse_decision};
use crate::approvals::tokens::{approval_token_key, approval_token_well_formed};
use crate::error::ApiError;
use crate::http::{ClientAddr, MAX_FORM_BYTES, harden, read_body, reveal, user_agent};
use crate::state::AppState;

/// Content Security Policy of a confirmation page: its inline style and
/// forms posting back to the gate, nothing else.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

/// HTML-escapes agent-supplied text, and makes invisible formatting
/// characters (bidirectional overrides, zero-width marks) visible so text
/// cannot be disguised. The escaper is the messages' own, so text reads the
/// same in the email and on the page.
fn escape(s: &str) -> String {
    countersign_transports::html_escape(&reveal(s))
}

/// The paragraph under the heading.
enum Lead {
    /// Fixed or escaped text.
    Text(String),
    /// The request, addressed to its approver.
    Greeting {
        /// The approver's name, escaped.
        who: String,
        /// The action, escaped.
        action: String,
    },
    /// The run is no longer pending (its status, escaped).
    AlreadyDecided(String),
    /// No paragraph.
    Nothing,
}

/// The run's facts, escaped: rows before the full payload and after it.
struct Details {
    before: Vec<(&'static str, String)>,
    payload: String,
    after: Vec<(&'static str, String)>,
}

/// What the page offers below the details.
enum AnswerPart {
    /// The run's own actor: a note instead of buttons, naming the group
    /// (escaped) that decides while the run is pending.
    OwnRequest(Option<String>),
    /// The comment and the two buttons, the intended one first.
    Form {
        /// Reject is the intended answer.
        reject_first: bool,
    },
    /// Nothing.
    Nothing,
}

#[derive(Template)]
#[template(path = "confirm/page.html")]
struct ConfirmPage {
    title: &'static str,
    lead: Lead,
    details: Option<Details>,
    answer: AnswerPart,
    max_comment: usize,
}

/// A confirmation page with strict security headers: no scripts, no
/// framing, no referrer (the URL holds a token), no caching.
fn page(
    status: StatusCode,
    title: &'static str,
    lead: Lead,
    details: Option<Details>,
    answer: AnswerPart,
) -> Response {
    let p = ConfirmPage {
        title,
        lead,
        details,
        answer,
        max_comment: MAX_COMMENT,
    };
    let r = match p.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "confirmation page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    };
    harden(r, CSP, "no-referrer")
}

/// A page with a heading and one fixed paragraph.
fn text_page(status: StatusCode, title: &'static str, text: &str) -> Response {
    page(
        status,
        title,
        Lead::Text(text.to_owned()),
        None,
        AnswerPart::Nothing,
    )
}

/// A page with a heading, one paragraph and the run's details.
fn run_page(status: StatusCode, title: &'static str, text: String, run: &Run) -> Response {
    page(
        status,
        title,
        Lead::Text(text),
        Some(details(run)),
        AnswerPart::Nothing,
    )
}

fn details(run: &Run) -> Details {
    let mut before = vec![
        ("Action", escape(&run.proposal.action)),
        (
            "Proposed by",
            escape(run.proposal.actor.as_deref().unwrap_or("unknown")),
        ),
    ];
    if let Some(risk) = &run.proposal.decision.risk {
        before.push(("Risk", escape(risk)));
    }
    if let Some(reasoning) = &run.proposal.reasoning {
        before.push(("Reasoning", escape(reasoning)));
    }
    before.push(("Payload", escape(&run.proposal.payload_summary)));
    let mut after = vec![
        ("Payload SHA-256", escape(&run.proposal.payload_hash)),
        (
            "Rule",
            escape(run.proposal.decision.rule.as_deref().unwrap_or("-")),
        ),
        ("Why", escape(&run.proposal.decision.reason)),
    ];
    if let Some(a) = &run.proposal.approval {
        after.push((
            "Needs",
            escape(&format!("{} approval(s) from {}", a.quorum, a.group)),
        ));
        after.push((
            "Expires",
            escape(&countersign_store::format_ts(a.expires_at)),
        ));
    }
    after.push((
        "Status",
        escape(&run.governance_status.as_str().replace('_', " ")),
    ));
    Details {
        before,
        payload: escape(&payload_for_page(&run.proposal.payload_json)),
        after,
    }
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
fn own_request_note(run: &Run) -> AnswerPart {
    let group = (run.governance_status == GovernanceStatus::PendingApproval).then(|| {
        escape(
            run.proposal
                .approval
                .as_ref()
                .map_or("the approvers", |a| a.group.as_str()),
        )
    });
    AnswerPart::OwnRequest(group)
}

fn answer_form(intent: AnswerDecision) -> AnswerPart {
    AnswerPart::Form {
        reject_first: intent == AnswerDecision::Reject,
    }
}

/// Looks a link token up without using it; the error is a finished page.
async fn token_and_run(
    state: &AppState,
    token: &str,
) -> Result<(countersign_store::ApprovalToken, Run), Response> {
    let invalid = || {
        text_page(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "Check that you opened the whole link from the message.",
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
    if t.recipient().is_shared() {
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
        return Err(run_page(
            StatusCode::GONE,
            "This link was already used",
            "Each link works once.".to_owned(),
            &run,
        ));
    }
    if state.clock.now() >= t.expires_at {
        return Err(run_page(
            StatusCode::GONE,
            "This link has expired",
            "The request was not decided in time.".to_owned(),
            &run,
        ));
    }
    Ok((t, run))
}

/// `GET /a/{token}?d=approve|reject`: the
/// confirmation page. Changes nothing.
pub async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (t, run) = match token_and_run(&state, &token).await {
        Ok(x) => x,
        Err(page) => return page,
    };
    let own = countersign_store::is_actor(&run, &t.approver_id);
    if run.governance_status != GovernanceStatus::PendingApproval {
        // An answer would still be recorded, but show the state first.
        let answer = if own {
            own_request_note(&run)
        } else {
            answer_form(AnswerDecision::Approve)
        };
        return page(
            StatusCode::OK,
            "This request was already decided",
            Lead::AlreadyDecided(escape(&run.governance_status.as_str().replace('_', " "))),
            Some(details(&run)),
            answer,
        );
    }
    let intent = q
        .get("d")
        .and_then(|d| parse_decision(d))
        .unwrap_or(AnswerDecision::Approve);
    // The actor may not answer at all (the store refuses it): no buttons.
    let answer = if own {
        own_request_note(&run)
    } else {
        answer_form(intent)
    };
    page(
        StatusCode::OK,
        "Approval requested",
        Lead::Greeting {
            who: escape(&approver_name(&state, &run, &t.approver_id)),
            action: escape(&run.proposal.action),
        },
        Some(details(&run)),
        answer,
    )
}

/// `POST /a/{token}` (form: decision, comment): applies the answer.
pub async fn confirm_submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ClientAddr(client_addr): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let Some(decision) = form.get("decision").and_then(|d| parse_decision(d)) else {
        return text_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose Approve or Reject",
            "The form did not say which.",
        );
    };
    let comment = record::form_comment(form.get("comment").map(String::as_str));
    let (t, run) = match token_and_run(&state, &token).await {
        Ok(x) => x,
        Err(page) => return page,
    };
    if let Err(e) = record::may_answer(&run, &t.approver_id, state.clock.now()) {
        let (title, text) = match e {
            Refusal::SelfApproval { .. } => (
                "You cannot approve your own request",
                "You proposed this action; another approver has to answer.".to_owned(),
            ),
            Refusal::NotAnApprover { .. } => (
                "You may not answer this request",
                "You are not one of its approvers.".to_owned(),
            ),
            Refusal::NotYetEligible { eligible_from, .. } => (
                "You may not answer this request yet",
                format!(
                    "You are asked only if the request is still open at {}.",
                    record::eligible_text(eligible_from)
                ),
            ),
        };
        return run_page(StatusCode::FORBIDDEN, title, text, &run);
    }
    // The channel recorded is the one the gate sent this link through,
    // whatever the form says.
    let key = approval_token_key(&token);
    let channel = match record::token_channel(&state, &t, &key).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let answer = Answer {
        workspace: &t.workspace,
        run_id: &t.run_id,
        approver_id: &t.approver_id,
        decision,
        channel: &channel,
        comment,
        client_addr,
        user_agent: user_agent(&headers),
    };
    match record::answer_with_token(&state, &key, answer).await {
        Ok(Ok((outcome, run))) => {
            let text = record::describe(outcome, &run, &t.approver_id, decision);
            let title = match outcome {
                Outcome::Recorded => "Thank you, your answer is recorded",
                Outcome::Duplicate => "You had already answered",
                Outcome::AlreadyDecided => "This request was already decided",
            };
            run_page(StatusCode::OK, title, escape(&text), &run)
        }
        Ok(Err(TokenOutcome::AlreadyUsed(_) | TokenOutcome::Consumed(_))) => text_page(
            StatusCode::GONE,
            "This link was already used",
            "Each link works once.",
        ),
        Ok(Err(TokenOutcome::Expired(_))) => text_page(
            StatusCode::GONE,
            "This link has expired",
            "The request expired.",
        ),
        Ok(Err(TokenOutcome::Unknown)) => page(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            Lead::Nothing,
            None,
            AnswerPart::Nothing,
        ),
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
