//! The transports configured on this gate, built once at start.

use std::collections::HashMap;
use std::sync::Arc;

use countersign_store::Recipient;
use countersign_transports::Transport;
use countersign_transports::console::ConsoleTransport;
use countersign_transports::email::{EmailTransport, SmtpConfig, SmtpSecurity};
use countersign_transports::slack::SlackTransport;
use countersign_transports::teams::TeamsTransport;
use countersign_transports::webhook::{WebhookTarget, WebhookTransport};

use crate::config::{Config, ConfigError};

/// Channel names, as stored on deliveries and answers.
pub mod names {
    /// Email with confirmation links.
    pub const EMAIL: &str = "email";
    /// Slack message with buttons.
    pub const SLACK: &str = "slack";
    /// Signed webhook with an answer URL.
    pub const WEBHOOK: &str = "webhook";
    /// Teams Adaptive Card with confirmation links.
    pub const TEAMS: &str = "teams";
    /// Printed to the server log.
    pub const CONSOLE: &str = "console";
}

/// Every transport the gate can use.
#[derive(Default)]
pub struct Channels {
    /// Email, when SMTP is configured.
    pub email: Option<Arc<dyn Transport>>,
    /// The same email transport, concrete, for dashboard sign-in links.
    pub email_sender: Option<Arc<EmailTransport>>,
    /// Slack, when configured; kept concrete for `update_outcome`.
    pub slack: Option<Arc<SlackTransport>>,
    /// The Slack signing secret for `/slack/interactions`.
    pub slack_signing_secret: Option<String>,
    /// Whether Slack posts to one channel rather than to each approver.
    pub slack_channel_mode: bool,
    /// The only Slack workspace (team) whose clicks are accepted, if set.
    pub slack_team_id: Option<String>,
    /// Console output.
    pub console: Option<Arc<dyn Transport>>,
    /// Teams per workspace.
    pub teams: HashMap<String, Arc<dyn Transport>>,
    /// Webhooks per (workspace, name).
    pub webhooks: HashMap<(String, String), Arc<dyn Transport>>,
    /// The same webhooks per workspace, for events other than approval
    /// requests (`audit.checkpoint`).
    pub workspace_hooks: HashMap<String, Vec<Arc<WebhookTransport>>>,
}

