//! Several gates, one PostgreSQL: real `countersign serve` processes that
//! share a database and the secrets made by `countersign secrets generate`.
//!
//! - Shared secrets: an approval link sent by gate A is answered on gate B,
//!   a dashboard session and its CSRF tokens from A work on B, and a receipt
//!   signed by A verifies with B's `/v1/receipt-keys`.
//! - Under concurrent load on both gates, gate A is killed with SIGKILL:
//!   every acknowledged decision and answer is there afterwards, every
//!   approval request reached the test's webhook receiver at least once, a
//!   link sent by the killed gate is answered on the survivor, and the
//!   survivor's dashboard shows the runs of both.
//!
//! Each test keeps its tables in a schema of its own on the server named by
//! `COUNTERSIGN_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped afterwards. When that
//! server is unreachable the tests print `SKIPPED: ...` and pass, unless
//! `COUNTERSIGN_REQUIRE_POSTGRES=1`, which makes them fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

const POLICY: &str = r#"version: 1
approvers:
  leads:
    members:
      - { id: alice, email: alice@example.com }
      - { id: bob, email: bob@example.com }
    quorum: 1
    timeout: 24h
actions:
  pay:
    risk: high
    approvers: leads
    rules:
      - name: large
        when: payload.amount > 500
        decision: require_approval
        reason: Large payments need a lead
      - name: default
        decision: allow
