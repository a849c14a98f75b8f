//! Signed webhooks, per the Standard Webhooks specification.
//!
//! Each delivery is one POST of a JSON event:
//!
//! ```json
//! { "type": "approval.requested", "timestamp": "2026-05-01T12:00:00.000Z",
//!   "data": { "run_id": "…", "workspace": "…", "action": "…", "…": "…",
//!             "answer_url": "https://gate.example/answers/…",
//!             "approvers": [ { "id": "bob", "eligible_from": null } ] } }
//! ```
//!
//! with the headers `webhook-id` (the delivery id, stable across retries so
//! the receiver can deduplicate), `webhook-timestamp` (unix seconds) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256>` over
//! `"{id}.{timestamp}.{body}"`, keyed with the base64-decoded `whsec_`
//! secret). The receiver answers by POSTing `{decision, approver, comment}`
//! to `answer_url`, once for each approver listed in `approvers` (an
//! escalation member only from their `eligible_from`).
//!
//! Redirects are never followed; 5xx, 408, 429, timeouts and connection
//! errors are retryable, other answers permanent.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use sha2::Sha256;

use crate::{ApprovalMessage, Delivered, Transport, TransportError, http};

/// The event type of every delivery this transport sends.
pub const EVENT_TYPE: &str = "approval.requested";

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Secrets shorter than this many bytes are accepted but logged as weak
/// (Standard Webhooks recommends 24 to 64 bytes).
const RECOMMENDED_SECRET_BYTES: usize = 24;

/// Where and how to send webhooks.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// A name for logs and configuration (e.g. `"ops-ticketing"`).
    pub name: String,
    /// The receiver's URL, `https://` (or `http://` for a local receiver).
    pub url: String,
    /// The signing secret, in Standard Webhooks format: `whsec_` followed by
    /// the base64 of the key bytes.
    pub secret: String,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("name", &self.name)
            .field("url", &"<redacted>")
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Sends approval requests as signed Standard Webhooks events.
pub struct WebhookTransport {
    name: String,
    url: Url,
    key: Vec<u8>,
    client: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for WebhookTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTransport")
            .field("name", &self.name)
            .field("url", &http::redacted(&self.url))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookTransport {
    /// Checks the target (URL and secret) and builds the transport, with a
    /// 10-second timeout per delivery.
    pub fn new(target: WebhookTarget) -> Result<Self, TransportError> {
        let what = format!("webhook {:?}", target.name);
        let url = http::endpoint(&target.url, &what)?;
        let key = decode_secret(&target.secret)
            .map_err(|e| TransportError::permanent(format!("{what}: {}", e.message())))?;
        if key.len() < RECOMMENDED_SECRET_BYTES {
            tracing::warn!(
                webhook = %target.name,
                bytes = key.len(),
                "webhook secret is shorter than the recommended 24 bytes"
            );
        }
        Ok(Self {
            name: target.name,
            url,
            key,
            client: http::client()?,
            timeout: http::DEFAULT_TIMEOUT,
        })
    }

    /// Sets the total time allowed for one delivery (connect, send, answer).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exact JSON body sent for `msg` at time `now`.
    pub fn body(msg: &ApprovalMessage, now: DateTime<Utc>) -> Result<Vec<u8>, TransportError> {
        let event = Event {
            kind: EVENT_TYPE,
            timestamp: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            data: EventData {
                delivery_id: &msg.delivery_id,
                run_id: &msg.run_id,
                workspace: &msg.workspace,
                action: &msg.action,
                actor: msg.actor.as_deref(),
                risk: msg.risk.as_deref(),
                reasoning: msg.reasoning.as_deref(),
                payload_summary: &msg.payload_summary,
                rule: msg.rule.as_deref(),
                reason: &msg.reason,
                group: &msg.group,
                quorum: msg.quorum,
                expires_at: msg.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                approver: &msg.recipient.approver_id,
                answer_url: msg.answer_url.as_deref(),
                approve_url: msg.approve_url.as_deref(),
                reject_url: msg.reject_url.as_deref(),
                approvers: msg
                    .approvers
                    .iter()
                    .map(|a| EventApprover {
                        id: &a.id,
                        eligible_from: a
                            .eligible_from
                            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    })
                    .collect(),
            },
        };
        serde_json::to_vec(&event)
            .map_err(|e| TransportError::permanent(format!("cannot encode webhook body: {e}")))
    }

    async fn deliver_at(
        &self,
        msg: &ApprovalMessage,
        now: DateTime<Utc>,
    ) -> Result<Delivered, TransportError> {
        let body = Self::body(msg, now)?;
        let timestamp = now.timestamp();
        let signature = sign_with_key(&self.key, &msg.delivery_id, timestamp, &body)?;
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", header_value(&msg.delivery_id, "webhook-id")?);
        headers.insert(
            "webhook-timestamp",
            header_value(&timestamp.to_string(), "webhook-timestamp")?,
        );
        headers.insert(
            "webhook-signature",
            header_value(&signature, "webhook-signature")?,
        );
        let what = format!("webhook {:?}", self.name);
        let status =
            http::post_json(&self.client, &self.url, headers, body, self.timeout, &what).await?;
        tracing::info!(
            webhook = %self.name,
            delivery_id = %msg.delivery_id,
            status = status.as_u16(),
            "approval request delivered by webhook"
        );
        Ok(Delivered { external_id: None })
    }

    /// Sends one other signed event (not an approval request), such as the
    /// gate's `audit.checkpoint`: `{type, timestamp, data}`, signed and
    /// headed exactly as approval requests are, with `id` as `webhook-id`.
    /// Sent once: the caller decides whether a failure matters.
    pub async fn send_event(
        &self,
        id: &str,
        kind: &str,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), TransportError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "type": kind,
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        }))
        .map_err(|e| TransportError::permanent(format!("cannot encode webhook body: {e}")))?;
        let timestamp = now.timestamp();
        let signature = sign_with_key(&self.key, id, timestamp, &body)?;
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", header_value(id, "webhook-id")?);
        headers.insert(
            "webhook-timestamp",
            header_value(&timestamp.to_string(), "webhook-timestamp")?,
        );
        headers.insert(
            "webhook-signature",
            header_value(&signature, "webhook-signature")?,
        );
        let what = format!("webhook {:?}", self.name);
        http::post_json(&self.client, &self.url, headers, body, self.timeout, &what).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Transport for WebhookTransport {
    fn channel(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, msg: &ApprovalMessage) -> Result<Delivered, TransportError> {
        self.deliver_at(msg, Utc::now()).await
    }
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: EventData<'a>,
}

