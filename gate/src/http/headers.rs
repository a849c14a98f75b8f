//! The security headers every HTML page of the gate carries.

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Adds the headers every HTML page of the gate carries: this content
/// security policy and referrer policy, no caching, no sniffing, no framing.
pub fn harden(mut r: Response, csp: &'static str, referrer: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static(referrer));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}