"#;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn pg_url() -> String {
    std::env::var("COUNTERSIGN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema on the test server, dropped on drop; `None` (after
/// printing why) when the server is unreachable and not required.
struct Schema {
    name: String,
}

impl Schema {
    async fn create(test: &str) -> Option<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("gates_{test}_{}_{nanos}", std::process::id());
        let made = tokio::time::timeout(
            Duration::from_secs(10),
            countersign_store::PostgresStore::connect_with_schema(
                &pg_url(),
                &name,
                countersign_store::LogKey::from_bytes([7; 32]),
            ),
        )
        .await;
        match made {
            Ok(Ok(_)) => Some(Self { name }),
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                assert!(
                    std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "PostgreSQL at {} is required: {why}",
                    pg_url()
                );
                eprintln!("SKIPPED: PostgreSQL at {} is unreachable: {why}", pg_url());
                None
            }
        }
    }

    /// The store URL of the gates: the test server, this schema.
    fn store_url(&self) -> String {
        let sep = if pg_url().contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", pg_url(), self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let url = pg_url();
        // Drop runs outside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

/// The webhook receiver of the test: every accepted event body, in arrival
/// order; while `refuse` is set it answers 500 and only counts.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<Value>>>, Arc<AtomicBool>, Arc<Mutex<usize>>);

impl Hooks {
    async fn serve() -> (Self, String) {
        async fn receive(State(h): State<Hooks>, body: String) -> StatusCode {
            // Only approval requests: the gates also push `audit.checkpoint`
            // events to the same webhook, which this test does not count.
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if v["type"] != "approval.requested" {
                return StatusCode::NO_CONTENT;
            }
            if h.1.load(Ordering::SeqCst) {
                *h.2.lock().unwrap() += 1;
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            h.0.lock().unwrap().push(v);
            StatusCode::NO_CONTENT
        }
        let hooks = Self::default();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hooks, url)
    }

    fn events(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    /// The answer URL of the first event for `run`, waiting for it.
    async fn answer_url(&self, run: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.events().iter().find(|e| e["data"]["run_id"] == run) {
                return e["data"]["answer_url"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no webhook event for {run}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The test's directory: policies, shared secrets, one config per gate.
struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Site {
    fn new(schema: &Schema, hook_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("policies")).unwrap();
        std::fs::write(root.join("policies/policy.yaml"), POLICY).unwrap();
        let site = Self { _dir: dir, root };
        // The documented way to make a deployment's secrets.
        let out = site.countersign(None, &["secrets", "generate", "--dir", "secrets"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for gate in ["a", "b"] {
            let port = free_port();
            let yaml = format!(
                "listen: 127.0.0.1:{port}\n\
                 public_url: http://127.0.0.1:{port}\n\
                 data_dir: ./data-{gate}\n\
                 store: \"{}\"\n\
                 rate_limit: {{ per_second: 1000000, burst: 1000000 }}\n\
                 console: false\n\
                 secrets:\n  approval_token_file: secrets/approval-token-secret\n  receipt_key_file: secrets/receipt-signing-key\n  log_key_file: secrets/audit-log-key\n\
                 delivery: {{ max_attempts: 100, poll_interval: 50ms, base_delay: 100ms, max_delay: 400ms, lease: 2s }}\n\
                 workspaces:\n  default:\n    policies: ./policies\n    webhooks:\n      - {{ name: ops, url: \"{hook_url}\", secret: {WHSEC} }}\n",
                schema.store_url()
            );
            std::fs::write(site.config(gate), yaml).unwrap();
        }
        site
    }

    fn config(&self, gate: &str) -> PathBuf {
        self.root.join(format!("gate-{gate}.yaml"))
    }

    fn countersign(&self, gate: Option<&str>, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_countersign"));
        c.args(args);
        if let Some(g) = gate {
            c.arg("--config").arg(self.config(g));
        }
        c.current_dir(&self.root)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn key(&self, role: &str) -> String {
        let out = self.countersign(
            Some("a"),
            &["keys", "create", "--workspace", "default", "--role", role],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn log(&self, gate: &str) -> String {
        std::fs::read_to_string(self.root.join(format!("serve-{gate}.log"))).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `countersign serve`; SIGKILLed when dropped.
struct Gate {
    child: Child,
    base: String,
}

impl Gate {
    async fn start(site: &Site, name: &str, http: &reqwest::Client) -> Self {
        let text = std::fs::read_to_string(site.config(name)).unwrap();
        let port = text
            .lines()
            .find_map(|l| l.strip_prefix("listen: 127.0.0.1:"))
            .unwrap()
            .to_owned();
        let log = File::create(site.root.join(format!("serve-{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_countersign"))
            .arg("serve")
            .arg("--config")
            .arg(site.config(name))
            .current_dir(&site.root)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut gate = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = gate.child.try_wait() {
                break;
            }
            if let Ok(r) = http.get(format!("{}/healthz", gate.base)).send().await {
                if r.status().is_success() {
                    return gate;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        gate.kill();
        panic!("gate {name} did not start:\n{}", site.log(name));
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.kill();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn intercept(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    amount: u32,
    idem: &str,
) -> reqwest::Result<(u16, Value)> {
    let r = http
        .post(format!("{base}/v1/intercept"))
        .bearer_auth(key)
        .json(&json!({"action": "pay", "actor": "payments_agent",
                      "payload": {"amount": amount}, "idempotency_key": idem}))
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

async fn get_json(http: &reqwest::Client, base: &str, path: &str, key: &str) -> Value {
    http.get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Posts a webhook answer as `approver` to `url` rewritten to `base`.
async fn answer(
    http: &reqwest::Client,
    url: &str,
    base: &str,
    approver: &str,
) -> reqwest::Result<(u16, Value)> {
    let path = &url[url.find("/v1/").unwrap()..];
    let r = http
        .post(format!("{base}{path}"))
        .json(&json!({"decision": "approve", "approver": approver}))
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// A browser of the test: cookies by name, kept across gates (as behind a
/// load balancer, where every request may reach another gate).
#[derive(Default)]
struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, String) {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let r = req.header("cookie", cookie).send().await.unwrap();
        for v in r.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn get(&mut self, http: &reqwest::Client, url: String) -> (u16, String) {
        self.send(http.get(url)).await
    }

    async fn post(
        &mut self,
        http: &reqwest::Client,
        url: String,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }
}

fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_of_one_deployment_share_their_secrets() {
    let Some(schema) = Schema::create("secrets").await else {
        return;
    };
    let (hooks, hook_url) = Hooks::serve().await;
    let site = Site::new(&schema, &hook_url);
    let (agent, admin) = (site.key("agent"), site.key("admin"));
    let http = client();

    // B plans the delivery (and stores its token's hash) but cannot send
    // it: the receiver refuses until B is gone. A then sends it, deriving
    // the link's token itself, and B, back, answers the link.
    hooks.1.store(true, Ordering::SeqCst);
    let mut b = Gate::start(&site, "b", &http).await;
    let (s, run) = intercept(&http, &b.base, &agent, 900, "secrets-1")
        .await
        .unwrap();
    assert_eq!(
        (s, run["governance_status"].as_str()),
        (201, Some("pending_approval")),
        "{run}"
    );
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while *hooks.2.lock().unwrap() == 0 {
        assert!(Instant::now() < deadline, "B never tried to send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.kill();
    hooks.1.store(false, Ordering::SeqCst);
    let a = Gate::start(&site, "a", &http).await;
    let link = hooks.answer_url(&run_id).await;
    assert!(link.starts_with(&a.base), "{link}");

    let b = Gate::start(&site, "b", &http).await;
    let (s, answered) = answer(&http, &link, &b.base, "bob").await.unwrap();
    assert_eq!(s, 200, "gate B refused a link gate A sent: {answered}");
    assert_eq!(answered["run"]["governance_status"], "approved");

    // Sign-in form from A, submitted to B (pre-session CSRF); then the
    // session's CSRF token from a page of A, checked by B.
    let mut browser = Browser::default();
    let (s, login) = browser.get(&http, format!("{}/ui/login", a.base)).await;
    assert_eq!(s, 200);
    let (s, body) = browser
        .post(
            &http,
            format!("{}/ui/login/key", b.base),
            &[("csrf", &csrf(&login)), ("key", &admin)],
        )
        .await;
    assert_eq!(s, 303, "B refused A's sign-in form: {body}");
    let (s, page) = browser
        .get(&http, format!("{}/ui/w/default/runs", a.base))
        .await;
    assert_eq!(s, 200, "{page}");
    let (s, page_b) = browser
        .get(&http, format!("{}/ui/w/default/runs/{run_id}", b.base))
        .await;
    assert_eq!(s, 200, "B does not know A's session: {page_b}");
    let (s, body) = browser
        .post(
            &http,
            format!("{}/ui/logout", b.base),
            &[("csrf", &csrf(&page))],
        )
        .await;
    assert_eq!(s, 303, "B refused A's session CSRF token: {body}");

    // A receipt signed by A verifies with the keys B publishes.
    let receipt = get_json(
        &http,
        &a.base,
        &format!("/v1/runs/{run_id}/receipt"),
        &agent,
    )
    .await;
    let keys = get_json(&http, &b.base, "/v1/receipt-keys", &agent).await;
    std::fs::write(site.root.join("receipt.json"), receipt.to_string()).unwrap();
    std::fs::write(site.root.join("keys.json"), keys.to_string()).unwrap();
    let out = site.countersign(
        None,
        &["receipt", "verify", "receipt.json", "--keys", "keys.json"],
    );
    assert!(
        out.status.success(),
        "A's receipt does not verify with B's keys: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing was generated into either data directory.
    for d in ["data-a", "data-b"] {
        assert!(!site.root.join(d).join("approval-token-secret").exists());
        assert!(!site.root.join(d).join("receipt-signing-key").exists());
    }
}

/// An intercept a gate acknowledged.
#[derive(Debug, Clone)]
struct Acked {
    run_id: String,
    status: String,
    gate: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gates_on_one_postgres_survive_a_kill_9() {
    const CLIENTS: usize = 8;
    let Some(schema) = Schema::create("kill").await else {
        return;
    };
    let test_end = Instant::now() + Duration::from_secs(90);
    let (hooks, hook_url) = Hooks::serve().await;
    let site = Site::new(&schema, &hook_url);
    let (agent, admin) = (site.key("agent"), site.key("admin"));
    let http = client();

    // A link only A sent, kept unanswered until A is dead.
    let mut a = Gate::start(&site, "a", &http).await;
    let (s, first) = intercept(&http, &a.base, &agent, 901, "kill-first")
        .await
        .unwrap();
    assert_eq!(s, 201, "{first}");
    let first_id = first["run_id"].as_str().unwrap().to_owned();
    let first_link = hooks.answer_url(&first_id).await;
    assert!(first_link.starts_with(&a.base), "{first_link}");
    let b = Gate::start(&site, "b", &http).await;

    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let answers = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (http, acked, stop) = (http.clone(), acked.clone(), stop.clone());
        let (agent, a_base, b_base) = (agent.clone(), a.base.clone(), b.base.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (name, base) = if (client + n).is_multiple_of(2) {
                    ("a", &a_base)
                } else {
                    ("b", &b_base)
                };
                let amount = if n.is_multiple_of(3) { 950 } else { 40 };
                let idem = format!("kill-c{client}-n{n}");
                let result = intercept(&http, base, &agent, amount, &idem).await;
                match result {
                    Ok((201, v)) => acked.lock().unwrap().push(Acked {
                        run_id: v["run_id"].as_str().unwrap().to_owned(),
                        status: v["governance_status"].as_str().unwrap().to_owned(),
                        gate: name,
                    }),
                    Ok((s, v)) => panic!("intercept on {name} answered {s}: {v}"),
                    // Gate A is gone: not acknowledged.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    // The approvers: answer every request that comes in, on the survivor,
    // whichever gate sent it, except the first (kept for after the kill).
    {
        let (http, hooks, answers, stop) =
            (http.clone(), hooks.clone(), answers.clone(), stop.clone());
        let (b_base, first_id) = (b.base.clone(), first_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                let events = hooks.events();
                for e in &events[seen..] {
                    let run = e["data"]["run_id"].as_str().unwrap().to_owned();
                    if run == first_id || answers.lock().unwrap().contains(&run) {
                        continue;
                    }
                    // Links from either gate, for runs of either gate, all
                    // answer on B: the gates share their secrets.
                    let url = e["data"]["answer_url"].as_str().unwrap();
                    let (s, v) = answer(&http, url, &b_base, "alice").await.unwrap();
                    assert_eq!((s, v["outcome"].as_str()), (200, Some("recorded")), "{v}");
                    answers.lock().unwrap().insert(run);
                }
                seen = events.len();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let by_a = acked.iter().filter(|r| r.gate == "a").count();
    let by_b = acked.len() - by_a;
    assert!(
        by_a > 0 && by_b > 0,
        "load reached both gates: {by_a} on A, {by_b} on B"
    );
    assert!(
        !answers.is_empty(),
        "some answers were recorded during the load"
    );
    let pending = acked
        .iter()
        .filter(|r| r.status == "pending_approval")
        .count();
    eprintln!(
        "acknowledged: {by_a} on A, {by_b} on B ({pending} pending); {} answered on B",
        answers.len()
    );

    // The link the killed gate sent is answered on the survivor.
    let (s, v) = answer(&http, &first_link, &b.base, "bob").await.unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["run"]["governance_status"], "approved");

    // Every acknowledged decision and answer is there.
    for r in &acked {
        let run = get_json(&http, &b.base, &format!("/v1/runs/{}", r.run_id), &agent).await;
        let now = run["governance_status"].as_str().unwrap_or("?");
        if answers.contains(&r.run_id) {
            assert_eq!(now, "approved", "an acknowledged answer was lost: {run}");
        } else {
            assert_eq!(now, r.status, "{run}");
        }
    }
    // Every approval request reached the receiver at least once (a claim
    // the killed gate held is sent by the survivor once its lease ends).
    let pending: BTreeSet<&str> = acked
        .iter()
        .filter(|r| r.status == "pending_approval")
        .map(|r| r.run_id.as_str())
        .collect();
    loop {
        let sent: BTreeSet<String> = hooks
            .events()
            .iter()
            .filter_map(|e| e["data"]["run_id"].as_str().map(str::to_owned))
            .collect();
        let missing: Vec<&&str> = pending.iter().filter(|r| !sent.contains(**r)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < test_end,
            "{} approval requests never sent, e.g. {:?}\n{}",
            missing.len(),
            missing.first(),
            site.log("b")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The survivor's dashboard shows runs of both gates.
    let mut browser = Browser::default();
    let (_, login) = browser.get(&http, format!("{}/ui/login", b.base)).await;
    let (s, _) = browser
        .post(
            &http,
            format!("{}/ui/login/key", b.base),
            &[("csrf", &csrf(&login)), ("key", &admin)],
        )
        .await;
    assert_eq!(s, 303);
    for gate in ["a", "b"] {
        let r = acked.iter().rev().find(|r| r.gate == gate).unwrap();
        let (s, page) = browser
            .get(&http, format!("{}/ui/w/default/runs/{}", b.base, r.run_id))
            .await;
        assert_eq!(
            s, 200,
            "run {} of gate {gate} on B's dashboard: {page}",
            r.run_id
        );
        assert!(page.contains(&r.run_id));
    }
    let (s, list) = browser
        .get(&http, format!("{}/ui/w/default/runs", b.base))
        .await;
    assert_eq!(s, 200);
    let newest_of = |g: &str| {
        acked
            .iter()
            .rev()
            .find(|r| r.gate == g)
            .map(|r| r.run_id.clone())
    };
    assert!(
        list.contains(&newest_of("b").unwrap()),
        "B's runs are listed"
    );
    // A's last runs were acknowledged before the kill; they are listed as
    // long as they are among the newest page, so look at the first of A's.
    let (s, page) = browser
        .get(&http, format!("{}/ui/w/default/runs/{first_id}", b.base))
        .await;
    assert_eq!(s, 200, "{page}");
}
