//! Talking to Slack's Web API: the configuration, the client, posting a
//! request with `chat.postMessage` and replacing it with its outcome through
//! `chat.update`, and telling failures worth retrying from the others.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::blocks::{approval_blocks, outcome_block, request_blocks};
use super::inbound::{SlackAuthError, verify_signature};
use crate::text::{one_line, title, truncate};
use crate::{ApprovalMessage, Delivered, Transport, TransportError};

/// Slack's Web API base URL.
pub const DEFAULT_API_BASE_URL: &str = "https://slack.com/api/";

/// Default time allowed for one Slack API call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack API error codes worth retrying: Slack's own transient failures.
const RETRYABLE_API_ERRORS: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// How to reach Slack.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// The bot token (`xoxb-…`), with the `chat:write` scope (and `im:write`
    /// for direct messages).
    pub bot_token: String,
    /// Web API base URL; [`DEFAULT_API_BASE_URL`] in production. Must be
    /// `https://`, except for a loopback host (a test server), where
    /// `http://` is accepted.
    pub api_base_url: String,
    /// Channel id to post every request to; when `None`, each request goes
    /// as a direct message to the recipient's Slack user id.
    pub channel: Option<String>,
    /// The app's signing secret, for [`verify_signature`].
    pub signing_secret: String,
}

impl SlackConfig {
    /// A configuration for Slack's real API, sending direct messages.
    pub fn new(bot_token: impl Into<String>, signing_secret: impl Into<String>) -> Self {
        Self {
            bot_token: bot_token.into(),
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            channel: None,
            signing_secret: signing_secret.into(),
        }
    }
}

impl fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackConfig")
            .field("bot_token", &"<redacted>")
            .field("api_base_url", &self.api_base_url)
            .field("channel", &self.channel)
            .field("signing_secret", &"<redacted>")
            .finish()
    }
}

type Connector = SlackClientHyperHttpsConnector;

/// Sends approval requests to Slack and updates them with outcomes.
pub struct SlackTransport {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
    channel: Option<String>,
    signing_secret: String,
    api_base_url: String,
    timeout: Duration,
}

