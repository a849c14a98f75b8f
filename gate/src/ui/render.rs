//! Turning templates and errors into responses with the dashboard's
//! security headers.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use countersign_store::StoreError;

use super::view::Chrome;
use crate::http::harden;

/// Content Security Policy of every dashboard page: our own stylesheet
/// and script only, no inline code, no framing, forms post only to us.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; \
img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the dashboard's security headers to a response. The referrer
/// policy is `same-origin`, not `no-referrer`: URLs with tokens (sign-in and
/// share links) never leave for another site, and browsers still send a
/// real `Origin` on our own form posts (with `no-referrer` they send `null`).
pub fn secure(r: Response) -> Response {
    harden(r, CSP, "same-origin")
}

/// Renders a template as an HTML response.
pub fn page<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(body) => secure((status, Html(body)).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "dashboard template failed to render");
            secure(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered",
                )
                    .into_response(),
            )
        }
    }
}

/// A redirect after a form (303, so the browser GETs the target).
pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure(r)
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    heading: &'a str,
    message: &'a str,
    sign_in: bool,
}

/// An error shown as a page.
#[derive(Debug, Clone)]
pub struct UiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Heading.
    pub title: String,
    /// Explanation.
    pub message: String,
    /// Offer a link to the sign-in page.
    pub sign_in: bool,
}

impl UiError {
    /// An error with this status, heading and message.
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            sign_in: status == StatusCode::UNAUTHORIZED,
        }
    }

    /// The same error, offering a link to the sign-in page.
    #[must_use]
    pub fn with_sign_in(mut self) -> Self {
        self.sign_in = true;
        self
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("{what} does not exist, or you may not see it."),
        )
    }

    /// 403 for a failed CSRF or origin check.
    pub fn forged() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was not sent from this dashboard, or your session changed since it was \
             shown. Go back, reload the page and try again.",
        )
    }

    /// 400 for a malformed form.
    pub fn bad_form(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "The form is not valid", message)
    }
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "dashboard store error");
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            Self::new(
                status,
                "Something went wrong",
                "The audit store did not answer. Try again in a moment.",
            )
        } else {
            Self::new(status, "That did not work", e.to_string())
        }
    }
}

/// The error page of `err` in the frame `chrome`.
pub fn error_page(err: &UiError, chrome: Chrome) -> Response {
    page(
        err.status,
        &ErrorPage {
            chrome,
            heading: &err.title,
            message: &err.message,
            sign_in: err.sign_in,
        },
    )
}

impl IntoResponse for UiError {
    /// The page without navigation; the error rides along in the
    /// response's extensions so the dashboard's frame layer can add the
    /// viewer's navigation (or send a signed-out visitor to sign in).
    fn into_response(self) -> Response {
        let mut r = error_page(&self, Chrome::bare(&self.title));
        r.extensions_mut().insert(self);
        r
    }
}
