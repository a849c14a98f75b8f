//! Slack, through the Web API (slack-morphism over hyper, rustls with ring).
//!
//! [`SlackTransport::deliver`] posts a Block Kit message with `chat.postMessage`
//! to the configured channel, or as a direct message to the recipient's Slack
//! user id: a header, the request's facts, and Approve / Reject buttons whose
//! `value` is a JSON [`ButtonValue`]. When someone clicks, Slack POSTs a
//! `block_actions` interaction to the gate, which checks it with
//! [`verify_signature`] and reads it with [`parse_interaction`]; this crate
//! decides nothing about it. [`SlackTransport::update_outcome`] then replaces
//! the buttons with an outcome line through `chat.update`.
//!
//! All values shown are escaped for Slack's `mrkdwn` (`&`, `<`, `>`) and sent
//! with `verbatim: true`, so agent text cannot mention `@channel`, link, or
//! turn URLs into links.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::text::{facts, one_line, title, truncate};
use crate::{ApprovalMessage, Delivered, Transport, TransportError};

/// Slack's Web API base URL.
pub const DEFAULT_API_BASE_URL: &str = "https://slack.com/api/";

/// `action_id` of the Approve button.
pub const APPROVE_ACTION_ID: &str = "countersign_approve";

/// `action_id` of the Reject button.
pub const REJECT_ACTION_ID: &str = "countersign_reject";

/// `block_id` of the actions block holding the two buttons.
pub const ACTIONS_BLOCK_ID: &str = "countersign_actions";

/// How far a request's timestamp may be from now, either way, before
/// [`verify_signature`] refuses it as a possible replay.
pub const MAX_TIMESTAMP_SKEW_SECONDS: i64 = 5 * 60;

/// Default time allowed for one Slack API call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack's limits: header text, section field text, button value.
const MAX_HEADER_CHARS: usize = 150;
const MAX_FIELD_CHARS: usize = 2000;
const MAX_TEXT_CHARS: usize = 3000;
const MAX_BUTTON_VALUE_CHARS: usize = 2000;

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

/// The answer a button stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The Approve button.
    Approve,
    /// The Reject button.
    Reject,
}

impl Decision {
    /// The `action_id` of this decision's button.
    pub fn action_id(self) -> &'static str {
        match self {
            Decision::Approve => APPROVE_ACTION_ID,
            Decision::Reject => REJECT_ACTION_ID,
        }
    }
}

/// What a button's `value` carries, as JSON: enough for the gate to find the
/// request the click answers. It is not a credential: the gate must still
/// check the signature and that the clicking user may answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonValue {
    /// Run being approved or rejected.
    pub run_id: String,
    /// Workspace of the run.
    pub workspace: String,
    /// Which button this is.
    pub decision: Decision,
    /// Delivery the message belongs to.
    pub delivery_id: String,
}

/// A click on one of Countersign's buttons, read from a Slack
/// `block_actions` interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    /// Slack user id of who clicked (`U…`).
    pub user_id: String,
    /// Their Slack user name, if Slack sent it (for display only).
    pub user_name: Option<String>,
    /// Slack team (workspace) id, if sent.
    pub team_id: Option<String>,
    /// [`APPROVE_ACTION_ID`] or [`REJECT_ACTION_ID`].
    pub action_id: String,
    /// The decoded button value; its decision matches `action_id`.
    pub value: ButtonValue,
    /// Channel of the message clicked, for [`SlackTransport::update_outcome`].
    pub channel_id: String,
    /// Timestamp (id) of the message clicked.
    pub message_ts: String,
    /// Slack's `response_url` for this interaction, if sent.
    pub response_url: Option<String>,
}

/// Why an inbound Slack request was refused by [`verify_signature`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum SlackAuthError {
    /// No signing secret is configured, so nothing can be verified.
    #[error("no Slack signing secret is configured")]
    #[diagnostic(code(countersign::slack::no_secret))]
    NoSecret,
    /// `X-Slack-Request-Timestamp` is not a unix time in seconds.
    #[error("X-Slack-Request-Timestamp is missing or not a unix time")]
    #[diagnostic(code(countersign::slack::malformed_timestamp))]
    MalformedTimestamp,
    /// `X-Slack-Signature` is not `v0=` followed by 64 hex digits.
    #[error("X-Slack-Signature is missing or not of the form v0=<64 hex digits>")]
    #[diagnostic(code(countersign::slack::malformed_signature))]
    MalformedSignature,
    /// The timestamp is more than five minutes from now: a possible replay.
    #[error("request timestamp is {skew_seconds} s from now, more than 5 minutes: refused")]
    #[diagnostic(
        code(countersign::slack::stale_timestamp),
        help("check the clocks; a replayed request also looks like this")
    )]
    StaleTimestamp {
        /// Request time minus now, in seconds.
        skew_seconds: i64,
    },
    /// The signature does not match the body and timestamp.
    #[error("Slack signature does not match the request")]
    #[diagnostic(
        code(countersign::slack::bad_signature),
        help("check the signing secret; the body must be the raw bytes Slack sent")
    )]
    BadSignature,
}