impl fmt::Debug for SlackTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackTransport")
            .field("api_base_url", &self.api_base_url)
            .field("channel", &self.channel)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SlackTransport {
    /// Checks the configuration and builds the client (nothing is sent yet).
    pub fn new(config: SlackConfig) -> Result<Self, TransportError> {
        if config.bot_token.trim().is_empty() {
            return Err(TransportError::permanent("Slack bot token is empty"));
        }
        let base = api_base_url(&config.api_base_url)?;
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| TransportError::permanent(format!("Slack TLS setup: {e}")))?;
        let https = if base.scheme() == "http" {
            tls.https_or_http()
        } else {
            tls.https_only()
        }
        .enable_http1()
        .enable_http2()
        .build();
        // slack-morphism appends "/{method}" itself.
        let base = base.as_str().trim_end_matches('/').to_owned();
        let connector = SlackClientHyperConnector::from(https).with_slack_api_url(&base);
        let channel = config
            .channel
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(SlackApiTokenValue::new(config.bot_token)),
            channel,
            signing_secret: config.signing_secret,
            api_base_url: base,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets the time allowed for one Slack API call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks an inbound request with this transport's signing secret; see
    /// [`verify_signature`].
    pub fn verify(
        &self,
        timestamp_header: &str,
        signature_header: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SlackAuthError> {
        verify_signature(
            &self.signing_secret,
            timestamp_header,
            signature_header,
            body,
            now,
        )
    }

    /// Replaces the message at `channel`/`ts` with just an outcome line
    /// (e.g. "✅ Approved by alice (1 of 2)"): the buttons are gone.
    pub async fn update_outcome(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
    ) -> Result<(), TransportError> {
        self.update(channel, ts, text, vec![outcome_block(text)])
            .await
    }

    /// Replaces the message at `channel`/`ts` with the request's facts
    /// followed by an outcome line instead of the buttons, so the channel
    /// keeps a record of what was decided.
    pub async fn update_outcome_with_request(
        &self,
        channel: &str,
        ts: &str,
        msg: &ApprovalMessage,
        text: &str,
    ) -> Result<(), TransportError> {
        let mut blocks = request_blocks(msg);
        blocks.push(outcome_block(text));
        self.update(channel, ts, text, blocks).await
    }

    async fn update(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Vec<SlackBlock>,
    ) -> Result<(), TransportError> {
        let content = SlackMessageContent::new()
            .with_text(one_line(text))
            .with_blocks(blocks);
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(channel.to_owned()),
            content,
            SlackTs::new(ts.to_owned()),
        );
        let session = self.client.open_session(&self.token);
        let response = self
            .call("chat.update", session.chat_update(&request))
            .await?;
        tracing::info!(
            channel = %response.channel,
            ts = %response.ts,
            "Slack approval message updated with its outcome"
        );
        Ok(())
    }

    async fn call<T>(
        &self,
        method: &str,
        future: impl Future<Output = ClientResult<T>>,
    ) -> Result<T, TransportError> {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(slack_error(method, &e)),
            Err(_) => Err(TransportError::transient(format!(
                "Slack {method} timed out after {:?}",
                self.timeout
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Transport for SlackTransport {
    fn channel(&self) -> &'static str {
        "slack"
    }

    async fn deliver(&self, msg: &ApprovalMessage) -> Result<Delivered, TransportError> {
        let target = match (&self.channel, &msg.recipient.slack) {
            (Some(channel), _) => channel.clone(),
            (None, Some(user)) if !user.trim().is_empty() => user.trim().to_owned(),
            _ => {
                return Err(TransportError::permanent(format!(
                    "no Slack channel is configured and approver {:?} has no Slack user id",
                    msg.recipient.approver_id
                )));
            }
        };
        let content = SlackMessageContent::new()
            .with_text(title(msg))
            .with_blocks(approval_blocks(msg)?);
        let request = SlackApiChatPostMessageRequest::new(SlackChannelId::new(target), content)
            .with_unfurl_links(false)
            .with_unfurl_media(false);
        let session = self.client.open_session(&self.token);
        let response = self
            .call("chat.postMessage", session.chat_post_message(&request))
            .await?;
        let external_id = format!("{}:{}", response.channel, response.ts);
        tracing::info!(
            delivery_id = %msg.delivery_id,
            slack_message = %external_id,
            "approval request delivered to Slack"
        );
        Ok(Delivered {
            external_id: Some(external_id),
        })
    }
}

/// Checks the base URL: `https`, or `http` to a loopback host only (the bot
/// token must never cross a network in clear).
fn api_base_url(raw: &str) -> Result<Url, TransportError> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        TransportError::permanent(format!("Slack API base URL {raw:?} is invalid: {e}"))
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(TransportError::permanent(format!(
            "Slack API base URL {raw:?} must be https (http is accepted for loopback only)"
        ))),
        _ => Err(TransportError::permanent(format!(
            "Slack API base URL {raw:?} must be an https URL"
        ))),
    }
}

fn slack_error(method: &str, e: &SlackClientError) -> TransportError {
    let retryable = match e {
        SlackClientError::ApiError(api) => RETRYABLE_API_ERRORS.contains(&api.code.as_str()),
        SlackClientError::HttpError(http) => {
            let status = http.status_code.as_u16();
            status >= 500 || status == 429 || status == 408
        }
        SlackClientError::RateLimitError(_)
        | SlackClientError::HttpProtocolError(_)
        | SlackClientError::EndOfStream(_)
        | SlackClientError::SystemError(_) => true,
        // A reply we cannot read may follow a message that was posted:
        // retrying could post it twice.
        SlackClientError::ProtocolError(_) | SlackClientError::SocketModeProtocolError(_) => false,
    };
    let detail = match e {
        SlackClientError::ApiError(api) => format!("Slack API error {}", api.code),
        other => one_line(&other.to_string()),
    };
    TransportError::new(
        format!("Slack {method} failed: {}", truncate(&detail, 500)),
        retryable,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_https_or_loopback_http() {
        assert!(api_base_url("https://slack.com/api/").is_ok());
        assert!(api_base_url("http://127.0.0.1:3000/api/").is_ok());
        assert!(api_base_url("http://localhost:3000/").is_ok());
        assert!(api_base_url("http://[::1]:3000/").is_ok());
        assert!(api_base_url("http://slack.example.com/api/").is_err());
        assert!(api_base_url("ftp://slack.com/").is_err());
    }

    #[test]
    fn config_debug_hides_secrets() {
        let c = SlackConfig::new("xoxb-secret", "signing-secret");
        let shown = format!("{c:?}");
        assert!(!shown.contains("xoxb-secret"));
        assert!(!shown.contains("signing-secret"));
    }
}