impl Channels {
    /// Builds the transports described by `config`.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let invalid = |what: &str, e: countersign_transports::TransportError| {
            ConfigError::Invalid(format!("{what}: {}", e.message()))
        };
        let mut c = Channels::default();
        if let Some(e) = &config.email {
            let password = match (&e.password, &e.password_env) {
                (None, None) => None,
                (p, env) => Some(Config::secret(p, env, "email.password")?),
            };
            let (security, default_port) = match e.security.as_str() {
                "plain" => (SmtpSecurity::Plain, 25),
                "tls" => (SmtpSecurity::Tls, 465),
                "starttls" => (SmtpSecurity::StartTls, 587),
                other => {
                    // A typo must not quietly pick another kind of connection.
                    return Err(ConfigError::Invalid(format!(
                        "email.security must be `starttls`, `tls` or `plain`, not `{other}`"
                    )));
                }
            };
            let smtp = SmtpConfig {
                host: e.host.clone(),
                port: e.port.unwrap_or(default_port),
                security,
                username: e.username.clone(),
                password,
                from: e.from.clone(),
                timeout: std::time::Duration::from_secs(30),
            };
            let email = Arc::new(EmailTransport::new(smtp).map_err(|e| invalid("email", e))?);
            c.email = Some(Arc::clone(&email) as Arc<dyn Transport>);
            c.email_sender = Some(email);
        }
        if let Some(s) = &config.slack {
            let token = Config::secret(&s.bot_token, &s.bot_token_env, "slack.bot_token")?;
            let signing = Config::secret(
                &s.signing_secret,
                &s.signing_secret_env,
                "slack.signing_secret",
            )?;
            let slack = SlackTransport::new(countersign_transports::slack::SlackConfig {
                bot_token: token,
                api_base_url: s.api_base_url.clone(),
                channel: s.channel.clone(),
                signing_secret: signing.clone(),
            })
            .map_err(|e| invalid("slack", e))?;
            c.slack = Some(Arc::new(slack));
            c.slack_signing_secret = Some(signing);
            c.slack_channel_mode = s.channel.is_some();
            c.slack_team_id.clone_from(&s.team_id);
        }
        if config.console {
            c.console = Some(Arc::new(ConsoleTransport::new()));
        }
        for w in &config.workspaces {
            if let Some(url) = &w.teams_workflow_url {
                c.teams.insert(
                    w.name.clone(),
                    Arc::new(TeamsTransport::new(url.clone()).map_err(|e| invalid("teams", e))?),
                );
            }
            for h in &w.webhooks {
                let secret = Config::secret(
                    &h.secret,
                    &h.secret_env,
                    &format!("webhook `{}` secret", h.name),
                )?;
                let t = WebhookTransport::new(WebhookTarget {
                    name: h.name.clone(),
                    url: h.url.clone(),
                    secret,
                })
                .map_err(|e| invalid(&format!("webhook `{}`", h.name), e))?;
                let t = Arc::new(t);
                c.workspace_hooks
                    .entry(w.name.clone())
                    .or_default()
                    .push(Arc::clone(&t));
                c.webhooks.insert((w.name.clone(), h.name.clone()), t);
            }
        }
        Ok(c)
    }

    /// The transport for a delivery.
    pub fn for_delivery(
        &self,
        workspace: &str,
        approver_id: &str,
        channel: &str,
    ) -> Option<Arc<dyn Transport>> {
        match channel {
            names::EMAIL => self.email.clone(),
            names::SLACK => self.slack.clone().map(|s| s as Arc<dyn Transport>),
            names::CONSOLE => self.console.clone(),
            // Personal Teams deliveries are built from the member's own URL
            // by the worker; only the workspace channel is configured here.
            names::TEAMS if Shared::of(approver_id) == Some(Shared::TeamsChannel) => {
                self.teams.get(workspace).cloned()
            }
            names::WEBHOOK => match Shared::of(approver_id)? {
                Shared::Webhook(name) => self.webhooks.get(&(workspace.to_owned(), name)).cloned(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The shared destinations a delivery can go to, as the gate names them in
/// the store's [`Recipient::Shared`] form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shared {
    /// The workspace's Teams channel (an informational card, no links).
    TeamsChannel,
    /// The configured Slack channel (channel mode).
    SlackChannel,
    /// One of the workspace's signed webhooks, by name.
    Webhook(String),
}

impl Shared {
    const TEAMS_CHANNEL: &'static str = "teams-channel";
    const SLACK_CHANNEL: &'static str = "slack-channel";
    const WEBHOOK_PREFIX: &'static str = "webhook:";

    /// The store's recipient for this destination.
    #[must_use]
    pub fn recipient(&self) -> Recipient {
        Recipient::Shared(match self {
            Self::TeamsChannel => Self::TEAMS_CHANNEL.to_owned(),
            Self::SlackChannel => Self::SLACK_CHANNEL.to_owned(),
            Self::Webhook(name) => format!("{}{name}", Self::WEBHOOK_PREFIX),
        })
    }

    /// The destination a stored approver id names, if it is a shared one
    /// the gate knows.
    #[must_use]
    pub fn of(approver_id: &str) -> Option<Self> {
        let Recipient::Shared(name) = Recipient::parse(approver_id) else {
            return None;
        };
        match name.as_str() {
            Self::TEAMS_CHANNEL => Some(Self::TeamsChannel),
            Self::SLACK_CHANNEL => Some(Self::SlackChannel),
            other => other
                .strip_prefix(Self::WEBHOOK_PREFIX)
                .map(|n| Self::Webhook(n.to_owned())),
        }
    }
}

#[cfg(test)]
mod shared_tests {
    use super::Shared;

    #[test]
    fn shared_destinations_keep_their_stored_form() {
        for (shared, stored) in [
            (Shared::TeamsChannel, "@teams-channel"),
            (Shared::SlackChannel, "@slack-channel"),
            (Shared::Webhook("ops".to_owned()), "@webhook:ops"),
        ] {
            assert_eq!(shared.recipient().to_string(), stored);
            assert_eq!(Shared::of(stored), Some(shared));
        }
        assert_eq!(Shared::of("alice"), None);
        assert_eq!(Shared::of("@unknown"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn email_needs_only_a_host_and_a_sender() {
        let c = Config::parse(
            "email: { host: smtp.example.com, from: cs@example.com }\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.email.as_ref().unwrap().port, None);
        assert!(Channels::from_config(&c).unwrap().email.is_some());
        let err = Config::parse(
            "email: { host: smtp.example.com, from: cs@example.com, security: tsl }\n",
            Path::new("."),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("email.security `tsl` must be"), "{err}");
    }
}
