//! Who is on the other end of a request: the peer address and user agent
//! recorded with an answer or a sign-in.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};

use super::text::summarize_text;

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

/// The longest `User-Agent` kept in the audit record, in characters.
pub const MAX_USER_AGENT: usize = 300;

/// The client's `User-Agent`, shortened for the audit record.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| summarize_text(s, MAX_USER_AGENT))
}
