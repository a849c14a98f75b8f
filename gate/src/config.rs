//! Server configuration: a YAML file, or built-in defaults that make
//! `countersign serve` work in a fresh checkout.
//!
//! ```yaml
//! listen: 127.0.0.1:8080
//! public_url: https://countersign.example.com
//! data_dir: ./countersign-data
//! store: sqlite://./countersign-data/countersign.db   # or postgres://user@host/db
//! max_body_bytes: 65536
//! rate_limit: { per_second: 500, burst: 1000 }        # per API key
//! policy_poll_interval: 2s
//! workspaces:
//!   default: { policies: ./policies }
//!   acme:    { policies: ./clients/acme/policies }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown fields.
    #[error("invalid config `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// serde-saphyr's message, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    max_body_bytes: Option<usize>,
    rate_limit: Option<RawRateLimit>,
    policy_poll_interval: Option<String>,
    email: Option<EmailConfig>,
    slack: Option<SlackConfig>,
    console: Option<bool>,
    delivery: Option<RawDelivery>,
    #[serde(default)]
    workspaces: BTreeMap<String, RawWorkspace>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    max_attempts: Option<u32>,
    base_delay: Option<String>,
    max_delay: Option<String>,
    poll_interval: Option<String>,
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

fn default_security() -> String {
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

fn default_slack_api() -> String {
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

/// Retry policy of the delivery worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts before a delivery is given up (shown as failed on the run).
    pub max_attempts: u32,
    /// First retry delay; doubled after each failure, with jitter.
    pub base_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// How often the worker looks for due deliveries.
    pub poll_interval: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_second: u32,
    burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    policies: PathBuf,
    #[serde(default)]
    webhooks: Vec<WebhookConfig>,
    teams: Option<RawTeams>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeams {
    workflow_url: String,
}

/// Where runs and events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite database file (embedded default).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreUrl {
    /// The store as shown to a person: the SQLite file's path, or the
    /// PostgreSQL URL with any password replaced by `***`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_password(url),
        }
    }
}

/// `scheme://user:password@host…` → `scheme://user:***@host…`, and any
/// `password=` query parameter masked too. It masks from the first `:` to
/// the last `@`, so a password holding `/`, `?` or `@` is hidden whole (at
/// worst, more than the password is hidden).
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end);
    let rest = match (rest.find(':'), rest.rfind('@')) {
        (Some(colon), Some(at)) if colon < at => {
            format!("{}:***{}", &rest[..colon], &rest[at..])
        }
        _ => rest.to_owned(),
    };
    let Some(q) = rest.find('?') else {
        return format!("{head}{rest}");
    };
    let params: Vec<String> = rest[q + 1..]
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{head}{}?{}", &rest[..q], params.join("&"))
}

/// The YAML reader names Rust's integer types (`invalid u64`); a person
/// editing a config file wants to hear what to write instead.
fn plain_words(message: &str) -> String {
    let mut out = message.to_owned();
    for ty in ["u64", "u32", "u16", "u8", "usize"] {
        out = out.replace(
            &format!("invalid {ty}"),
            "expected a whole number (0 or more)",
        );
    }
    for ty in ["i64", "i32"] {
        out = out.replace(&format!("invalid {ty}"), "expected a whole number");
    }
    out
}

/// A configured workspace: its own policies, keys and runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceConfig {
    /// The workspace name (`[a-z0-9_-]`, 1–64 characters).
    pub name: String,
    /// Its policy directory.
    pub policies: PathBuf,
    /// Signed webhooks that receive every approval request of the workspace.
    pub webhooks: Vec<WebhookConfig>,
    /// Teams Workflows webhook URL: each approver gets an Adaptive Card there.
    pub teams_workflow_url: Option<String>,
}

impl WorkspaceConfig {
    /// A workspace with only a policy directory.
    pub fn new(name: impl Into<String>, policies: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            policies: policies.into(),
            webhooks: Vec::new(),
            teams_workflow_url: None,
        }
    }
}

/// Per-key request rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Burst size.
    pub burst: u32,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Base URL used in links sent to people.
    pub public_url: String,
    /// Directory for the SQLite database and the receipt signing key.
    pub data_dir: PathBuf,
    /// The store.
    pub store: StoreUrl,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Per-key rate limit.
    pub rate_limit: RateLimit,
    /// How often policy directories are checked for changes.
    pub policy_poll_interval: Duration,
    /// Workspaces, sorted by name.
    pub workspaces: Vec<WorkspaceConfig>,
    /// The email transport, when configured.
    pub email: Option<EmailConfig>,
    /// The Slack transport, when configured.
    pub slack: Option<SlackConfig>,
    /// Print approval requests and their links to the log (default on).
    pub console: bool,
    /// Delivery retries.
    pub delivery: DeliveryPolicy,
}

