//! `serve`, `keys` and `receipt verify`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use countersign_gate::config::{CONFIG_ENV, Config, ConfigError, Overrides, Setting, StoreUrl};
use countersign_gate::receipts::{self, PublicKeyInfo, ReceiptSigner};
use countersign_gate::{keys, server};
use countersign_store::{Role, Store, StoreError};
use std::sync::Arc;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; it is printed once and only its hash is stored.
    Create {
        /// The workspace the key belongs to.
        #[arg(long)]
        workspace: String,
        /// What the key may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A note to recognise the key by.
        #[arg(long)]
        label: Option<String>,
        /// Binds an agent key to this actor: every run the key proposes is
        /// this actor's, and a request naming another actor is refused with
        /// 403 `actor_mismatch`. Without it, each request names its own
        /// actor (and the gate cannot check the claim).
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// Configuration file (default: built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List a workspace's keys (ids, roles, labels; never secrets).
    List {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Revoke a key by id.
    Revoke {
        /// The workspace.
        #[arg(long)]
        workspace: String,
        /// The key id (the 8 hex digits after `csk_`).
        key_id: String,
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// A key role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Intercept, read and report on the workspace's runs.
    Agent,
    /// Everything an agent may do, plus listing, reloads and audits.
    Admin,
}

/// `countersign serve`'s options: where the configuration comes from and
/// the settings most often changed without one.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file [env: COUNTERSIGN_CONFIG] (default: none; the
    /// built-in defaults: 127.0.0.1:8080, ./countersign-data, workspace
    /// `default` with ./policies).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, such as 0.0.0.0:8080 [env: COUNTERSIGN_LISTEN].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The URL people reach the gate at, used in approval links
    /// [env: COUNTERSIGN_PUBLIC_URL] (default: http://<listen>).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Directory for the SQLite database and the gate's own secrets
    /// [env: COUNTERSIGN_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// The store: sqlite://PATH or postgres://USER@HOST:PORT/DB
    /// [env: COUNTERSIGN_STORE] (default: sqlite://<data-dir>/countersign.db).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

/// `countersign health`'s options.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The gate's base URL (default: the configured listen address, with
    /// 0.0.0.0 or [::] asked on the loopback address).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Configuration file [env: COUNTERSIGN_CONFIG], read for the listen
    /// address when --url is not given.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The configuration of a command: `path`, else the file named by
/// `COUNTERSIGN_CONFIG`, else the defaults; `flags` over the
/// `COUNTERSIGN_*` variables over that.
fn resolve_config(path: Option<&Path>, flags: Overrides) -> Result<Config, ExitCode> {
    let fail = |e: ConfigError| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    };
    let from_env = Overrides::from_env().map_err(fail)?;
    let env_path = std::env::var_os(CONFIG_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    Config::resolve(path.or(env_path.as_deref()), &flags.over(from_env)).map_err(fail)
}

/// The configuration of a command that has only `--config`.
pub(super) fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    resolve_config(path, Overrides::default())
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

pub(super) fn store_error(e: &StoreError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Opens the configured store for a command that reads or changes data
/// already there. A missing SQLite file is an error, not a new empty
/// database: run from the wrong directory, `audit verify` would otherwise
/// report an empty chain as sound and `keys revoke` a key as unknown.
pub(super) async fn open_existing(config: &Config) -> Result<Arc<dyn Store>, ExitCode> {
    if let StoreUrl::Sqlite(path) = &config.store {
        if !path.exists() {
            eprintln!(
                "error: no database at `{}`. Run this command from the directory \
                 `countersign serve` runs in, or pass the gate's --config FILE.",
                path.display()
            );
            return Err(ExitCode::FAILURE);
        }
    }
    server::open_store(config)
        .await
        .map_err(|e| store_error(&e))
}

/// `countersign serve`
pub fn serve(args: ServeArgs) -> ExitCode {
    let setting =
        |value: Option<String>, origin: &'static str| value.map(|value| Setting { value, origin });
    let flags = Overrides {
        listen: setting(args.listen, "--listen"),
        public_url: setting(args.public_url, "--public-url"),
        data_dir: setting(args.data_dir, "--data-dir"),
        store: setting(args.store, "--store"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Log lines go through a buffer to a writer thread (one `write` for
    // many lines); `_flusher` writes what is left when serve returns.
    let (writer, _flusher) = match super::log_writer::spawn(std::io::stderr()) {
        Ok((w, f)) => (BoxMakeWriter::new(w), Some(f)),
        Err(e) => {
            eprintln!("warning: no log writer thread ({e}); logging straight to stderr");
            (BoxMakeWriter::new(std::io::stderr), None)
        }
    };
    {
        use std::io::IsTerminal as _;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_writer(writer)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
    let config = match resolve_config(args.config.as_deref(), flags) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(server::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(server::StartError::Policies {
            workspace,
            path,
            diagnostics,
        }) => {
            let err = countersign_engine::PolicyError::from_diagnostics(diagnostics);
            super::render::print_policy_error(&err);
            eprintln!(
                "error: the policies of workspace `{workspace}` (`{}`) are invalid; not starting",
                path.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The base URL to reach a gate listening on `listen` from this machine:
/// an unspecified address (0.0.0.0, [::]) is asked on its loopback.
fn local_url(listen: std::net::SocketAddr) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, listen.port()))
}

/// `countersign health`: GET /readyz (the process is up and its store
/// answers) within 5 s; exit 0 on 200, 1 otherwise, with the reason.
pub fn health(args: HealthArgs) -> ExitCode {
    let base = match args.url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => match load_config(args.config.as_deref()) {
            Ok(c) => local_url(c.listen),
            Err(code) => return code,
        },
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let url = format!("{base}/readyz");
    let answer = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Ok::<_, String>((status, body))
    });
    match answer {
        Ok((status, _)) if status == reqwest::StatusCode::OK => {
            outln!("ready: {url}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!(
                "not ready: {url} answered {status}: {}",
                body.chars().take(300).collect::<String>()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("not ready: cannot reach {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `countersign keys …`
pub fn keys(cmd: KeysCommand) -> ExitCode {
    let (workspace, config_path) = match &cmd {
        KeysCommand::Create {
            workspace, config, ..
        }
        | KeysCommand::List { workspace, config }
        | KeysCommand::Revoke {
            workspace, config, ..
        } => (workspace.clone(), config.clone()),
    };
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if config.workspace(&workspace).is_none() {
        let names: Vec<&str> = config.workspaces.iter().map(|w| w.name.as_str()).collect();
        eprintln!(
            "error: workspace `{workspace}` is not configured (configured: {})",
            names.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let opened = if matches!(cmd, KeysCommand::Create { .. }) {
            // A key may be made before the gate first starts.
            server::open_store(&config)
                .await
                .map_err(|e| store_error(&e))
        } else {
            open_existing(&config).await
        };
        let store = match opened {
            Ok(s) => s,
            Err(code) => return code,
        };
        let now = chrono::Utc::now();
        match cmd {
            KeysCommand::Create {
                role, label, actor, ..
            } => {
                let new = match keys::generate() {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                let role = match role {
                    RoleArg::Agent => Role::Agent,
                    RoleArg::Admin => Role::Admin,
                };
                match store
                    .create_bound_key(&workspace, &new.key_id, &new.hash, role, label, actor, now)
                    .await
                {
                    Ok(k) => {
                        outln!("{}", new.secret);
                        let bound = k
                            .actor
                            .map(|a| format!(" bound to actor `{a}`"))
                            .unwrap_or_default();
                        eprintln!(
                            "created {} key {}{bound} for workspace `{workspace}` in {}; it is shown only once",
                            role.as_str(),
                            new.key_id,
                            config.store.describe()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => store_error(&e),
                }
            }
            KeysCommand::List { .. } => match store.list_keys(&workspace).await {
                Ok(list) => {
                    outln!(
                        "{:<10} {:<6} {:<28} {:<28} {:<20} label",
                        "key_id",
                        "role",
                        "created",
                        "revoked",
                        "actor"
                    );
                    for k in list {
                        // `-` for an unbound key: its requests name their own actor.
                        outln!(
                            "{:<10} {:<6} {:<28} {:<28} {:<20} {}",
                            k.key_id,
                            k.role.as_str(),
                            countersign_store::format_ts(k.created_at),
                            k.revoked_at
                                .map(countersign_store::format_ts)
                                .unwrap_or_else(|| "-".to_owned()),
                            k.actor.as_deref().unwrap_or("-"),
                            k.label.unwrap_or_default()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => store_error(&e),
            },
            KeysCommand::Revoke { key_id, .. } => {
                let before = match store.list_keys(&workspace).await {
                    Ok(list) => list.into_iter().find(|k| k.key_id == key_id),
                    Err(e) => return store_error(&e),
                };
                if let Some(at) = before.as_ref().and_then(|k| k.revoked_at) {
                    outln!(
                        "{key_id} was already revoked at {}",
                        countersign_store::format_ts(at)
                    );
                    return ExitCode::SUCCESS;
                }
                match store.revoke_key(&workspace, &key_id, now).await {
                    Ok(k) => {
                        outln!("revoked {} ({})", k.key_id, k.role.as_str());
                        ExitCode::SUCCESS
                    }
                    Err(e) => store_error(&e),
                }
            }
        }
    })
}

/// `countersign receipt verify FILE`
pub fn receipt_verify(
    file: &Path,
    keys_file: Option<&Path>,
    public_key: Option<String>,
    config_path: Option<&Path>,
    checkpoint: Option<&Path>,
    gate: Option<&str>,
) -> ExitCode {
    let fail = |m: String| {
        eprintln!("error: {m}");
        ExitCode::FAILURE
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot read `{}`: {e}", file.display())),
    };
    let keys: Vec<PublicKeyInfo> = if let Some(path) = keys_file {
        #[derive(serde::Deserialize)]
        struct KeysDoc {
            keys: Vec<PublicKeyInfo>,
        }
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<KeysDoc>(&t).map_err(|e| e.to_string()))
        {
            Ok(doc) => doc.keys,
            Err(e) => return fail(format!("cannot read keys from `{}`: {e}", path.display())),
        }
    } else if let Some(b64) = public_key {
        let bytes = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(b64.trim())
        };
        match bytes
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|a| ed25519_dalek::VerifyingKey::from_bytes(&a).ok())
        {
            Some(k) => vec![receipts::describe(&k)],
            None => {
                return fail(
                    "--public-key must be a base64 Ed25519 public key (32 bytes)".to_owned(),
                );
            }
        }
    } else {
        let config = match load_config(config_path) {
            Ok(c) => c,
            Err(code) => return code,
        };
        let source = &config.secrets.receipt_key;
        if !countersign_gate::secrets::is_present(source, &config.data_dir, receipts::KEY_FILE) {
            return fail(format!(
                "no public key given and no signing key in `{}`; pass --keys FILE (saved from GET /v1/receipt-keys) or --public-key",
                config.data_dir.display()
            ));
        }
        match countersign_gate::secrets::load_one(source, &config.data_dir, receipts::KEY_FILE) {
            Ok(seed) => vec![ReceiptSigner::from_seed(seed).public().clone()],
            Err(e) => return fail(e.to_string()),
        }
    };
    // Read strictly: duplicate keys, inexact numbers, trailing content and
    // members the signature does not cover are refused, not ignored.
    match receipts::verify_text(&text, &keys) {
        Ok(signed) => {
            let proof =
                match super::receipt_check::receipt_log_check(&signed, &keys, checkpoint, gate) {
                    Ok(line) => line,
                    Err(e) => return fail(format!("`{}` does not verify: {e}", file.display())),
                };
            let r = &signed["receipt"];
            outln!(
                "valid receipt: run {} ({}), {} / {}, signed by key {}",
                r["run_id"].as_str().unwrap_or("?"),
                r["action"].as_str().unwrap_or("?"),
                r["decision"]["governance_status"].as_str().unwrap_or("?"),
                r["execution_status"].as_str().unwrap_or("?"),
                signed["signature"]["key_id"].as_str().unwrap_or("?")
            );
            outln!("{proof}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("`{}` does not verify: {e}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::local_url;

    #[test]
    fn health_asks_an_unspecified_listen_address_on_its_loopback() {
        let url = |s: &str| local_url(s.parse().unwrap());
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080");
        assert_eq!(url("10.1.2.3:9000"), "http://10.1.2.3:9000");
    }
}
