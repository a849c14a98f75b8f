//! Starting the gate: open the store, load every workspace's policies,
//! start the background loops, serve until asked to stop.

mod accept;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use countersign_store::{LogKey, PostgresStore, SqliteStore, Store, StoreError};
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, StoreUrl};
use crate::keys::KeyCache;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::receipts::ReceiptSigner;
use crate::state::AppState;
use crate::workspace::Workspace;

/// Why the gate could not start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StartError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// A workspace's policies are invalid.
    #[error("the policies of workspace `{workspace}` (`{}`) are invalid", path.display())]
    Policies {
        /// Which workspace.
        workspace: String,
        /// Its policy directory or file, as configured.
        path: std::path::PathBuf,
        /// The diagnostics.
        #[related]
        diagnostics: Vec<countersign_engine::PolicyDiagnostic>,
    },
    /// The receipt key could not be loaded.
    #[error(transparent)]
    Receipts(#[from] crate::receipts::ReceiptError),
    /// A transport could not be set up, or a secret is missing.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The approval token secret could not be loaded.
    #[error("approval token secret: {0}")]
    TokenSecret(String),
    /// A deployment secret could not be loaded.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Environment variable that holds the audit log key (64 hex digits),
/// instead of the key file in the data directory.
pub const LOG_KEY_ENV: &str = "COUNTERSIGN_AUDIT_LOG_KEY";

/// File name of the audit log key inside the data directory.
pub const LOG_KEY_FILE: &str = crate::secrets::LOG_KEY_FILE;

/// The key the store authenticates every event with: from
/// [`LOG_KEY_ENV`], else where `secrets.log_key_file`/`log_key_env` say,
/// else the data directory's key file, created (mode 0600) on first use.
/// Never kept in the database.
pub fn load_log_key(config: &Config) -> Result<LogKey, StoreError> {
    let unavailable = |message: String| StoreError::Unavailable { message };
    if let Ok(text) = std::env::var(LOG_KEY_ENV) {
        return LogKey::from_hex(&text).map_err(|e| unavailable(format!("{LOG_KEY_ENV}: {e}")));
    }
    let bytes = crate::secrets::load_one(&config.secrets.log_key, &config.data_dir, LOG_KEY_FILE)
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(LogKey::from_bytes(bytes))
}

/// Opens the configured store with the audit log key ([`load_log_key`]).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let key = load_log_key(config)?;
    match &config.store {
        StoreUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable {
                    message: format!("cannot create `{}`: {e}", dir.display()),
                })?;
            }
            Ok(Arc::new(SqliteStore::open(path, key)?))
        }
        StoreUrl::Postgres(url) => Ok(Arc::new(PostgresStore::connect(url, key).await?)),
    }
}

/// Builds the shared state: store, workspaces, signer. The policies are
/// loaded first, so a gate whose policies are invalid stops before it
/// creates its data directory or database.
pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
    let workspaces = open_workspaces(&config)?;
    let store = open_store(&config).await?;
    let postgres = match &config.store {
        StoreUrl::Postgres(url) => Some(url.clone()),
        StoreUrl::Sqlite(_) => None,
    };
    let state = build_state_from_parts(config, store, workspaces, clock).await?;
    // Gates sharing the database wake each other's delivery workers.
    if let Some(url) = postgres {
        state.outbox.connect_postgres(&url, None)?;
    }
    Ok(state)
}

