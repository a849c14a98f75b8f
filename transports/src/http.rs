//! The HTTP client the webhook and Teams transports share: no redirects, a
//! timeout, rustls with ring, and one retry classification.

use std::time::Duration;

use reqwest::{StatusCode, Url, header::HeaderMap};

use crate::TransportError;
use crate::text::{one_line, truncate};

/// Default total time for one HTTP delivery.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for connecting (TCP and TLS) within a delivery.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of an error response's body goes into the error message.
const BODY_EXCERPT_CHARS: usize = 200;

/// A client that never follows redirects: a 3xx is returned as is, and
/// [`post`] turns it into a failure.
pub(crate) fn client() -> Result<reqwest::Client, TransportError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            TransportError::permanent(format!("cannot build HTTP client: {}", e.without_url()))
        })
}

/// Parses a configured endpoint: absolute `http` or `https` with a host, and
/// no user info (credentials belong in a secret, not in a logged URL).
pub(crate) fn endpoint(raw: &str, what: &str) -> Result<Url, TransportError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| TransportError::permanent(format!("{what}: invalid URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(TransportError::permanent(format!(
            "{what}: URL scheme must be https or http, not {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(TransportError::permanent(format!(
            "{what}: URL has no host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TransportError::permanent(format!(
            "{what}: URL must not contain user info"
        )));
    }
    Ok(url)
}

/// The part of a URL that is safe to log: scheme, host and port. Paths and
/// queries of webhook URLs often carry secrets (Teams workflow URLs do).
pub(crate) fn redacted(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// POSTs `body` as JSON and classifies the outcome: 2xx is success; 5xx,
/// 408, 429 and connection errors or timeouts are retryable; 3xx (never
/// followed) and other 4xx are permanent.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &Url,
    headers: HeaderMap,
    body: Vec<u8>,
    timeout: Duration,
    what: &str,
) -> Result<StatusCode, TransportError> {
    let target = redacted(url);
    let response = client
        .post(url.clone())
        .headers(headers)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout)
        .body(body)
        .send()
        .await
        .map_err(|e| send_error(&e, what, &target))?;
    let status = response.status();
    if status.is_success() {
        return Ok(status);
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| truncate(&one_line(v), 200));
    let excerpt = match response.text().await {
        Ok(text) if !text.trim().is_empty() => {
            format!(": {}", truncate(&one_line(text.trim()), BODY_EXCERPT_CHARS))
        }
        _ => String::new(),
    };
    Err(status_error(
        status,
        location.as_deref(),
        &excerpt,
        what,
        &target,
    ))
}

fn status_error(
    status: StatusCode,
    location: Option<&str>,
    excerpt: &str,
    what: &str,
    target: &str,
) -> TransportError {
    if status.is_redirection() {
        let to = location.map_or_else(String::new, |l| format!(" to {l}"));
        return TransportError::permanent(format!(
            "{what} at {target} answered {status} (a redirect{to}); redirects are not followed"
        ));
    }
    let retryable = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    TransportError::new(
        format!("{what} at {target} answered {status}{excerpt}"),
        retryable,
    )
}

fn send_error(e: &reqwest::Error, what: &str, target: &str) -> TransportError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The URL is left out: it may carry a secret.
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = format!(": {s}");
        source = s.source();
    }
    TransportError::new(
        format!("{what} at {target}: {kind}{detail}"),
        !e.is_builder(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_web_urls_without_user_info() {
        assert!(endpoint("https://example.com/hook", "x").is_ok());
        assert!(endpoint("http://127.0.0.1:9/hook", "x").is_ok());
        assert!(endpoint("ftp://example.com/", "x").is_err());
        assert!(endpoint("https://user:pw@example.com/", "x").is_err());
        assert!(endpoint("not a url", "x").is_err());
    }

    #[test]
    fn redaction_keeps_only_scheme_host_and_port() {
        let url = Url::parse("https://prod.example.com:443/workflows/x?sig=secret").unwrap();
        assert_eq!(redacted(&url), "https://prod.example.com");
        let url = Url::parse("http://127.0.0.1:8080/a?sig=secret").unwrap();
        assert_eq!(redacted(&url), "http://127.0.0.1:8080");
    }

    #[test]
    fn status_classification() {
        let retry =
            |s: u16| status_error(StatusCode::from_u16(s).unwrap(), None, "", "w", "t").retryable();
        assert!(retry(500));
        assert!(retry(503));
        assert!(retry(429));
        assert!(retry(408));
        assert!(!retry(400));
        assert!(!retry(401));
        assert!(!retry(404));
        assert!(!retry(302));
    }
}
