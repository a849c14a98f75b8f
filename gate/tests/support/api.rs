//! What the API tests share: a gate on a loopback port with a manual
//! clock, keys, and JSON calls that return the status and body.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, StoreUrl, WorkspaceConfig};
use countersign_gate::{AppState, keys, server};
use countersign_store::Role;
use serde_json::Value;

pub const POLICY: &str = r#"version: 1
approvers:
  finance-leads:
    members:
      - { id: alice, email: alice@example.com }
      - { id: bob, email: bob@example.com }
    timeout: 24h
actions:
  send_invoice_reminder:
    risk: medium
    approvers: finance-leads
    rules:
      - name: large-amount
        when: payload.amount > 500
        decision: require_approval
        reason: Reminders above $500 need a finance lead
      - name: default
        decision: allow
  delete_customer:
    risk: critical
    rules:
      - name: never
        decision: block
        reason: Customers are never deleted by agents
"#;

pub struct Gate {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

pub struct Key(pub String);

impl Gate {
    pub async fn start(workspaces: &[&str], tweak: impl FnOnce(&mut Config)) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.data_dir = dir.path().join("data");
        config.store = StoreUrl::Sqlite(dir.path().join("data/countersign.db"));
        config.workspaces = workspaces
            .iter()
            .map(|w| {
                let p = dir.path().join(format!("policies-{w}"));
                std::fs::create_dir_all(&p).unwrap();
                std::fs::write(p.join("finance.yaml"), POLICY).unwrap();
                WorkspaceConfig::new(*w, p)
            })
            .collect();
        config.policy_poll_interval = Duration::from_secs(3600);
        tweak(&mut config);
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 5, 23, 13, 31, 8).unwrap(),
        ));
        let state = server::build_state(config, clock.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let s = state.clone();
        tokio::spawn(async move { server::serve_on(listener, s).await });
        Gate {
            base,
            http: reqwest::Client::new(),
            state,
            clock,
            dir,
        }
    }

    pub async fn key(&self, workspace: &str, role: Role) -> Key {
        let k = keys::generate().unwrap();
        self.state
            .store
            .create_key(workspace, &k.key_id, &k.hash, role, None, Utc::now())
            .await
            .unwrap();
        Key(k.secret)
    }

    /// An agent key bound to `actor` (`keys create --role agent --actor`).
    pub async fn bound_key(&self, workspace: &str, actor: &str) -> Key {
        let k = keys::generate().unwrap();
        self.state
            .store
            .create_bound_key(
                workspace,
                &k.key_id,
                &k.hash,
                Role::Agent,
                None,
                Some(actor.to_owned()),
                Utc::now(),
            )
            .await
            .unwrap();
        Key(k.secret)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&Key>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(&k.0);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, key: &Key, body: Value) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            path,
            Some(key),
            Some(body.to_string()),
        )
        .await
    }

    pub async fn get(&self, path: &str, key: &Key) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, Some(key), None).await
    }

    pub async fn intercept(&self, key: &Key, body: Value) -> (u16, Value) {
        self.post("/v1/intercept", key, body).await
    }
}

pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}
