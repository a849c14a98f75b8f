//! What Slack sends back: the signature check every inbound request must
//! pass, and the reading of a `block_actions` interaction as a click on one
//! of Countersign's buttons. Nothing here decides what the click means.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::button::{APPROVE_ACTION_ID, ButtonValue, Decision, REJECT_ACTION_ID};

/// How far a request's timestamp may be from now, either way, before
/// [`verify_signature`] refuses it as a possible replay.
pub const MAX_TIMESTAMP_SKEW_SECONDS: i64 = 5 * 60;

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
    /// Channel of the message clicked, for
    /// [`SlackTransport::update_outcome`](super::SlackTransport::update_outcome).
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
