//! Loading a configuration: read the file, parse it into the raw structs,
//! check every value and resolve relative paths, with errors that say what
//! to write instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::overrides::{Overrides, Setting};
use super::raw::RawConfig;
use super::{
    AuditConfig, Config, ConfigError, ConnectionLimits, DeliveryPolicy, LinkDestinations,
    RateLimit, StoreUrl, WorkspaceConfig, default_log_name, parse_config_duration,
};

impl Config {
    /// Reads a config file; relative paths in it are relative to the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, &Overrides::default())
    }

    /// Reads a config file, then applies `overrides` (flags and
    /// environment variables) over its values.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse_with(&text, base, overrides).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        Self::parse_with(text, base, &Overrides::default())
    }

    /// Parses config text with `overrides` applied over it, before any
    /// value is derived from another: a `--listen` flag changes the default
    /// public URL, a `COUNTERSIGN_DATA_DIR` the default SQLite file. Paths
    /// in the text are resolved against `base`, overriding paths against
    /// the current directory.
    pub fn parse_with(text: &str, base: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: plain_words(&e.without_snippet().to_string()),
        })?;
        let d = Self::defaults();
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        // Each value with the name an error should point at: the file's
        // key, or the flag or variable that overrode it.
        let given = |o: &Option<Setting>, file: Option<String>, key: &'static str| {
            o.as_ref()
                .map(|s| (s.value.clone(), s.origin, true))
                .or(file.map(|v| (v, key, false)))
        };
        let listen = match given(&overrides.listen, raw.listen, "listen") {
            Some((l, origin, _)) => l.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "{origin} `{l}` is not an address such as 127.0.0.1:8080"
                ))
            })?,
            None => d.listen,
        };
        let data_dir = match &overrides.data_dir {
            Some(s) if s.value.trim().is_empty() => {
                return Err(ConfigError::Invalid(format!(
                    "{} must name a directory",
                    s.origin
                )));
            }
            Some(s) => PathBuf::from(&s.value),
            None => raw.data_dir.map_or_else(|| rel(d.data_dir), rel),
        };
        let store = match given(&overrides.store, raw.store, "store") {
            None => StoreUrl::Sqlite(data_dir.join("countersign.db")),
            Some((s, _, _)) if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                StoreUrl::Postgres(s)
            }
            Some((s, origin, overridden)) => match s.strip_prefix("sqlite://") {
                // An overriding path is the current directory's, as a
                // shell user means it; the file's is the file's.
                Some(p) if !p.is_empty() && overridden => StoreUrl::Sqlite(PathBuf::from(p)),
                Some(p) if !p.is_empty() => StoreUrl::Sqlite(rel(PathBuf::from(p))),
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "{origin} `{}` must start with sqlite:// or postgres://",
                        super::redact_password(&s)
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
        let (public_url, public_url_origin) =
            match given(&overrides.public_url, raw.public_url, "public_url") {
                Some((u, origin, _)) => (u.trim_end_matches('/').to_owned(), origin),
                None => (format!("http://{listen}"), "public_url"),
            };
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "{public_url_origin} `{public_url}` must start with http:// or https://"
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
        let connections = match raw.connections {
            None => d.connections,
            Some(r) => {
                let dur = |v: Option<String>, default: Duration, what: &str| match v {
                    None => Ok(default),
                    Some(s) => parse_config_duration(&s)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            ConfigError::Invalid(format!(
                                "connections.{what} `{s}` is not a duration such as 10s"
                            ))
                        }),
                };
                let max = r.max.unwrap_or(d.connections.max);
                if !(16..=1_000_000).contains(&max) {
                    return Err(ConfigError::Invalid(
                        "connections.max must be between 16 and 1000000".to_owned(),
                    ));
                }
                ConnectionLimits {
                    max,
                    header_timeout: dur(
                        r.header_timeout,
                        d.connections.header_timeout,
                        "header_timeout",
                    )?,
                    body_timeout: dur(r.body_timeout, d.connections.body_timeout, "body_timeout")?,
                    idle_timeout: dur(r.idle_timeout, d.connections.idle_timeout, "idle_timeout")?,
                    shutdown_grace: dur(
                        r.shutdown_grace,
                        d.connections.shutdown_grace,
                        "shutdown_grace",
                    )?,
                }
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
                lease: dur(r.lease, d.delivery.lease, "lease")?,
            },
        };
        let audit = match raw.audit {
            None => AuditConfig {
                log_name: default_log_name(&public_url),
                ..d.audit
            },
            Some(a) => {
                let log_name = match a.log_name {
                    None => default_log_name(&public_url),
                    Some(n) if valid_log_name(&n) => n,
                    Some(n) => {
                        return Err(ConfigError::Invalid(format!(
                            "audit.log_name `{n}` must be 1 to 200 printable characters without spaces or `+`"
                        )));
                    }
                };
                let checkpoint_interval = match a.checkpoint_interval {
                    None => d.audit.checkpoint_interval,
                    Some(s) => parse_config_duration(&s)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            ConfigError::Invalid(format!(
                                "audit.checkpoint_interval `{s}` is not a duration"
                            ))
                        })?,
                };
                AuditConfig {
                    log_name,
                    checkpoint_interval,
                    push_checkpoints: a.push_checkpoints.unwrap_or(true),
                }
            }
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
        let link_destinations =
            raw.teams
                .map_or_else(LinkDestinations::default, |t| LinkDestinations {
                    allowed_hosts: t
                        .allowed_hosts
                        .into_iter()
                        .map(|h| h.trim().to_ascii_lowercase())
                        .collect(),
                    allowed_urls: t.allowed_urls,
                });
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
        let secrets = match raw.secrets {
            Some(s) => s.resolve(rel)?,
            None => super::Secrets::default(),
        };
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
            secrets,
            audit,
            link_destinations,
            connections,
        })
    }

    /// Loads `path` if given, else the defaults.
    pub fn from_option(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load(p),
            None => Ok(Self::defaults()),
        }
    }

    /// The configuration a command runs with: the file at `path` if one
    /// is given, else the defaults, with `overrides` over either. Without
    /// a file, relative default paths (`countersign-data`, `policies`) are
    /// the current directory's, as in [`Config::defaults`].
    pub fn resolve(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load_with(p, overrides),
            None => Self::parse_with("", Path::new(""), overrides),
        }
    }
}

/// A signed-note key name: printable, no spaces, no `+` (C2SP signed-note).
fn valid_log_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && name.chars().all(|c| c.is_ascii_graphic() && c != '+')
}

fn valid_workspace_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
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