/// Builds the shared state around an already opened store.
pub async fn build_state_with_store(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> Result<AppState, StartError> {
    let workspaces = open_workspaces(&config)?;
    build_state_from_parts(config, store, workspaces, clock).await
}

/// Loads and validates every workspace's policies; touches nothing on disk.
fn open_workspaces(config: &Config) -> Result<Vec<Workspace>, StartError> {
    config
        .workspaces
        .iter()
        .map(|w| {
            Workspace::open(&w.name, &w.policies, &config.link_destinations).map_err(|e| {
                StartError::Policies {
                    workspace: w.name.clone(),
                    path: w.policies.clone(),
                    diagnostics: e.diagnostics().to_vec(),
                }
            })
        })
        .collect()
}

async fn build_state_from_parts(
    config: Config,
    store: Arc<dyn Store>,
    opened: Vec<Workspace>,
    clock: Arc<dyn Clock>,
) -> Result<AppState, StartError> {
    let mut workspaces = BTreeMap::new();
    for (w, ws) in config.workspaces.iter().zip(opened) {
        // What the policies' aggregates read is built before they decide.
        crate::limits::prepare(&*store, &w.name, &ws.policies()).await?;
        store
            .record_policy_reload(
                &w.name,
                ws.policies().version(),
                true,
                Vec::new(),
                clock.now(),
            )
            .await?;
        workspaces.insert(w.name.clone(), Arc::new(ws));
    }
    // Shared by every gate of a deployment when the config names them.
    let secrets = crate::secrets::load(&config.secrets, &config.data_dir)?;
    let signer = ReceiptSigner::from_seed(secrets.receipt_key);
    let checkpoints = crate::checkpoints::Checkpointer::new(&config.audit.log_name, signer.seed())
        .map_err(|e| crate::config::ConfigError::Invalid(format!("audit.log_name: {e}")))?;
    let channels = crate::approvals::channels::Channels::from_config(&config)?;
    let token_secret = crate::approvals::tokens::TokenSecret::from_bytes(secrets.approval_token);
    Ok(AppState {
        channels: Arc::new(channels),
        token_secret: Arc::new(token_secret),
        sign_in_limiter: Arc::default(),
        live_streams: Arc::new(tokio::sync::Semaphore::new(crate::state::MAX_LIVE_STREAMS)),
        outbox: Arc::default(),
        shutdown: crate::shutdown::Shutdown::default(),
        keys: Arc::new(KeyCache::default()),
        limiter: Arc::new(RateLimiter::new(config.rate_limit)),
        config: Arc::new(config),
        store,
        workspaces: Arc::new(workspaces),
        signer: Arc::new(signer),
        checkpoints: Arc::new(checkpoints),
        metrics: Arc::new(Metrics::default()),
        clock,
    })
}

/// Starts the delivery worker and the checkpoint signer (the returned
/// handle ends when both have stopped, after the gate is asked to stop),
/// and reloads policies whose files changed and expires overdue runs until
/// the process ends.
pub fn spawn_background(state: &AppState) -> tokio::task::JoinHandle<()> {
    let delivery = crate::approvals::worker::spawn(state.clone());
    let checkpoints = crate::checkpoints::worker::spawn(state.clone());
    let worker = tokio::spawn(async move {
        let _ = delivery.await;
        let _ = checkpoints.await;
    });
    let s = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(s.config.policy_poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for ws in s.workspaces.values() {
                if !ws.files_changed() {
                    continue;
                }
                let report = ws.reload_with_store(&*s.store).await;
                s.metrics.record_reload(report.ok);
                if report.ok {
                    tracing::info!(workspace = ws.name(), version = %report.policy_version, changed = report.changed, "policies reloaded");
                } else {
                    tracing::warn!(workspace = ws.name(), diagnostics = ?report.diagnostics, "policy reload rejected; previous version stays in force");
                }
                if let Err(e) = s
                    .store
                    .record_policy_reload(
                        ws.name(),
                        &report.policy_version,
                        report.ok,
                        report.diagnostics,
                        s.clock.now(),
                    )
                    .await
                {
                    tracing::error!(error = %e, "cannot record a policy reload");
                }
            }
        }
    });
    let s = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut passes: u64 = 0;
        loop {
            tick.tick().await;
            passes += 1;
            // Hourly: forget dashboard sign-in links and sessions a day
            // after they expired.
            if passes % 3600 == 1 {
                let before = s.clock.now() - chrono::Duration::days(1);
                match s.store.prune_grants(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(pruned = n, "expired dashboard sessions removed"),
                    Err(e) => tracing::warn!(error = %e, "pruning dashboard sessions failed"),
                }
            }
            match s.store.expire_due(s.clock.now()).await {
                Ok(runs) => {
                    for r in runs {
                        tracing::info!(
                            run = %r.proposal.run_id,
                            workspace = %r.proposal.workspace,
                            "run expired"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "expiry pass failed"),
            }
        }
    });
    worker
}

/// Serves the gate on the configured address until Ctrl-C or SIGTERM.
pub async fn serve(mut config: Config) -> Result<(), StartError> {
    config.connections.max = accept::fit_to_open_file_limit(config.connections.max);
    let listen = config.listen;
    let state = build_state(config, Arc::new(SystemClock)).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    tokio::spawn(crate::shutdown::watch_signals(state.shutdown.clone()));
    serve_on(listener, state).await
}

/// Whether `public_url`'s host is an unspecified address (`0.0.0.0`,
/// `[::]`): the default when the gate listens on every interface, and no
/// link a person can follow.
fn public_url_is_unreachable(public_url: &str) -> bool {
    url::Url::parse(public_url)
        .ok()
        .and_then(|u| match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.is_unspecified()),
            Some(url::Host::Ipv6(ip)) => Some(ip.is_unspecified()),
            _ => None,
        })
        .unwrap_or(false)
}

/// Serves on an already bound listener until `state.shutdown` is asked
/// (by [`serve`]'s signal handler, or a test): then open connections
/// finish the request in hand, live streams end, the delivery worker stops
/// between sends, and this returns, after `connections.shutdown_grace` at
/// most (a send still in progress then is dropped; its delivery's claim
/// expires and it is sent again).
pub async fn serve_on(listener: TcpListener, state: AppState) -> Result<(), StartError> {
    let worker = spawn_background(&state);
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    for (name, ws) in state.workspaces.iter() {
        tracing::info!(workspace = %name, policies = %ws.policy_dir().display(), version = %ws.policies().version(), "workspace ready");
    }
    tracing::info!(%addr, "countersign gate listening");
    println!("countersign listening on http://{addr}");
    let public_url = &state.config.public_url;
    tracing::info!(
        "dashboard at {public_url}/ui (sign in with an admin key: countersign keys create --workspace <name> --role admin)"
    );
    println!("dashboard at {public_url}/ui");
    if public_url_is_unreachable(public_url) {
        tracing::warn!(
            %public_url,
            "public_url names no address people can open, and approval links use it: set public_url, --public-url or COUNTERSIGN_PUBLIC_URL to the URL the gate is reached at"
        );
    }
    let limits = state.config.connections;
    let shutdown = state.shutdown.clone();
    let deadline = accept::serve(listener, crate::app::app(state), limits, shutdown).await;
    if tokio::time::timeout_at(deadline, worker).await.is_err() {
        tracing::warn!(
            "the delivery worker was still sending; its claims expire and another pass sends them"
        );
    }
    tracing::info!("stopped");
    Ok(())
}
