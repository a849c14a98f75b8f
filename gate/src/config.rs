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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod destinations;
mod error;
mod load;
mod overrides;
mod raw;
mod secrets;

pub use destinations::LinkDestinations;
pub use error::ConfigError;
pub use overrides::{
    CONFIG_ENV, DATA_DIR_ENV, LISTEN_ENV, Overrides, PUBLIC_URL_ENV, STORE_ENV, Setting,
};
pub use raw::{EmailConfig, SlackConfig, WebhookConfig};
pub use secrets::{SecretSource, Secrets};

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
    /// How long a gate holds a delivery it claimed before another gate on
    /// the same PostgreSQL may send it (after a crash mid-send, say).
    pub lease: Duration,
}

/// The verifiable audit log's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The log's name: the signed-note key name of the deployment's
    /// checkpoint key, and the prefix of every workspace log's origin
    /// (`<log_name>/<workspace>`). The same for every gate of a deployment;
    /// by default the public URL without its scheme (`gate.example.com`).
    pub log_name: String,
    /// How often checkpoints are signed while events arrive (default 2 s).
    pub checkpoint_interval: Duration,
    /// Push each new checkpoint to the workspace's signed webhooks as an
    /// `audit.checkpoint` event (default on).
    pub push_checkpoints: bool,
}

/// The default log name for a public URL: without scheme, path slashes
/// kept, no trailing slash (`https://gate.example.com/` -> `gate.example.com`).
pub fn default_log_name(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    let name: String = rest
        .trim_end_matches('/')
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '+')
        .collect();
    if name.is_empty() {
        "countersign".to_owned()
    } else {
        name
    }
}

