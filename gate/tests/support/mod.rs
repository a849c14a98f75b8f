//! Shared test support: a gate serving on a loopback port, keys, HTTP calls,
//! and the Python tools some tests use as real peers.
#![allow(dead_code, reason = "each test crate uses part of this module")]

pub mod api;
pub mod approvals;
pub mod ui;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, StoreUrl, WorkspaceConfig};
use countersign_gate::{AppState, keys, server};
use countersign_store::Role;
use serde_json::Value;

pub struct Gate {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

pub struct Key(pub String);

/// Writes the policy into a fresh directory and starts a gate on it.
pub async fn start(policy: &str, tweak: impl FnOnce(&mut Config, &std::path::Path)) -> Gate {
    start_gate(policy, tweak, true).await
}

/// Like [`start`], but only the HTTP app is served: no delivery worker and
/// no background loops, so a test drives them itself (the worker would
/// otherwise send every delivery as soon as its run is recorded).
pub async fn start_without_worker(
    policy: &str,
    tweak: impl FnOnce(&mut Config, &std::path::Path),
) -> Gate {
    start_gate(policy, tweak, false).await
}

async fn start_gate(
    policy: &str,
    tweak: impl FnOnce(&mut Config, &std::path::Path),
    worker: bool,
) -> Gate {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policies");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("policy.yaml"), policy).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config::defaults();
    config.public_url = base.clone();
    config.data_dir = dir.path().join("data");
    config.store = StoreUrl::Sqlite(dir.path().join("data/countersign.db"));
    config.workspaces = vec![WorkspaceConfig::new("default", p)];
    config.policy_poll_interval = Duration::from_secs(3600);
    config.console = false;
    // The approval tests count what their webhooks receive; checkpoint
    // pushes are tested in `audit_log`.
    config.audit.push_checkpoints = false;
    config.delivery.poll_interval = Duration::from_millis(50);
    config.delivery.base_delay = Duration::from_millis(100);
    config.delivery.max_delay = Duration::from_millis(400);
    tweak(&mut config, dir.path());
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 26, 9, 0, 0).unwrap(),
    ));
    let state = server::build_state(config, clock.clone()).await.unwrap();
    let s = state.clone();
    if worker {
        tokio::spawn(async move { server::serve_on(listener, s).await });
    } else {
        let app = countersign_gate::app(s);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
        });
    }
    Gate {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        clock,
        dir,
    }
}

impl Gate {
    pub async fn key(&self, role: Role) -> Key {
        self.key_in("default", role).await
    }

    /// A key of another workspace.
    pub async fn key_in(&self, workspace: &str, role: Role) -> Key {
        let k = keys::generate().unwrap();
        self.state
            .store
            .create_key(workspace, &k.key_id, &k.hash, role, None, Utc::now())
            .await
            .unwrap();
        Key(k.secret)
    }

    pub async fn post_json(&self, path: &str, key: Option<&Key>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(&k.0);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get_json(&self, path: &str, key: &Key) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&key.0)
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }

    pub async fn run(&self, key: &Key, id: &str) -> Value {
        self.get_json(&format!("/v1/runs/{id}"), key).await
    }

    /// Polls until `cond` holds for the run (the delivery worker is async).
    pub async fn wait_run(
        &self,
        key: &Key,
        id: &str,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..100 {
            let r = self.run(key, id).await;
            if cond(&r) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}: {}", self.run(key, id).await);
    }
}

/// Makes sure a Python package is importable, installing it from PyPI
/// if needed. Returns false (and says why) when that is impossible.
pub fn python_package(import: &str, pip_name: &str) -> bool {
    let ok = |m: &str| {
        Command::new("python3")
            .args(["-c", &format!("import {m}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok(import) {
        return true;
    }
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", pip_name])
        .status();
    ok(import)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server on loopback (aiosmtpd) writing to a maildir; killed
/// when dropped.
pub struct Smtp {
    child: std::process::Child,
    pub maildir: std::path::PathBuf,
    pub port: u16,
}

impl Smtp {
    /// The gate's email settings for this server: plain SMTP, no login.
    pub fn email_config(&self) -> countersign_gate::config::EmailConfig {
        countersign_gate::config::EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(self.port),
            security: "plain".into(),
            username: None,
            password: None,
            password_env: None,
            from: "countersign@example.com".into(),
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn smtp_server(dir: &std::path::Path) -> Smtp {
    assert!(
        python_package("aiosmtpd", "aiosmtpd"),
        "aiosmtpd (PyPI) is needed for the email tests"
    );
    let port = free_port();
    let maildir = dir.join("maildir");
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(&maildir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Dropping the Smtp kills and reaps the child on every path.
    let server = Smtp {
        child,
        maildir,
        port,
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    panic!("the SMTP server did not start");
}

/// Every message in the maildir, decoded (quoted-printable soft breaks
/// undone) so links can be found.
pub fn mails(maildir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(maildir.join(sub)) {
            for e in entries.flatten() {
                let raw = std::fs::read_to_string(e.path()).unwrap_or_default();
                out.push(
                    raw.replace("=\r\n", "")
                        .replace("=\n", "")
                        .replace("=3D", "="),
                );
            }
        }
    }
    out
}
