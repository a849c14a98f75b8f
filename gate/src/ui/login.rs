//! Signing in and out: approvers by a one-time emailed link, admins with an
//! admin API key.

use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_store::{GrantKind, GrantOutcome, NewGrant, Role};

use super::frame::safe_next;
use super::render::{UiError, page, see_other};
use super::session::{
    self, PRE_COOKIE, SESSION_COOKIE, Viewer, add_cookie, check_origin, cookie, csrf_matches,
    lists_email, new_token, pre_csrf, set_cookie,
};
use super::view::{Chrome, enc};
use crate::approvals::tokens::{token_hash, well_formed};
use crate::auth::MAX_KEY_LEN;
use crate::http::{ClientAddr, MAX_FORM_BYTES};
use crate::keys::hash_key;
use crate::state::AppState;

/// How long an emailed sign-in link works.
pub const LINK_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// The longest email address accepted (under RFC 5321's 254, leaving room
/// for the session subject's prefix within the store's id limit).
const MAX_EMAIL: usize = 240;

/// Reads a url-encoded form with a size limit.
pub async fn form(body: Body) -> Result<HashMap<String, String>, UiError> {
    let bytes = crate::http::read_body(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            UiError::bad_form(format!("The form is larger than {MAX_FORM_BYTES} bytes."))
        })?;
    Ok(url::form_urlencoded::parse(&bytes).into_owned().collect())
}

/// The pre-session anchor of this request, or a new one to set.
fn pre_session(headers: &HeaderMap) -> Result<(String, bool), UiError> {
    match cookie(headers, PRE_COOKIE) {
        Some(pre) => Ok((pre, false)),
        None => Ok((new_token()?, true)),
    }
}

fn with_pre(state: &AppState, mut r: Response, pre: &str, fresh: bool) -> Response {
    if fresh {
        add_cookie(&mut r, set_cookie(state, PRE_COOKIE, pre, 3600));
    }
    r
}

/// Checks a sign-in form: same origin and the pre-session CSRF token.
fn check_pre_form(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), UiError> {
    check_origin(headers, &state.config.public_url)?;
    let pre = cookie(headers, PRE_COOKIE).ok_or_else(UiError::forged)?;
    if csrf_matches(&pre_csrf(state, &pre), form.get("csrf").map(String::as_str)) {
        Ok(())
    } else {
        Err(UiError::forged())
    }
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    email_enabled: bool,
    error: Option<String>,
    max_key: usize,
    next: Option<String>,
}

/// The page to return to after signing in, from a query or a form: only a
/// dashboard path ([`safe_next`]), never another site.
fn next_of(q: &HashMap<String, String>) -> Option<String> {
    q.get("next").filter(|n| safe_next(n)).cloned()
}

fn login_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
    next: Option<String>,
) -> Result<Response, UiError> {
    let (pre, fresh) = pre_session(headers)?;
    let r = page(
        status,
        &LoginPage {
            chrome: Chrome::bare("Sign in"),
            csrf: pre_csrf(state, &pre),
            email_enabled: state.channels.email_sender.is_some(),
            error,
            max_key: MAX_KEY_LEN,
            next,
        },
    );
    Ok(with_pre(state, r, &pre, fresh))
}

/// `GET /ui/login?next=/ui/…`
pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    login_response(&state, &headers, StatusCode::OK, None, next_of(&q))
        .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Template)]
#[template(path = "ui/link_sent.html")]
struct LinkSent {
    chrome: Chrome,
    minutes: i64,
}

