//! Installing and running the gate as an operator does, with the real
//! binary: `serve` with no configuration file, its flags and `COUNTERSIGN_*`
//! variables (flags > environment > file > defaults), the startup and
//! intercept log lines, `health`, and `runs list|show|tail` with an admin
//! key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const POLICY: &str = r#"version: 1
approvers:
  finance-leads:
    members:
      - { id: alice, email: alice@example.com }
actions:
  send_invoice_reminder:
    risk: medium
    approvers: finance-leads
    rules:
      - name: large-amount
        when: payload.amount > 500
        decision: require_approval
        reason: Reminders above 500 need a finance lead
      - name: small-amount
        decision: allow
"#;

/// Every variable the binary reads for its configuration or the runs
/// commands; each command here starts without them, then sets its own.
const VARS: [&str; 8] = [
    "COUNTERSIGN_CONFIG",
    "COUNTERSIGN_LISTEN",
    "COUNTERSIGN_PUBLIC_URL",
    "COUNTERSIGN_DATA_DIR",
    "COUNTERSIGN_STORE",
    "COUNTERSIGN_ADMIN_KEY",
    "COUNTERSIGN_API_KEY",
    "COUNTERSIGN_URL",
];

fn command(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_countersign"));
    c.args(args).current_dir(cwd).env("NO_COLOR", "1");
    for v in VARS {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null());
    c
}

fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(cwd, args, env).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/finance.yaml"), POLICY).unwrap();
    dir
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A `countersign serve` child, killed when dropped; its stdout and stderr
/// go to `serve.log` in its directory.
struct Served {
    child: Child,
    log: PathBuf,
}

