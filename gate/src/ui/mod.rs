//! Every HTML page of the gate: the web dashboard, served under `/ui`, and
//! the approval confirmation pages of emailed links (`/a/{token}`).
//!
//! Server-rendered HTML (askama templates, checked at compile time), one
//! small script for live updates and printing, no build step. Who sees what:
//!
//! - an **admin** signs in with an admin API key and sees one workspace
//!   (the key's) and manages its client share links;
//! - an **approver** signs in with a one-time link emailed to the address
//!   the policies give them, sees the workspaces whose policies list them
//!   and answers the runs waiting on them;
//! - a **client** opens a share link: one workspace's run history and
//!   receipts, read-only, until the link expires or is revoked.
//!
//! Sessions are HttpOnly, SameSite=Strict cookies whose token the store
//! keeps only as a hash; every form carries a CSRF token; no GET changes
//! state.

mod answers;
mod confirm;
mod frame;
mod live;
mod login;
mod pages;
mod render;
mod session;
mod share;
mod view;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;

pub use session::SESSION_COOKIE;

/// The dashboard's routes, to merge into the gate's router. Error pages
/// get the signed-in viewer's navigation, and a signed-out visitor who asks
/// for a page is sent to sign in and back (see `frame`).
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/a/{token}",
            get(confirm::confirm_page).post(confirm::confirm_submit),
        )
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::home))
        .route("/ui/static/style.css", get(style))
        .route("/ui/static/app.js", get(script))
        .route("/ui/login", get(login::login_page))
        .route("/ui/login/email", post(login::send_link))
        .route("/ui/login/key", post(login::key_sign_in))
        .route(
            "/ui/login/{token}",
            get(login::link_page).post(login::link_sign_in),
        )
        .route("/ui/logout", post(login::logout))
        .route("/ui/inbox", get(answers::inbox))
        .route("/ui/inbox/{ws}/{run_id}", post(answers::answer))
        .route("/ui/w/{ws}", get(pages::overview))
        .route("/ui/w/{ws}/runs", get(pages::runs))
        .route("/ui/w/{ws}/live", get(live::live))
        .route("/ui/w/{ws}/runs/{run_id}", get(pages::run_detail))
        .route("/ui/w/{ws}/runs/{run_id}/receipt", get(pages::receipt))
        .route(
            "/ui/w/{ws}/runs/{run_id}/receipt.json",
            get(pages::receipt_json),
        )
        .route("/ui/w/{ws}/policies", get(pages::policies))
        .route("/ui/w/{ws}/share", get(share::manage).post(share::create))
        .route("/ui/w/{ws}/share/{grant_id}/revoke", post(share::revoke))
        .route("/ui/s/{token}", get(share::view))
        .route("/ui/s/{token}/runs/{run_id}/receipt", get(share::receipt))
        .route(
            "/ui/s/{token}/runs/{run_id}/receipt.json",
            get(share::receipt_json),
        )
        .route("/ui/{*rest}", get(frame::no_such_page))
        .layer(axum::middleware::from_fn_with_state(state, frame::frame))
}

async fn style() -> Response {
    asset(
        include_str!("../../static/style.css"),
        "text/css; charset=utf-8",
    )
}

async fn script() -> Response {
    asset(
        include_str!("../../static/app.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