/// `POST /ui/login/email` (email, csrf): emails a one-time sign-in link to
/// an address the policies list. The answer is the same whether or not the
/// address is known, and the mail is sent in the background, so the page
/// reveals nothing about who the approvers are.
pub async fn send_link(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client.unwrap_or_else(|| "unknown".to_owned());
    match send_link_inner(&state, &client, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn send_link_inner(
    state: &AppState,
    client: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, UiError> {
    let form = form(body).await?;
    check_pre_form(state, headers, &form)?;
    let next = next_of(&form);
    let Some(sender) = state.channels.email_sender.clone() else {
        return login_response(
            state,
            headers,
            StatusCode::CONFLICT,
            Some("Email sign-in is not configured on this gate. Sign in with an admin key.".into()),
            next,
        );
    };
    let email = form
        .get("email")
        .map(|e| e.trim().to_lowercase())
        .unwrap_or_default();
    if email.is_empty()
        || email.len() > MAX_EMAIL
        || !email.contains('@')
        || email.chars().any(char::is_whitespace)
    {
        return login_response(
            state,
            headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter the email address your approver entry uses.".into()),
            next,
        );
    }
    if !state.sign_in_limiter.allow_request(client) {
        return login_response(
            state,
            headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many sign-in requests from your network. Try again in 15 minutes.".into()),
            next,
        );
    }
    // Everything that depends on the address happens after the answer, so
    // neither the page nor its timing says whether the address is known.
    let state = state.clone();
    let client = client.to_owned();
    tokio::spawn(async move {
        if let Err(e) = email_link(&state, sender, &email, &client, next.as_deref()).await {
            tracing::warn!(error = %e.message, "dashboard sign-in link not sent");
        }
    });
    Ok(page(
        StatusCode::OK,
        &LinkSent {
            chrome: Chrome::bare("Check your inbox"),
            minutes: LINK_TTL.num_minutes(),
        },
    ))
}

/// Creates and emails a sign-in link if `email` is an approver's address
/// and the limits allow it.
async fn email_link(
    state: &AppState,
    sender: std::sync::Arc<countersign_transports::email::EmailTransport>,
    email: &str,
    client: &str,
    next: Option<&str>,
) -> Result<(), UiError> {
    if !state.workspaces.values().any(|w| lists_email(w, email)) {
        return Ok(());
    }
    if !state.sign_in_limiter.allow_email(email, client) {
        tracing::warn!("dashboard sign-in email refused by the rate limit");
        return Ok(());
    }
    let token = new_token()?;
    let now = state.clock.now();
    state
        .store
        .create_grant(
            NewGrant {
                grant_id: format!("sig_{}", uuid::Uuid::now_v7().simple()),
                kind: GrantKind::SignIn,
                token_hash: token_hash(&token),
                workspace: None,
                subject: email.to_owned(),
                label: None,
                expires_at: now + LINK_TTL,
            },
            now,
        )
        .await?;
    let link = format!(
        "{}/ui/login/{token}{}",
        state.config.public_url.trim_end_matches('/'),
        next.map(|n| format!("?next={}", enc(n)))
            .unwrap_or_default()
    );
    let text = format!(
        "Someone (hopefully you) asked to sign in to the Countersign dashboard as {email}.\n\n\
         Open this link to sign in. It works once, within {} minutes:\n\n{link}\n\n\
         If you did not ask for it, ignore this message: nothing happens until the link is opened \
         and confirmed.\n",
        LINK_TTL.num_minutes()
    );
    sender
        .send_notice(email, "Sign in to Countersign", text)
        .await
        .map_err(|e| {
            UiError::new(
                StatusCode::BAD_GATEWAY,
                "Email failed",
                e.message().to_owned(),
            )
        })
}

/// `POST /ui/login/key` (key, csrf): signs an admin in with an admin key.
pub async fn key_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match key_sign_in_inner(&state, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn key_sign_in_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, UiError> {
    let form = form(body).await?;
    check_pre_form(state, headers, &form)?;
    let key = form.get("key").map(|k| k.trim()).unwrap_or_default();
    let next = next_of(&form);
    let refuse = |message: &str| {
        login_response(
            state,
            headers,
            StatusCode::UNAUTHORIZED,
            Some(message.to_owned()),
            next.clone(),
        )
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return refuse("Enter an admin API key.");
    }
    let Some(record) = state.store.find_key(&hash_key(key)).await? else {
        return refuse("That key is not valid.");
    };
    if record.revoked_at.is_some() {
        return refuse("That key was revoked.");
    }
    if record.role != Role::Admin {
        return refuse("That is an agent key; the dashboard needs an admin key.");
    }
    if !state.workspaces.contains_key(&record.workspace) {
        return refuse("That key's workspace is not configured on this gate.");
    }
    let cookie = session::start(
        state,
        &Viewer::Admin {
            workspace: record.workspace.clone(),
            key_id: record.key_id.clone(),
        },
    )
    .await?;
    let home = format!("/ui/w/{}", record.workspace);
    let mut r = see_other(next.as_deref().unwrap_or(&home));
    add_cookie(&mut r, cookie);
    Ok(r)
}

#[derive(Template)]
#[template(path = "ui/link_confirm.html")]
struct LinkConfirm {
    chrome: Chrome,
    csrf: String,
    email: String,
    next: Option<String>,
}

fn link_gone() -> UiError {
    UiError::new(
        StatusCode::GONE,
        "This sign-in link no longer works",
        "Each link works once and only for a few minutes. Ask for a new one on the sign-in page.",
    )
    .with_sign_in()
}

/// `GET /ui/login/{token}`: asks to confirm. Changes nothing, so mail
/// scanners that follow links do not use them up.
pub async fn link_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        if !well_formed(&token) {
            return Err(UiError::not_found("This sign-in link"));
        }
        let grant = state
            .store
            .find_grant(&token_hash(&token))
            .await?
            .filter(|g| g.kind == GrantKind::SignIn)
            .ok_or_else(|| UiError::not_found("This sign-in link"))?;
        if grant.used_at.is_some() || !grant.is_live(state.clock.now()) {
            return Err(link_gone());
        }
        let (pre, fresh) = pre_session(&headers)?;
        let r = page(
            StatusCode::OK,
            &LinkConfirm {
                chrome: Chrome::bare("Sign in"),
                csrf: pre_csrf(&state, &pre),
                email: grant.subject,
                next: next_of(&q),
            },
        );
        Ok(with_pre(&state, r, &pre, fresh))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /ui/login/{token}` (csrf): uses the link and starts the session.
pub async fn link_sign_in(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let form = form(body).await?;
        check_pre_form(&state, &headers, &form)?;
        if !well_formed(&token) {
            return Err(UiError::not_found("This sign-in link"));
        }
        let email = match state
            .store
            .consume_grant(&token_hash(&token), GrantKind::SignIn, state.clock.now())
            .await?
        {
            GrantOutcome::Consumed(g) if g.kind == GrantKind::SignIn => g.subject,
            GrantOutcome::Unknown | GrantOutcome::Consumed(_) => {
                return Err(UiError::not_found("This sign-in link"));
            }
            GrantOutcome::AlreadyUsed(_) | GrantOutcome::Expired(_) | GrantOutcome::Revoked(_) => {
                return Err(link_gone());
            }
        };
        let cookie = session::start(&state, &Viewer::Approver { email }).await?;
        let mut r = see_other(next_of(&form).as_deref().unwrap_or("/ui/inbox"));
        add_cookie(&mut r, cookie);
        Ok(r)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /ui/logout` (csrf): ends the session.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let form = form(body).await?;
        if let Some(s) = session::current(&state, &headers).await? {
            s.check_form(&state, &headers, form.get("csrf").map(String::as_str))?;
            state
                .store
                .revoke_grant(&s.grant_id, state.clock.now())
                .await?;
        }
        let mut r = see_other("/ui/login");
        add_cookie(&mut r, set_cookie(&state, SESSION_COOKIE, "", 0));
        Ok::<_, UiError>(r)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
