//! Client share links: an admin gives a client a read-only link to one
//! workspace's run history and receipts. Links expire, can be revoked, and
//! their creation and revocation are recorded in the audit chain. The token
//! is in the URL (the client has no account), shown once, kept only hashed.

use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_store::{Grant, GrantKind, NewGrant};

use super::login::form;
use super::pages::{filter_query, load_run, parse_filter, receipt_download, receipt_page};
use super::render::{UiError, page, see_other};
use super::session::{self, new_token};
use super::view::{Chrome, RunRow, Tab, enc, reveal, when};
use crate::approvals::tokens::{token_hash, well_formed};
use crate::state::AppState;

/// Longest a share link may live.
const MAX_DAYS: i64 = 365;

/// A share link as listed.
pub struct LinkView {
    /// Public id.
    pub grant_id: String,
    /// Label.
    pub label: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// Until.
    pub expires_at: String,
    /// active / expired / revoked.
    pub state: &'static str,
    /// Can still be revoked.
    pub live: bool,
}

/// The longest share-link label, in characters; the form's field has this
/// `maxlength`.
const MAX_LABEL: usize = 100;

#[derive(Template)]
#[template(path = "ui/share_admin.html")]
struct ManagePage {
    chrome: Chrome,
    ws: String,
    links: Vec<LinkView>,
    new_url: Option<String>,
    message: Option<String>,
    max_label: usize,
}

async fn manage_page(
    state: &AppState,
    s: &session::Session,
    ws: &str,
    status: StatusCode,
    new_url: Option<String>,
    message: Option<String>,
) -> Result<Response, UiError> {
    let now = state.clock.now();
    let links = state
        .store
        .list_grants(ws, GrantKind::ShareLink)
        .await?
        .into_iter()
        .map(|g| LinkView {
            live: g.is_live(now),
            state: if g.revoked_at.is_some() {
                "revoked"
            } else if now >= g.expires_at {
                "expired"
            } else {
                "active"
            },
            grant_id: g.grant_id,
            label: g.label.as_deref().map(reveal).unwrap_or_default(),
            created_by: g.subject,
            created_at: when(g.created_at),
            expires_at: when(g.expires_at),
        })
        .collect();
    Ok(page(
        status,
        &ManagePage {
            chrome: s.chrome(state, "Share links", Some(ws), Tab::Share),
            ws: ws.to_owned(),
            links,
            new_url,
            message,
            max_label: MAX_LABEL,
        },
    ))
}

