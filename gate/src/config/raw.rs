//! The configuration file as written: serde structs that mirror the YAML,
//! unknown fields refused. [`super::load`] turns them into a checked
//! [`super::Config`]; nothing else reads them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) store: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) rate_limit: Option<RawRateLimit>,
    pub(super) policy_poll_interval: Option<String>,
    pub(super) email: Option<EmailConfig>,
    pub(super) slack: Option<SlackConfig>,
    pub(super) console: Option<bool>,
    pub(super) delivery: Option<RawDelivery>,
    pub(super) secrets: Option<super::secrets::RawSecrets>,
    pub(super) audit: Option<RawAudit>,
    pub(super) teams: Option<RawLinkDestinations>,
    pub(super) connections: Option<RawConnections>,
    #[serde(default)]
    pub(super) workspaces: BTreeMap<String, RawWorkspace>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) log_name: Option<String>,
    pub(super) checkpoint_interval: Option<String>,
    pub(super) push_checkpoints: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelivery {
    pub(super) max_attempts: Option<u32>,
    pub(super) base_delay: Option<String>,
    pub(super) max_delay: Option<String>,
    pub(super) poll_interval: Option<String>,
    pub(super) lease: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnections {
    pub(super) max: Option<usize>,
    pub(super) header_timeout: Option<String>,
    pub(super) body_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) shutdown_grace: Option<String>,
}

/// SMTP settings for the email transport.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host.
    pub host: String,
    /// SMTP port; by default 587 for `starttls`, 465 for `tls`, 25 for
    /// `plain`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `plain`, `starttls` (default) or `tls`.
    #[serde(default = "default_security")]
    pub security: String,
    /// SMTP user, if the server wants authentication.
    pub username: Option<String>,
    /// SMTP password; `password_env` names an environment variable instead.
    pub password: Option<String>,
    /// Environment variable holding the SMTP password.
    pub password_env: Option<String>,
    /// Sender address.
    pub from: String,
}

pub(super) fn default_security() -> String {
    "starttls".to_owned()
}

/// Slack app settings for the Slack transport.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Bot token (`xoxb-…`); `bot_token_env` names an environment variable instead.
    pub bot_token: Option<String>,
    /// Environment variable holding the bot token.
    pub bot_token_env: Option<String>,
    /// Signing secret used to verify interactions; or `signing_secret_env`.
    pub signing_secret: Option<String>,
    /// Environment variable holding the signing secret.
    pub signing_secret_env: Option<String>,
    /// Slack Web API base URL (tests point it at a local server).
    #[serde(default = "default_slack_api")]
    pub api_base_url: String,
    /// Post to this channel instead of messaging each approver directly.
    pub channel: Option<String>,
    /// The Slack workspace (team) id, `T…`: when set, clicks from any other
    /// Slack workspace are refused.
    #[serde(default)]
    pub team_id: Option<String>,
}

pub(super) fn default_slack_api() -> String {
    "https://slack.com/api/".to_owned()
}

/// A signed webhook that receives a workspace's approval requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for logs and the run's delivery list.
    pub name: String,
    /// Where to POST (configured here, never taken from a payload).
    pub url: String,
    /// Standard Webhooks secret (`whsec_<base64>`); or `secret_env`.
    pub secret: Option<String>,
    /// Environment variable holding the secret.
    pub secret_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub(super) per_second: u32,
    pub(super) burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkspace {
    pub(super) policies: PathBuf,
    #[serde(default)]
    pub(super) webhooks: Vec<WebhookConfig>,
    pub(super) teams: Option<RawTeams>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTeams {
    pub(super) workflow_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLinkDestinations {
    #[serde(default)]
    pub(super) allowed_hosts: Vec<String>,
    #[serde(default)]
    pub(super) allowed_urls: Vec<String>,
}