/// Parses a config duration: what policies accept (`2s`, `10m`, `1h30m`)
/// plus milliseconds (`250ms`).
pub fn parse_config_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse::<u64>().ok().map(Duration::from_millis);
    }
    countersign_engine::parse_duration(s)
}

/// Default body limit: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

fn valid_workspace_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Config {
    /// The defaults: 127.0.0.1:8080, `./countersign-data`, one workspace
    /// `default` with the policies in `./policies`.
    pub fn defaults() -> Self {
        let data_dir = PathBuf::from("countersign-data");
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".to_owned(),
            store: StoreUrl::Sqlite(data_dir.join("countersign.db")),
            data_dir,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            rate_limit: RateLimit {
                per_second: 1000,
                burst: 2000,
            },
            policy_poll_interval: Duration::from_secs(2),
            workspaces: vec![WorkspaceConfig::new("default", "policies")],
            email: None,
            slack: None,
            console: true,
            delivery: DeliveryPolicy {
                max_attempts: 8,
                base_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(600),
                poll_interval: Duration::from_millis(500),
            },
        }
    }

    /// Reads a config file; relative paths in it are relative to the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: plain_words(&e.without_snippet().to_string()),
        })?;
        let d = Self::defaults();
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let listen = match raw.listen {
            Some(l) => l.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "listen `{l}` is not an address such as 127.0.0.1:8080"
                ))
            })?,
            None => d.listen,
        };
        let data_dir = raw.data_dir.map_or_else(|| rel(d.data_dir), rel);
        let store = match raw.store {
            None => StoreUrl::Sqlite(data_dir.join("countersign.db")),
            Some(s) if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                StoreUrl::Postgres(s)
            }
            Some(s) => match s.strip_prefix("sqlite://") {
                Some(p) if !p.is_empty() => StoreUrl::Sqlite(rel(PathBuf::from(p))),
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "store `{s}` must start with sqlite:// or postgres://"
                    )));
                }
            },
        };
        let max_body_bytes = raw.max_body_bytes.unwrap_or(d.max_body_bytes);
        if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be between 1024 and 16777216".to_owned(),
            ));
        }
        let rate_limit = match raw.rate_limit {
            None => d.rate_limit,
            Some(r) if r.per_second == 0 => {
                return Err(ConfigError::Invalid(
                    "rate_limit.per_second must be at least 1".to_owned(),
                ));
            }
            Some(r) => RateLimit {
                per_second: r.per_second,
                burst: r.burst.unwrap_or(r.per_second.saturating_mul(2)).max(1),
            },
        };
        let policy_poll_interval = match raw.policy_poll_interval {
            None => d.policy_poll_interval,
            Some(s) => parse_config_duration(&s)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "policy_poll_interval `{s}` is not a duration such as 2s"
                    ))
                })?,
        };
        let public_url = raw
            .public_url
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "public_url `{public_url}` must start with http:// or https://"
            )));
        }
        let workspaces = if raw.workspaces.is_empty() {
            vec![WorkspaceConfig::new(
                "default",
                rel(PathBuf::from("policies")),
            )]
        } else {
            let mut out = Vec::new();
            for (name, w) in raw.workspaces {
                if !valid_workspace_name(&name) {
                    return Err(ConfigError::Invalid(format!(
                        "workspace name `{name}` must be 1–64 characters of a-z, 0-9, `-` and `_`"
                    )));
                }
                let mut names = std::collections::HashSet::new();
                for h in &w.webhooks {
                    if !names.insert(h.name.clone()) {
                        return Err(ConfigError::Invalid(format!(
                            "workspace `{name}` has two webhooks named `{}`",
                            h.name
                        )));
                    }
                    if !(h.url.starts_with("https://") || h.url.starts_with("http://")) {
                        return Err(ConfigError::Invalid(format!(
                            "webhook `{}` url must be http(s)",
                            h.name
                        )));
                    }
                    if h.secret.is_none() && h.secret_env.is_none() {
                        return Err(ConfigError::Invalid(format!(
                            "webhook `{}` needs `secret` or `secret_env`",
                            h.name
                        )));
                    }
                }
                out.push(WorkspaceConfig {
                    name,
                    policies: rel(w.policies),
                    webhooks: w.webhooks,
                    teams_workflow_url: w.teams.map(|t| t.workflow_url),
                });
            }
            out
        };
        let dur =
            |v: Option<String>, default: Duration, what: &str| -> Result<Duration, ConfigError> {
                match v {
                    None => Ok(default),
                    Some(s) => parse_config_duration(&s)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            ConfigError::Invalid(format!("delivery.{what} `{s}` is not a duration"))
                        }),
                }
            };
        let delivery = match raw.delivery {
            None => d.delivery,
            Some(r) => DeliveryPolicy {
                max_attempts: r
                    .max_attempts
                    .unwrap_or(d.delivery.max_attempts)
                    .clamp(1, 100),
                base_delay: dur(r.base_delay, d.delivery.base_delay, "base_delay")?,
                max_delay: dur(r.max_delay, d.delivery.max_delay, "max_delay")?,
                poll_interval: dur(r.poll_interval, d.delivery.poll_interval, "poll_interval")?,
            },
        };
        if let Some(e) = &raw.email {
            if !matches!(e.security.as_str(), "plain" | "starttls" | "tls") {
                return Err(ConfigError::Invalid(format!(
                    "email.security `{}` must be plain, starttls or tls",
                    e.security
                )));
            }
        }
        if let Some(sl) = &raw.slack {
            if sl.bot_token.is_none() && sl.bot_token_env.is_none() {
                return Err(ConfigError::Invalid(
                    "slack needs `bot_token` or `bot_token_env`".to_owned(),
                ));
            }
            if sl.signing_secret.is_none() && sl.signing_secret_env.is_none() {
                return Err(ConfigError::Invalid(
                    "slack needs `signing_secret` or `signing_secret_env`".to_owned(),
                ));
            }
        }
        let raw_has_no_transport = raw.email.is_none()
            && raw.slack.is_none()
            && workspaces
                .iter()
                .all(|w| w.webhooks.is_empty() && w.teams_workflow_url.is_none());
        if raw.slack.as_ref().is_some_and(|s| s.channel.is_some()) && workspaces.len() > 1 {
            return Err(ConfigError::Invalid(
                "slack.channel posts every workspace's requests to one channel; with several workspaces, leave it out so approvers get direct messages".to_owned(),
            ));
        }
        Ok(Self {
            listen,
            public_url: public_url.clone(),
            data_dir,
            store,
            max_body_bytes,
            rate_limit,
            policy_poll_interval,
            workspaces,
            email: raw.email,
            slack: raw.slack,
            // The console prints working approval links: on by default only
            // for a local gate with no other way to reach approvers.
            console: raw.console.unwrap_or(
                raw_has_no_transport
                    && (public_url.starts_with("http://127.")
                        || public_url.starts_with("http://localhost")),
            ),
            delivery,
        })
    }

    /// Loads `path` if given, else the defaults.
    pub fn from_option(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load(p),
            None => Ok(Self::defaults()),
        }
    }

    /// Reads a secret given inline or through an environment variable.
    pub fn secret(
        inline: &Option<String>,
        env: &Option<String>,
        what: &str,
    ) -> Result<String, ConfigError> {
        if let Some(v) = inline {
            return Ok(v.clone());
        }
        match env {
            Some(var) => std::env::var(var).map_err(|_| {
                ConfigError::Invalid(format!("{what}: environment variable `{var}` is not set"))
            }),
            None => Err(ConfigError::Invalid(format!("{what} is not configured"))),
        }
    }

    /// The configured workspace with this name.
    pub fn workspace(&self, name: &str) -> Option<&WorkspaceConfig> {
        self.workspaces.iter().find(|w| w.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_described_store_never_shows_a_password() {
        let pg = |u: &str| StoreUrl::Postgres(u.to_owned()).describe();
        assert_eq!(
            pg("postgres://app:s3cr3t@db.internal:5432/countersign"),
            "postgres://app:***@db.internal:5432/countersign"
        );
        // A password holding `@`, `:`, `/` or `?` is still hidden whole.
        assert_eq!(
            pg("postgres://app:p@ss:w@db/cs?sslmode=require"),
            "postgres://app:***@db/cs?sslmode=require"
        );
        assert_eq!(pg("postgres://app:pa/ss@db/cs"), "postgres://app:***@db/cs");
        assert_eq!(pg("postgres://app:pa?ss@db/cs"), "postgres://app:***@db/cs");
        // So is one given as a query parameter.
        assert_eq!(
            pg("postgres://app@db/cs?sslmode=require&password=s3cr3t"),
            "postgres://app@db/cs?sslmode=require&password=***"
        );
        assert_eq!(pg("postgres://app@db/cs"), "postgres://app@db/cs");
        assert_eq!(pg("postgres://db/cs"), "postgres://db/cs");
        assert_eq!(
            StoreUrl::Sqlite(PathBuf::from("data/countersign.db")).describe(),
            "sqlite://data/countersign.db"
        );
    }

    #[test]
    fn defaults_match_the_readme() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.store,
            StoreUrl::Sqlite(PathBuf::from("countersign-data/countersign.db"))
        );
        assert_eq!(c.workspaces[0].name, "default");
        assert_eq!(c.max_body_bytes, 65536);
    }

    #[test]
    fn parses_a_full_config_relative_to_its_file() {
        let c = Config::parse(
            "listen: 0.0.0.0:9000\npublic_url: https://cs.example.com/\nstore: postgres://u@db/cs\nmax_body_bytes: 2048\nrate_limit: { per_second: 5 }\npolicy_poll_interval: 5s\nworkspaces:\n  acme: { policies: acme/policies }\n  beta: { policies: /abs/p }\n",
            Path::new("/etc/cs"),
        )
        .unwrap();
        assert_eq!(c.public_url, "https://cs.example.com");
        assert_eq!(c.store, StoreUrl::Postgres("postgres://u@db/cs".to_owned()));
        assert_eq!(
            c.rate_limit,
            RateLimit {
                per_second: 5,
                burst: 10
            }
        );
        assert_eq!(
            c.workspaces[0].policies,
            PathBuf::from("/etc/cs/acme/policies")
        );
        assert_eq!(c.workspaces[1].policies, PathBuf::from("/abs/p"));
        assert_eq!(c.data_dir, PathBuf::from("/etc/cs/countersign-data"));
    }

    #[test]
    fn the_example_config_in_the_repository_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../countersign.example.yaml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.workspaces.len(), 1);
        assert!(matches!(c.store, StoreUrl::Sqlite(_)));
    }

    #[test]
    fn the_console_is_on_only_for_a_local_gate_without_other_transports() {
        assert!(Config::parse("", Path::new(".")).unwrap().console);
        assert!(
            !Config::parse("public_url: https://cs.example.com\n", Path::new("."))
                .unwrap()
                .console
        );
        let with_email = "email: { host: smtp.example.com, port: 587, from: cs@example.com }\n";
        assert!(!Config::parse(with_email, Path::new(".")).unwrap().console);
        assert!(
            Config::parse(&format!("{with_email}console: true\n"), Path::new("."))
                .unwrap()
                .console
        );
    }

    #[test]
    fn a_slack_channel_cannot_be_shared_by_workspaces() {
        let text = "slack: { bot_token: x, signing_secret: y, channel: C1 }\nworkspaces:\n  a: { policies: p }\n  b: { policies: q }\n";
        assert!(Config::parse(text, Path::new(".")).is_err());
    }

    #[test]
    fn durations_accept_milliseconds() {
        assert_eq!(
            parse_config_duration("250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_config_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_config_duration("ms"), None);
        let c = Config::parse(
            "delivery: { poll_interval: 100ms, base_delay: 1s, max_attempts: 3 }\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.delivery.poll_interval, Duration::from_millis(100));
        assert_eq!(c.delivery.max_attempts, 3);
    }

    #[test]
    fn a_bad_number_is_explained_in_plain_words() {
        let err = Config::parse("max_body_bytes: lots\n", Path::new("."))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("expected a whole number (0 or more) at line 1, column 17"),
            "{err}"
        );
        assert!(!err.contains("u64"), "{err}");
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            "lisen: x\n",
            "listen: nowhere\n",
            "store: mysql://x\n",
            "max_body_bytes: 10\n",
            "workspaces:\n  Bad Name: { policies: p }\n",
            "public_url: ftp://x\n",
            "policy_poll_interval: soon\n",
        ] {
            assert!(Config::parse(bad, Path::new(".")).is_err(), "{bad}");
        }
    }
}