/// `GET /ui/w/{ws}/share` (admin)
pub async fn manage(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let (s, _) = session::require_in(&state, &headers, &ws).await?;
        s.require_admin()?;
        manage_page(&state, &s, &ws, StatusCode::OK, None, None).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /ui/w/{ws}/share` (csrf, label, days; admin): creates a link and
/// shows it once.
pub async fn create(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let form = form(body).await?;
        let s = session::require(&state, &headers).await?;
        s.check_form(&state, &headers, form.get("csrf").map(String::as_str))?;
        s.workspace(&state, &ws)?;
        s.require_admin()?;
        let label = form
            .get("label")
            .map(|l| l.trim().to_owned())
            .unwrap_or_default();
        let days = form.get("days").map(|d| d.trim()).unwrap_or("30");
        let days: i64 = match days.parse() {
            Ok(d) if (1..=MAX_DAYS).contains(&d) => d,
            _ => {
                return manage_page(
                    &state,
                    &s,
                    &ws,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(format!("The link must last between 1 and {MAX_DAYS} days.")),
                )
                .await;
            }
        };
        if label.is_empty() || label.chars().count() > MAX_LABEL || label.len() > 2 * MAX_LABEL {
            return manage_page(
                &state,
                &s,
                &ws,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(format!(
                    "Give the link a label of 1 to {MAX_LABEL} characters (who it is for)."
                )),
            )
            .await;
        }
        let created_by = match &s.viewer {
            session::Viewer::Admin { key_id, .. } => format!("admin:{key_id}"),
            session::Viewer::Approver { email } => email.clone(),
        };
        let token = new_token()?;
        let now = state.clock.now();
        let _: Grant = state
            .store
            .create_grant(
                NewGrant {
                    grant_id: format!("shr_{}", uuid::Uuid::now_v7().simple()),
                    kind: GrantKind::ShareLink,
                    token_hash: token_hash(&token),
                    workspace: Some(ws.clone()),
                    subject: created_by,
                    label: Some(label),
                    expires_at: now + chrono::Duration::days(days),
                },
                now,
            )
            .await?;
        let url = format!(
            "{}/ui/s/{token}",
            state.config.public_url.trim_end_matches('/')
        );
        manage_page(&state, &s, &ws, StatusCode::CREATED, Some(url), None).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /ui/w/{ws}/share/{grant_id}/revoke` (csrf; admin)
pub async fn revoke(
    State(state): State<AppState>,
    Path((ws, grant_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let form = form(body).await?;
        let s = session::require(&state, &headers).await?;
        s.check_form(&state, &headers, form.get("csrf").map(String::as_str))?;
        s.workspace(&state, &ws)?;
        s.require_admin()?;
        // Only a link of this workspace: the id alone proves nothing.
        let owned = state
            .store
            .list_grants(&ws, GrantKind::ShareLink)
            .await?
            .into_iter()
            .any(|g| g.grant_id == grant_id);
        if !owned {
            return Err(UiError::not_found("This share link"));
        }
        state
            .store
            .revoke_grant(&grant_id, state.clock.now())
            .await?;
        Ok(see_other(&format!("/ui/w/{ws}/share")))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The live share link of a token: 404 unknown, 410 expired or revoked.
async fn share_grant(state: &AppState, token: &str) -> Result<Grant, UiError> {
    if !well_formed(token) {
        return Err(UiError::not_found("This link"));
    }
    let grant = state
        .store
        .find_grant(&token_hash(token))
        .await?
        .filter(|g| g.kind == GrantKind::ShareLink)
        .ok_or_else(|| UiError::not_found("This link"))?;
    if !grant.is_live(state.clock.now()) {
        return Err(UiError::new(
            StatusCode::GONE,
            "This link is no longer valid",
            "It was revoked or has expired. Ask the person who shared it for a new one.",
        ));
    }
    if grant
        .workspace
        .as_deref()
        .is_none_or(|w| !state.workspaces.contains_key(w))
    {
        return Err(UiError::not_found("This link"));
    }
    Ok(grant)
}

/// A live share link, its workspace, and one of that workspace's runs.
async fn shared_run(
    state: &AppState,
    token: &str,
    run_id: &str,
) -> Result<(Grant, String, countersign_store::Run), UiError> {
    let grant = share_grant(state, token).await?;
    let ws = grant.workspace.clone().unwrap_or_default();
    let run = load_run(state, &ws, run_id).await?;
    Ok((grant, ws, run))
}

fn shared_chrome(title: &str, ws: &str, label: &str) -> Chrome {
    Chrome {
        title: title.to_owned(),
        who: Some(format!("shared with {label}")),
        workspace: Some(ws.to_owned()),
        shared: true,
        ..Chrome::default()
    }
}

#[derive(Template)]
#[template(path = "ui/share_view.html")]
struct ShareView {
    chrome: Chrome,
    label: String,
    expires_at: String,
    rows: Vec<RunRow>,
    next: Option<String>,
}

/// `GET /ui/s/{token}`: the workspace's run history, read-only.
pub async fn view(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let grant = share_grant(&state, &token).await?;
        let ws = grant.workspace.clone().unwrap_or_default();
        let filter = parse_filter(&q)?;
        let runs = state.store.list_runs(&ws, filter.clone()).await?;
        let now = state.clock.now();
        let base = format!("/ui/s/{token}");
        let rows = runs
            .runs
            .iter()
            .map(|r| {
                let row = RunRow::new(r, format!("{base}/runs/{}/receipt", r.proposal.run_id), now);
                match state.workspaces.get(&ws) {
                    Some(w) => row.titled(&w.policies(), r),
                    None => row,
                }
            })
            .collect();
        let query = filter_query(&filter);
        let next = runs.next_cursor.map(|c| {
            let sep = if query.is_empty() { "" } else { "&" };
            format!("{base}?{query}{sep}cursor={}", enc(&c))
        });
        let label = grant.label.as_deref().map(reveal).unwrap_or_default();
        Ok::<_, UiError>(page(
            StatusCode::OK,
            &ShareView {
                chrome: shared_chrome("Run history", &ws, &label),
                label,
                expires_at: when(grant.expires_at),
                rows,
                next,
            },
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /ui/s/{token}/runs/{run_id}/receipt`
pub async fn receipt(
    State(state): State<AppState>,
    Path((token, run_id)): Path<(String, String)>,
) -> Response {
    let result = async {
        let (grant, ws, run) = shared_run(&state, &token, &run_id).await?;
        let base = format!("/ui/s/{token}");
        let chrome = shared_chrome(
            &format!("Receipt {run_id}"),
            &ws,
            &grant.label.as_deref().map(reveal).unwrap_or_default(),
        );
        Ok::<_, UiError>(page(
            StatusCode::OK,
            &receipt_page(
                &state,
                &run,
                chrome,
                base.clone(),
                format!("{base}/runs/{run_id}/receipt.json"),
            ),
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /ui/s/{token}/runs/{run_id}/receipt.json`
pub async fn receipt_json(
    State(state): State<AppState>,
    Path((token, run_id)): Path<(String, String)>,
) -> Response {
    let result = async {
        let (_, _, run) = shared_run(&state, &token, &run_id).await?;
        Ok::<_, UiError>(receipt_download(&state, &run))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