impl Served {
    /// Starts `serve ARGS` in `cwd` with `env` and waits until `port` answers.
    fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)], port: u16) -> Self {
        let log = cwd.join("serve.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let child = command(cwd, &all, env)
            .env("RUST_LOG", "info")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut served = Self { child, log };
        let started = Instant::now();
        while !answers(port) {
            assert!(
                served.child.try_wait().unwrap().is_none(),
                "the gate exited: {}",
                served.log()
            );
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the gate did not start on {port}: {}",
                served.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        served
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it holds `needle` (log lines are written by a thread
    /// every 20 ms or so), or as it is after 10 s.
    fn log_with(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) || started.elapsed() > Duration::from_secs(10) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_needs_no_file_and_flags_beat_the_environment() {
    let dir = site();
    let (flag_port, env_port) = (free_port(), free_port());
    let flag_listen = format!("127.0.0.1:{flag_port}");
    let env_listen = format!("127.0.0.1:{env_port}");
    let gate = Served::start(
        dir.path(),
        &["--listen", &flag_listen, "--data-dir", "flag-data"],
        &[
            ("COUNTERSIGN_LISTEN", &env_listen),
            ("COUNTERSIGN_DATA_DIR", "env-data"),
            ("COUNTERSIGN_PUBLIC_URL", "https://gate.example.test/"),
        ],
        flag_port,
    );
    assert!(!answers(env_port), "the flag's port, not the variable's");
    assert!(dir.path().join("flag-data/countersign.db").exists());
    assert!(!dir.path().join("env-data").exists());
    assert!(!dir.path().join("countersign-data").exists());
    // The public URL the variable gave (nothing overrode it) is where the
    // startup log sends people.
    let want = "dashboard at https://gate.example.test/ui";
    let log = gate.log_with(want);
    assert!(log.contains(want), "{log}");
    drop(gate);

    // The environment wins over the file; the file over the defaults.
    let (file_port, env_port) = (free_port(), free_port());
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/countersign.yaml"),
        format!(
            "listen: 127.0.0.1:{file_port}\ndata_dir: ./file-data\nworkspaces:\n  default: {{ policies: ../policies }}\n"
        ),
    )
    .unwrap();
    let env_listen = format!("127.0.0.1:{env_port}");
    let gate = Served::start(
        dir.path(),
        &[],
        &[
            ("COUNTERSIGN_CONFIG", "etc/countersign.yaml"),
            ("COUNTERSIGN_LISTEN", &env_listen),
        ],
        env_port,
    );
    assert!(!answers(file_port), "the variable's port, not the file's");
    assert!(dir.path().join("etc/file-data/countersign.db").exists());
    // No public URL anywhere: it follows the listen address that won.
    let want = format!("dashboard at http://127.0.0.1:{env_port}/ui");
    let log = gate.log_with(&want);
    assert!(log.contains(&want), "{log}");
    drop(gate);

    // A bad value is refused before anything starts, naming its flag or
    // variable.
    let out = run(
        dir.path(),
        &["serve", "--listen", "everywhere"],
        &[("COUNTERSIGN_DATA_DIR", "never")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--listen `everywhere`"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        dir.path(),
        &["serve"],
        &[
            ("COUNTERSIGN_STORE", "mysql://app:hunter2@db/cs"),
            ("COUNTERSIGN_DATA_DIR", "never"),
        ],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("COUNTERSIGN_STORE"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!dir.path().join("never").exists());
}

/// A gate on a fresh site with an admin and an agent key, made by the CLI
/// with the same variables the gate runs with (so `keys` reads them too).
struct Site {
    dir: tempfile::TempDir,
    gate: Served,
    base: String,
    admin: String,
    agent: String,
    http: reqwest::Client,
}

impl Site {
    fn start() -> Self {
        let dir = site();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let env = [
            ("COUNTERSIGN_LISTEN", listen.as_str()),
            ("COUNTERSIGN_DATA_DIR", "data"),
        ];
        let key = |role: &str| {
            let out = run(
                dir.path(),
                &["keys", "create", "--workspace", "default", "--role", role],
                &env,
            );
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert!(dir.path().join("data/countersign.db").exists());
            text(&out.stdout).trim().to_owned()
        };
        let admin = key("admin");
        let agent = key("agent");
        let gate = Served::start(dir.path(), &[], &env, port);
        Self {
            dir,
            gate,
            base: format!("http://{listen}"),
            admin,
            agent,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    async fn intercept(&self, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/v1/intercept", self.base))
            .bearer_auth(&self.agent)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.json().await.unwrap()
    }

    async fn executed(&self, run_id: &str) {
        let resp = self
            .http
            .post(format!("{}/v1/runs/{run_id}/executed", self.base))
            .bearer_auth(&self.agent)
            .json(&json!({"execution_result": {"sent": true}}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    /// `countersign runs ARGS` against this gate with `key` as the admin key.
    fn runs(&self, args: &[&str], key: Option<&str>) -> Output {
        let mut all = vec!["runs"];
        all.extend_from_slice(args);
        let mut env = vec![("COUNTERSIGN_URL", self.base.as_str())];
        if let Some(k) = key {
            env.push(("COUNTERSIGN_ADMIN_KEY", k));
        }
        run(self.dir.path(), &all, &env)
    }
}

fn reminder(amount: u32, actor: &str) -> Value {
    json!({
        "action": "send_invoice_reminder",
        "actor": actor,
        "payload": {"amount": amount, "invoice_id": "INV-SECRET-4711"},
    })
}

#[tokio::test]
async fn each_intercept_is_logged_with_its_decision_but_never_its_payload() {
    let site = Site::start();
    let allowed = site.intercept(reminder(20, "finance_agent")).await;
    let pending = site.intercept(reminder(900, "finance_agent")).await;
    // The log thread writes what has gathered every 20 ms or so.
    let ids = [&allowed, &pending].map(|r| r["run_id"].as_str().unwrap().to_owned());
    site.gate.log_with(&format!("intercept run={}", ids[0]));
    let log = site.gate.log_with(&format!("intercept run={}", ids[1]));
    for (run, decision, rule) in [
        (&allowed, "allowed", "small-amount"),
        (&pending, "pending_approval", "large-amount"),
    ] {
        let id = run["run_id"].as_str().unwrap();
        let line = log
            .lines()
            .find(|l| l.contains(" intercept ") && l.contains(id))
            .unwrap_or_else(|| panic!("no intercept line for {id}:\n{log}"));
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains("action=send_invoice_reminder"), "{line}");
        assert!(line.contains(&format!("decision={decision}")), "{line}");
        assert!(line.contains(&format!("rule={rule}")), "{line}");
        assert!(!line.contains("INV-SECRET-4711"), "{line}");
    }
    // The allowed run is asked of nobody: nothing prints its payload.
    assert!(
        !log.lines()
            .any(|l| l.contains("INV-SECRET-4711")
                && l.contains(allowed["run_id"].as_str().unwrap())),
        "{log}"
    );
}

#[tokio::test]
async fn runs_list_and_show_read_the_gate_with_an_admin_key() {
    let site = Site::start();
    let first = site.intercept(reminder(20, "finance_agent")).await;
    // An agent-supplied actor that tries to clear the screen.
    let second = site.intercept(reminder(900, "mallory\u{1b}[2J")).await;
    let (first_id, second_id) = (
        first["run_id"].as_str().unwrap(),
        second["run_id"].as_str().unwrap(),
    );

    let out = site.runs(&["list"], Some(&site.admin));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("CREATED"), "{stdout}");
    // Newest first, each with its statuses and rule.
    assert!(lines[1].contains(second_id), "{stdout}");
    assert!(
        lines[1].contains("pending_approval/not_executed") && lines[1].contains("large-amount"),
        "{stdout}"
    );
    assert!(lines[2].contains(first_id) && lines[2].contains("allowed/awaiting_execution"));
    assert!(
        !stdout.contains('\u{1b}'),
        "control characters reach the terminal"
    );
    assert!(stdout.contains("mallory\u{fffd}[2J"), "{stdout}");

    let out = site.runs(
        &["list", "--status", "allowed", "--json"],
        Some(&site.admin),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first_id]);

    let out = site.runs(&["show", second_id], Some(&site.admin));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for want in [
        format!("run         {second_id}"),
        "status      pending_approval / not_executed".to_owned(),
        "decision    rule large-amount: Reminders above 500 need a finance lead".to_owned(),
        "approval    1 of group finance-leads (alice)".to_owned(),
    ] {
        assert!(stdout.contains(&want), "{want:?} not in\n{stdout}");
    }
    assert!(!stdout.contains('\u{1b}'), "{stdout}");

    // Refusals, each with a reason and its exit code.
    let out = site.runs(&["list"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("COUNTERSIGN_ADMIN_KEY"),
        "{}",
        text(&out.stderr)
    );
    let out = site.runs(&["list"], Some(&site.agent));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("403 admin_required"),
        "{}",
        text(&out.stderr)
    );
    let out = site.runs(&["show", "run_0000"], Some(&site.admin));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));
    let out = site.runs(&["show", "../v1/policies"], Some(&site.admin));
    assert_eq!(out.status.code(), Some(2));
    let out = site.runs(&["list", "--gate", "http://127.0.0.1:1"], Some(&site.admin));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach the gate"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn runs_tail_prints_new_runs_and_status_changes_as_they_happen() {
    let site = Site::start();
    let old = site.intercept(reminder(10, "finance_agent")).await;
    let newest = site.intercept(reminder(11, "finance_agent")).await;
    let mut child = command(
        site.dir.path(),
        &["runs", "tail", "-n", "1", "--interval", "200ms"],
        &[
            ("COUNTERSIGN_URL", &site.base),
            ("COUNTERSIGN_ADMIN_KEY", &site.admin),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |what: &str| -> String {
        rx.recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("tail printed no line for {what}"))
    };
    assert!(next_line("the header").starts_with("CREATED"));
    // Only the newest of the runs already there (-n 1).
    let line = next_line("the newest run");
    assert!(line.contains(newest["run_id"].as_str().unwrap()), "{line}");
    let made = site.intercept(reminder(12, "finance_agent")).await;
    let made_id = made["run_id"].as_str().unwrap();
    let line = next_line("a run made after tail started");
    assert!(line.contains(made_id), "{line}");
    assert!(line.contains("allowed/awaiting_execution"), "{line}");
    site.executed(made_id).await;
    let line = next_line("the run's change of status");
    assert!(line.contains(made_id), "{line}");
    assert!(line.contains("allowed/executed"), "{line}");
    // Nothing else was printed: not the older run, not a run twice.
    std::thread::sleep(Duration::from_millis(600));
    assert!(rx.try_recv().is_err());
    let _ = child.kill();
    let _ = child.wait();
    assert!(old["run_id"].is_string());
}

#[test]
fn health_answers_for_a_running_gate_and_fails_without_one() {
    let dir = site();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("COUNTERSIGN_LISTEN", listen.as_str()),
        ("COUNTERSIGN_DATA_DIR", "data"),
    ];
    // Nothing listens yet: unhealthy, and why.
    let out = run(dir.path(), &["health"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach"),
        "{}",
        text(&out.stderr)
    );
    let gate = Served::start(dir.path(), &[], &env, port);
    // The address comes from the same variables the gate runs with.
    let out = run(dir.path(), &["health"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("http://{listen}/readyz")));
    let out = run(
        dir.path(),
        &["health", "--url", &format!("http://{listen}")],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    drop(gate);
    let out = run(dir.path(), &["health"], &env);
    assert_eq!(out.status.code(), Some(1));
}