/// Why an interaction body could not be read by [`parse_interaction`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum InteractionError {
    /// The form body has no `payload` field.
    #[error("interaction body has no payload field")]
    #[diagnostic(code(countersign::slack::no_payload))]
    NoPayload,
    /// `payload` is not the JSON Slack sends.
    #[error("interaction payload is not valid JSON: {0}")]
    #[diagnostic(code(countersign::slack::invalid_payload))]
    InvalidJson(String),
    /// Not a `block_actions` interaction (e.g. a shortcut or a view).
    #[error("interaction type {0:?} is not block_actions")]
    #[diagnostic(code(countersign::slack::not_block_actions))]
    NotBlockActions(String),
    /// The interaction carries no action.
    #[error("interaction has no action")]
    #[diagnostic(code(countersign::slack::no_action))]
    NoAction,
    /// The action is not one of Countersign's buttons.
    #[error("action {0:?} is not a Countersign button")]
    #[diagnostic(code(countersign::slack::unknown_action))]
    UnknownAction(String),
    /// The button value is not a Countersign [`ButtonValue`], or its decision
    /// does not match the button.
    #[error("button value is not valid: {0}")]
    #[diagnostic(code(countersign::slack::invalid_value))]
    InvalidValue(String),
    /// A field the gate needs is absent.
    #[error("interaction has no {0}")]
    #[diagnostic(code(countersign::slack::missing_field))]
    MissingField(&'static str),
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

    /// The Block Kit blocks posted for `msg`: header, facts, context, and
    /// the Approve / Reject buttons.
    fn blocks(msg: &ApprovalMessage) -> Result<Vec<SlackBlock>, TransportError> {
        let mut blocks = request_blocks(msg);
        let approve = button(msg, Decision::Approve)?;
        let reject = button(msg, Decision::Reject)?;
        blocks.push(
            SlackActionsBlock::new(vec![approve.into(), reject.into()])
                .with_block_id(SlackBlockId::new(ACTIONS_BLOCK_ID.to_owned()))
                .into(),
        );
        Ok(blocks)
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
            .with_blocks(Self::blocks(msg)?);
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

/// Escapes text for Slack `mrkdwn`: `&`, `<` and `>` are the only characters
/// Slack gives meaning to in links and mentions.
pub(crate) fn mrkdwn_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A `mrkdwn` text with `verbatim: true`: no automatic links or mentions.
fn verbatim(text: String) -> SlackBlockText {
    SlackBlockMarkDownText::new(text).with_verbatim(true).into()
}

fn plain(text: impl Into<String>) -> SlackBlockPlainTextOnly {
    SlackBlockPlainText::new(text.into()).into()
}

/// Header, facts and context: everything but the buttons.
fn request_blocks(msg: &ApprovalMessage) -> Vec<SlackBlock> {
    let header = truncate(&one_line(&title(msg)), MAX_HEADER_CHARS);
    let fields: Vec<SlackBlockText> = facts(msg)
        .into_iter()
        .filter(|f| !matches!(f.label, "Workspace" | "Run"))
        .map(|f| {
            let label = format!("*{}*\n", f.label);
            let room = MAX_FIELD_CHARS.saturating_sub(label.chars().count());
            verbatim(format!(
                "{label}{}",
                truncate_escaped(&mrkdwn_escape(&f.value), room)
            ))
        })
        .collect();
    let context = format!(
        "Workspace {} · run {} · delivery {}",
        mrkdwn_escape(&one_line(&msg.workspace)),
        mrkdwn_escape(&one_line(&msg.run_id)),
        mrkdwn_escape(&one_line(&msg.delivery_id)),
    );
    vec![
        SlackHeaderBlock::new(plain(header)).into(),
        SlackSectionBlock::new().with_fields(fields).into(),
        SlackContextBlock::new(vec![
            SlackBlockMarkDownText::new(truncate_escaped(&context, MAX_TEXT_CHARS))
                .with_verbatim(true)
                .into(),
        ])
        .into(),
    ]
}

/// Cuts escaped text without splitting an `&…;` entity.
fn truncate_escaped(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut cut = truncate(s, max);
    cut.pop(); // the ellipsis
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
    {
        cut.truncate(amp);
    }
    cut.push('…');
    cut
}

fn button(
    msg: &ApprovalMessage,
    decision: Decision,
) -> Result<SlackBlockButtonElement, TransportError> {
    let value = serde_json::to_string(&ButtonValue {
        run_id: msg.run_id.clone(),
        workspace: msg.workspace.clone(),
        decision,
        delivery_id: msg.delivery_id.clone(),
    })
    .map_err(|e| TransportError::permanent(format!("cannot encode Slack button value: {e}")))?;
    if value.chars().count() > MAX_BUTTON_VALUE_CHARS {
        return Err(TransportError::permanent(
            "Slack button value exceeds 2000 characters (ids too long)",
        ));
    }
    let (label, style) = match decision {
        Decision::Approve => ("Approve", SlackBlockButtonStyle::Primary),
        Decision::Reject => ("Reject", SlackBlockButtonStyle::Danger),
    };
    Ok(SlackBlockButtonElement::new(plain(label))
        .with_action_id(SlackActionId::new(decision.action_id().to_owned()))
        .with_value(value)
        .with_style(style))
}

fn outcome_block(text: &str) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(verbatim(truncate_escaped(
            &mrkdwn_escape(text),
            MAX_TEXT_CHARS,
        )))
        .into()
}

/// Checks a Slack request signature (the `v0` scheme): `signature_header`
/// must be `v0=` and the hex HMAC-SHA256, keyed with `signing_secret`, of
/// `v0:{timestamp_header}:{body}`, and the timestamp must be within five
/// minutes of `now`, either way. `body` must be the raw bytes received. The
/// comparison is constant-time.
pub fn verify_signature(
    signing_secret: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SlackAuthError> {
    if signing_secret.is_empty() {
        return Err(SlackAuthError::NoSecret);
    }
    let timestamp = timestamp_header.trim();
    if timestamp.is_empty()
        || timestamp.len() > 12
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SlackAuthError::MalformedTimestamp);
    }
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| SlackAuthError::MalformedTimestamp)?;
    let expected = signature_header
        .trim()
        .strip_prefix("v0=")
        .filter(|hex| hex.len() == 64)
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SlackAuthError::MalformedSignature)?;
    let skew = seconds - now.timestamp();
    if skew.abs() > MAX_TIMESTAMP_SKEW_SECONDS {
        return Err(SlackAuthError::StaleTimestamp { skew_seconds: skew });
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_secret.as_bytes())
        .map_err(|_| SlackAuthError::NoSecret)?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SlackAuthError::BadSignature)
}

