//! The delivery worker: retries with backoff across a restart without
//! duplicates, and bursts and backlogs sent in one pass.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use countersign_gate::clock::Clock;
use countersign_store::Role;
use serde_json::{Value, json};

use crate::support::approvals::{POLICY, WHSEC, ops_webhook, propose, sent, webhook_receiver};
use crate::support::{free_port, start, start_without_worker};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_gate(config: &std::path::Path) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test]
async fn delivery_is_retried_after_failures_and_a_restart_without_duplicates() {
    // The receiver counts approval requests only: checkpoint pushes are off.
    let (hooks, url) = webhook_receiver(2).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/p.yaml"), POLICY).unwrap();
    let port = free_port();
    let config = dir.path().join("countersign.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nconsole: false\naudit: {{ push_checkpoints: false }}\ndelivery: {{ base_delay: 1s, max_delay: 2s, poll_interval: 100ms }}\nworkspaces:\n  default:\n    policies: policies\n    webhooks:\n      - {{ name: ops, url: \"{url}\", secret: {WHSEC} }}\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "keys",
            "create",
            "--workspace",
            "default",
            "--role",
            "agent",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let wait_up = || async {
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gate did not start");
    };
    let gate = spawn_gate(&config);
    wait_up().await;
    let run: Value = http
        .post(format!("{base}/v1/intercept"))
        .bearer_auth(&key)
        .json(&json!({"action": "send_invoice_reminder", "payload": {"amount": 900}, "actor": "finance_agent"}))
        .send().await.unwrap().json().await.unwrap();
    let id = run["run_id"].as_str().unwrap().to_owned();
    // Wait for the first failed attempt, then kill the gate mid-retry.
    for _ in 0..100 {
        if !hooks.seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hooks.seen.lock().unwrap().len(), 1);
    drop(gate);
    let _gate = spawn_gate(&config);
    wait_up().await;
    let mut view = Value::Null;
    for _ in 0..200 {
        view = http
            .get(format!("{base}/v1/runs/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["deliveries"][0]["status"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = &view["deliveries"][0];
    assert_eq!(d["status"], "sent", "{view}");
    assert_eq!(
        d["attempts"], 3,
        "two failed attempts, then the one that worked: {view}"
    );
    assert_eq!(
        d["last_error"].as_str().map(|e| e.contains("500")),
        Some(true),
        "{view}"
    );
    let seen = hooks.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        3,
        "two failures and one success, nothing sent twice after success"
    );
    let ids: std::collections::HashSet<&str> =
        seen.iter().map(|(h, _)| h["webhook-id"].as_str()).collect();
    assert_eq!(
        ids.len(),
        1,
        "one stable webhook-id across attempts and the restart"
    );
}

#[tokio::test]
async fn a_burst_of_requests_is_delivered_in_one_pass_not_a_batch_per_tick() {
    let gate = start(POLICY, |c, _| {
        c.console = true;
        c.delivery.poll_interval = Duration::from_secs(1);
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(propose(&gate, &agent, "mark_invoice_paid", "finance_agent").await);
    }
    // 120 deliveries (alice and bob for each run): several batches, all of
    // them within one or two ticks of the worker.
    let started = std::time::Instant::now();
    loop {
        let pending = gate
            .state
            .store
            .due_deliveries(gate.clock.now(), 500)
            .await
            .unwrap()
            .len();
        if pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{pending} deliveries still waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = gate.run(&agent, ids.last().unwrap()).await;
    assert!(
        sent(&last, "alice", "console") && sent(&last, "bob", "console"),
        "{last}"
    );
}

/// More deliveries fall due than one pass of the worker takes (64 batches
/// of 32): one tick sends them all instead of leaving a backlog that grows
/// under load.
#[tokio::test]
async fn one_tick_sends_a_backlog_larger_than_a_pass() {
    let (hooks, url) = webhook_receiver(0).await;
    // No worker (it would send each run's deliveries as the run is
    // recorded): the test drives the one pass itself.
    let gate = start_without_worker(POLICY, |c, _| {
        c.console = false;
        c.rate_limit = countersign_gate::config::RateLimit {
            per_second: 1_000_000,
            burst: 1_000_000,
        };
        c.delivery.poll_interval = Duration::from_secs(3600);
        c.workspaces[0].webhooks = vec![ops_webhook(&url)];
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    const RUNS: usize = 64 * 32 + 100;
    let body = json!({"action": "send_invoice_reminder", "payload": {"amount": 900}, "actor": "finance_agent"});
    for chunk in 0..RUNS.div_ceil(50) {
        let n = 50.min(RUNS - chunk * 50);
        let sends = (0..n).map(|_| gate.post_json("/v1/intercept", Some(&agent), &body));
        for (status, run) in futures_util::future::join_all(sends).await {
            assert_eq!(status, 201, "{run}");
        }
    }
    let now = gate.clock.now();
    let due = gate.state.store.due_deliveries(now, 1000).await.unwrap();
    assert_eq!(due.len(), 1000, "the backlog is due");
    assert!(hooks.seen.lock().unwrap().is_empty(), "nothing sent yet");
    countersign_gate::approvals::worker::drain(&gate.state).await;
    let left = gate.state.store.due_deliveries(now, 1000).await.unwrap();
    assert!(left.is_empty(), "{} deliveries still due", left.len());
    assert_eq!(hooks.seen.lock().unwrap().len(), RUNS);
}