/// What one client connection may take: how long, and how many at once.
/// The timeouts close connections of clients that send slowly or not at
/// all, so they cannot hold the gate's sockets and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most; one more is answered 503 and closed.
    pub max: usize,
    /// From the moment a connection is ready for a request (just opened,
    /// or the previous response sent) until its request line and headers
    /// have all arrived. So it also bounds an idle keep-alive connection.
    pub header_timeout: Duration,
    /// From the request head until the whole body has arrived.
    pub body_timeout: Duration,
    /// A connection that neither sends nor receives a byte for this long
    /// is closed (a client that stopped reading its response, say).
    pub idle_timeout: Duration,
    /// On SIGTERM or Ctrl-C: how long requests in hand may take to finish
    /// before the gate exits anyway.
    pub shutdown_grace: Duration,
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
    /// Where the secrets shared by every gate of a deployment come from.
    pub secrets: Secrets,
    /// Checkpoints of the verifiable audit log.
    pub audit: AuditConfig,
    /// Which member Teams URLs named in policy files may receive approval
    /// links (the `teams:` section); none by default.
    pub link_destinations: LinkDestinations,
    /// Connection timeouts and cap.
    pub connections: ConnectionLimits,
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
                lease: Duration::from_secs(120),
            },
            secrets: Secrets::default(),
            audit: AuditConfig {
                log_name: default_log_name("http://127.0.0.1:8080"),
                checkpoint_interval: Duration::from_secs(2),
                push_checkpoints: true,
            },
            link_destinations: LinkDestinations::default(),
            connections: ConnectionLimits {
                max: 4096,
                header_timeout: Duration::from_secs(10),
                body_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(60),
                shutdown_grace: Duration::from_secs(4),
            },
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
    use std::path::Path;

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
    fn without_a_file_or_overrides_the_defaults_apply() {
        let c = Config::resolve(None, &Overrides::default()).unwrap();
        let d = Config::defaults();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.public_url, d.public_url);
        assert_eq!(c.data_dir, d.data_dir);
        assert_eq!(c.store, d.store);
        assert_eq!(c.workspaces, d.workspaces);
        assert_eq!(c.console, d.console);
        assert_eq!(c.audit, d.audit);
    }

    fn env(vars: &[(&'static str, &str)]) -> Overrides {
        let vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        Overrides::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let file = "listen: 127.0.0.1:7000\ndata_dir: ./filedata\n";
        let base = Path::new("/etc/cs");
        let c = Config::parse(file, base).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.data_dir, PathBuf::from("/etc/cs/./filedata"));

        let from_env = env(&[(LISTEN_ENV, "127.0.0.1:7001"), (DATA_DIR_ENV, "envdata")]);
        let c = Config::parse_with(file, base, &from_env).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7001");
        // Paths given outside the file are the current directory's, and
        // what derives from a value follows the value that won.
        assert_eq!(c.data_dir, PathBuf::from("envdata"));
        assert_eq!(
            c.store,
            StoreUrl::Sqlite(PathBuf::from("envdata/countersign.db"))
        );
        assert_eq!(c.public_url, "http://127.0.0.1:7001");
        assert_eq!(c.audit.log_name, "127.0.0.1:7001");

        let flags = Overrides {
            listen: Some(Setting {
                value: "127.0.0.1:7002".to_owned(),
                origin: "--listen",
            }),
            store: Some(Setting {
                value: "sqlite://flag.db".to_owned(),
                origin: "--store",
            }),
            ..Overrides::default()
        };
        let c = Config::parse_with(file, base, &flags.over(from_env)).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7002");
        assert_eq!(c.data_dir, PathBuf::from("envdata"));
        assert_eq!(c.store, StoreUrl::Sqlite(PathBuf::from("flag.db")));

        // A public URL in the file stays unless it is overridden itself.
        let with_url = format!("{file}public_url: https://gate.example.com\n");
        let c = Config::parse_with(&with_url, base, &env(&[(LISTEN_ENV, "0.0.0.0:8080")])).unwrap();
        assert_eq!(c.public_url, "https://gate.example.com");
        let c = Config::parse_with(
            &with_url,
            base,
            &env(&[(PUBLIC_URL_ENV, "https://other.example.com/")]),
        )
        .unwrap();
        assert_eq!(c.public_url, "https://other.example.com");
    }

    #[test]
    fn a_bad_override_is_named_by_its_flag_or_variable() {
        let err = |o: Overrides| {
            Config::parse_with("listen: 127.0.0.1:1\n", Path::new("."), &o)
                .err()
                .unwrap()
                .to_string()
        };
        let e = err(env(&[(LISTEN_ENV, "nowhere")]));
        assert!(e.contains("COUNTERSIGN_LISTEN `nowhere`"), "{e}");
        let e = err(env(&[(STORE_ENV, "mysql://app:s3cr3t@db/cs")]));
        assert!(e.contains("COUNTERSIGN_STORE"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = err(env(&[(PUBLIC_URL_ENV, "gate.example.com")]));
        assert!(e.contains("COUNTERSIGN_PUBLIC_URL"), "{e}");
        let e = err(Overrides {
            data_dir: Some(Setting {
                value: " ".to_owned(),
                origin: "--data-dir",
            }),
            ..Overrides::default()
        });
        assert!(e.contains("--data-dir"), "{e}");
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
    fn connection_limits_are_read_and_checked() {
        let c = Config::parse(
            "connections: { max: 100, header_timeout: 2s, body_timeout: 5s, idle_timeout: 1m, shutdown_grace: 1s }\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            c.connections,
            ConnectionLimits {
                max: 100,
                header_timeout: Duration::from_secs(2),
                body_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(60),
                shutdown_grace: Duration::from_secs(1),
            }
        );
        let d = Config::parse("connections: { max: 64 }\n", Path::new(".")).unwrap();
        assert_eq!(
            d.connections.header_timeout,
            Config::defaults().connections.header_timeout
        );
        for bad in [
            "connections: { max: 1 }\n",
            "connections: { header_timeout: 0s }\n",
            "connections: { body_timeout: soon }\n",
            "connections: { idle: 5s }\n",
        ] {
            assert!(Config::parse(bad, Path::new(".")).is_err(), "{bad}");
        }
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
