//! What every dashboard response passes through on its way out: an error
//! page gets the signed-in viewer's navigation (so a 404 or a refused form
//! is not a dead end), and a signed-out visitor who asked for a page is
//! sent to sign in, with the page to come back to in `next`.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::render::{UiError, error_page, see_other};
use super::session;
use super::view::{Tab, enc};
use crate::state::AppState;

/// The longest `next` kept, in bytes; a longer one is dropped.
pub const MAX_NEXT: usize = 1024;

/// Whether `next` is a page of this dashboard to return to after signing
/// in: a path under `/ui/` of this origin only (no scheme, no `//` host, no
/// backslash, no control characters), and not a sign-in or sign-out URL.
pub fn safe_next(next: &str) -> bool {
    next.len() <= MAX_NEXT
        && next.starts_with("/ui/")
        && !next.starts_with("/ui/login")
        && !next.starts_with("/ui/logout")
        && !next.starts_with("/ui/static/")
        && !next.contains("//")
        && !next.contains('\\')
        && !next.contains("/../")
        && !next.contains("/./")
        && next.chars().all(|c| c.is_ascii_graphic())
}

/// The layer: see the module documentation.
pub async fn frame(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    let response = next.run(req).await;
    let Some(err) = response.extensions().get::<UiError>().cloned() else {
        return response;
    };
    // A page asked for without a session: sign in, then come back. The live
    // stream and JSON downloads keep their plain 401.
    if err.status == axum::http::StatusCode::UNAUTHORIZED
        && err.sign_in
        && method == Method::GET
        && !path.ends_with("/live")
        && !path.starts_with("/ui/s/")
    {
        let login = if safe_next(&target) {
            format!("/ui/login?next={}", enc(&target))
        } else {
            "/ui/login".to_owned()
        };
        return see_other(&login);
    }
    let Ok(Some(s)) = session::current(&state, &headers).await else {
        return response;
    };
    let ws = path
        .strip_prefix("/ui/w/")
        .and_then(|rest| rest.split('/').next())
        .filter(|ws| s.workspace(&state, ws).is_ok())
        .map(str::to_owned)
        .or_else(|| s.workspaces(&state).into_iter().next());
    let chrome = s.chrome(&state, &err.title, ws.as_deref(), Tab::None);
    error_page(&err, chrome)
}

/// Any other `/ui/…` address: a 404 page, in the dashboard's frame.
pub async fn no_such_page() -> Response {
    UiError::not_found("This page").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_returned_to() {
        for ok in [
            "/ui/w/acme/runs/run_1",
            "/ui/inbox",
            "/ui/w/acme/runs?governance_status=blocked&actor=a%20b",
        ] {
            assert!(safe_next(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/ui/",
            "//evil.example/ui/",
            "/ui//evil.example",
            "/\\evil.example",
            "/ui/\\evil",
            "/ui/login?next=/ui/inbox",
            "/ui/logout",
            "/ui/w/../../x",
            "/api/v1/runs",
            "/ui/inbox\r\nX: y",
            "/ui/w/a b",
            "javascript:alert(1)",
            "",
        ] {
            assert!(!safe_next(bad), "{bad:?}");
        }
        assert!(!safe_next(&format!("/ui/{}", "a".repeat(MAX_NEXT))));
    }
}