#[derive(Serialize)]
struct EventData<'a> {
    delivery_id: &'a str,
    run_id: &'a str,
    workspace: &'a str,
    action: &'a str,
    actor: Option<&'a str>,
    risk: Option<&'a str>,
    reasoning: Option<&'a str>,
    payload_summary: &'a str,
    rule: Option<&'a str>,
    reason: &'a str,
    group: &'a str,
    quorum: u32,
    expires_at: String,
    approver: &'a str,
    answer_url: Option<&'a str>,
    approve_url: Option<&'a str>,
    reject_url: Option<&'a str>,
    approvers: Vec<EventApprover<'a>>,
}

#[derive(Serialize)]
struct EventApprover<'a> {
    id: &'a str,
    eligible_from: Option<String>,
}

fn header_value(value: &str, name: &str) -> Result<HeaderValue, TransportError> {
    HeaderValue::from_str(value).map_err(|_| {
        TransportError::permanent(format!(
            "{name} header value is not valid in an HTTP header"
        ))
    })
}

/// Base64 that accepts the key with or without padding, as other Standard
/// Webhooks implementations do.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a Standard Webhooks secret (`whsec_<base64>`; the prefix may be
/// left out) into the HMAC key bytes. Fails, not retryable, on invalid
/// base64 or an empty key.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, TransportError> {
    let encoded = secret.trim();
    let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
    let key = LENIENT_BASE64.decode(encoded).map_err(|_| {
        TransportError::permanent("webhook secret must be whsec_ followed by base64")
    })?;
    if key.is_empty() {
        return Err(TransportError::permanent("webhook secret is empty"));
    }
    Ok(key)
}

/// The `webhook-signature` header value for a message: `v1,` and the base64
/// HMAC-SHA256 of `"{msg_id}.{timestamp}.{body}"`, keyed with the decoded
/// `secret`. Fails, not retryable, when the secret is not valid.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, TransportError> {
    let key = decode_secret(secret)?;
    sign_with_key(&key, msg_id, timestamp, body)
}

fn sign_with_key(
    key: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, TransportError> {
    // HMAC accepts keys of any length, so this error is not expected.
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|e| TransportError::permanent(format!("webhook secret unusable: {e}")))?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_decode_with_or_without_prefix_and_padding() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(
            decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            key
        );
        assert_eq!(decode_secret("whsec_YWJj").unwrap(), b"abc");
        assert_eq!(decode_secret("whsec_YWI").unwrap(), b"ab");
        assert_eq!(decode_secret("whsec_YWI=").unwrap(), b"ab");
        assert!(decode_secret("whsec_").is_err());
        assert!(decode_secret("whsec_!!!").is_err());
        assert!(!decode_secret("whsec_!!!").unwrap_err().retryable());
    }

    #[test]
    fn signature_has_version_prefix_and_is_deterministic() {
        let a = sign("whsec_YWJj", "msg_1", 1_700_000_000, b"{}").unwrap();
        let b = sign("whsec_YWJj", "msg_1", 1_700_000_000, b"{}").unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("v1,"));
        assert_ne!(
            a,
            sign("whsec_YWJj", "msg_2", 1_700_000_000, b"{}").unwrap()
        );
        assert_ne!(
            a,
            sign("whsec_YWJj", "msg_1", 1_700_000_001, b"{}").unwrap()
        );
        assert_ne!(
            a,
            sign("whsec_YWJk", "msg_1", 1_700_000_000, b"{}").unwrap()
        );
    }

    #[test]
    fn debug_hides_url_and_secret() {
        let target = WebhookTarget {
            name: "t".into(),
            url: "https://example.com/hook?token=abc".into(),
            secret: "whsec_YWJj".into(),
        };
        let shown = format!("{target:?}");
        assert!(!shown.contains("YWJj"));
        assert!(!shown.contains("token=abc"));
    }
}