/// Reads a Slack interaction request body (`application/x-www-form-urlencoded`
/// with a `payload` field holding JSON) as a click on one of Countersign's
/// buttons. Verify the signature first: this only parses.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, InteractionError> {
    let payload = form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or(InteractionError::NoPayload)?;
    let raw: RawInteraction =
        serde_json::from_str(&payload).map_err(|e| InteractionError::InvalidJson(e.to_string()))?;
    if raw.kind != "block_actions" {
        return Err(InteractionError::NotBlockActions(raw.kind));
    }
    let action = raw
        .actions
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or(InteractionError::NoAction)?;
    let decision = match action.action_id.as_str() {
        APPROVE_ACTION_ID => Decision::Approve,
        REJECT_ACTION_ID => Decision::Reject,
        other => return Err(InteractionError::UnknownAction(other.to_owned())),
    };
    let value_text = action
        .value
        .ok_or(InteractionError::MissingField("button value"))?;
    let value: ButtonValue = serde_json::from_str(&value_text)
        .map_err(|e| InteractionError::InvalidValue(e.to_string()))?;
    if value.decision != decision {
        return Err(InteractionError::InvalidValue(format!(
            "button {} carries decision {:?}",
            action.action_id, value.decision
        )));
    }
    let user = raw.user.ok_or(InteractionError::MissingField("user"))?;
    let channel_id = raw
        .container
        .as_ref()
        .and_then(|c| c.channel_id.clone())
        .or_else(|| raw.channel.map(|c| c.id))
        .ok_or(InteractionError::MissingField("channel"))?;
    let message_ts = raw
        .container
        .and_then(|c| c.message_ts)
        .or_else(|| raw.message.and_then(|m| m.ts))
        .ok_or(InteractionError::MissingField("message timestamp"))?;
    Ok(Interaction {
        user_id: user.id,
        user_name: user.username.or(user.name),
        team_id: raw.team.map(|t| t.id),
        action_id: action.action_id,
        value,
        channel_id,
        message_ts,
        response_url: raw.response_url,
    })
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    user: Option<RawUser>,
    team: Option<RawId>,
    channel: Option<RawId>,
    container: Option<RawContainer>,
    message: Option<RawMessage>,
    response_url: Option<String>,
    actions: Option<Vec<RawAction>>,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
    username: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawContainer {
    channel_id: Option<String>,
    message_ts: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    ts: Option<String>,
}

#[derive(Deserialize)]
struct RawAction {
    action_id: String,
    value: Option<String>,
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
    fn mrkdwn_escape_defuses_mentions_and_links() {
        assert_eq!(
            mrkdwn_escape("<!channel> <https://evil|click> & co"),
            "&lt;!channel&gt; &lt;https://evil|click&gt; &amp; co"
        );
    }

    #[test]
    fn truncation_never_splits_an_entity() {
        let s = mrkdwn_escape("aaaa<");
        assert_eq!(s, "aaaa&lt;");
        assert_eq!(truncate_escaped(&s, 7), "aaaa…");
        assert_eq!(truncate_escaped(&s, 8), "aaaa&lt;");
    }

    #[test]
    fn config_debug_hides_secrets() {
        let c = SlackConfig::new("xoxb-secret", "signing-secret");
        let shown = format!("{c:?}");
        assert!(!shown.contains("xoxb-secret"));
        assert!(!shown.contains("signing-secret"));
    }
}
