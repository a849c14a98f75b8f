//! Approval requests go out when their run is recorded, not at the worker's
//! next poll: the intercept rings the outbox's bell, and on PostgreSQL the
//! bell rings on every gate sharing the database (LISTEN/NOTIFY).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use countersign_gate::clock::ManualClock;
use countersign_gate::config::{Config, StoreUrl, WorkspaceConfig};
use countersign_gate::server;
use countersign_store::{Role, Store};

use crate::support::approvals::{POLICY, propose};
use crate::support::{Gate, mails, smtp_server, start};

/// Far longer than the bound below: a mail within the bound was not sent
/// by a poll.
const POLL: Duration = Duration::from_secs(10);
/// The bound on intercept → mail at the SMTP server (a functional bound,
/// not a benchmark: BENCHMARKS.md has the measurement).
const BOUND: Duration = Duration::from_secs(1);

/// Waits until the maildir holds `n` mails; returns how long that took.
async fn wait_for_mails(maildir: &std::path::Path, n: usize, limit: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if mails(maildir).len() >= n {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} of {n} mails after {limit:?}", mails(maildir).len());
}

#[tokio::test]
async fn a_pending_intercept_is_mailed_at_once_not_at_the_next_poll() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = smtp_server(dir.path());
    let email = smtp.email_config();
    let gate = start(POLICY, |c, _| {
        c.email = Some(email);
        c.delivery.poll_interval = POLL;
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    // Past the worker's first pass, which runs when it starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    propose(&gate, &agent, "send_invoice_reminder", "finance_agent").await;
    // Alice and Bob, each by email.
    wait_for_mails(&smtp.maildir, 2, POLL).await;
    let took = started.elapsed();
    assert!(took < BOUND, "the mails took {took:?} with a {POLL:?} poll");
}

/// Two gates on one PostgreSQL database: the one that records the run has
/// no delivery worker, so the mail can only come from the other gate's
/// worker, woken by NOTIFY long before its 10 s poll.
#[tokio::test]
async fn on_postgres_the_other_gates_worker_is_woken() {
    let url = std::env::var("COUNTERSIGN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("cs_wake_{}", uuid::Uuid::now_v7().simple());
    let key = countersign_store::LogKey::from_bytes([7; 32]);
    let connect =
        || countersign_store::PostgresStore::connect_with_schema(&url, &schema, key.clone());
    let (store_a, store_b) = match (connect().await, connect().await) {
        (Ok(a), Ok(b)) => (Arc::new(a) as Arc<dyn Store>, Arc::new(b) as Arc<dyn Store>),
        (Err(e), _) | (_, Err(e)) => {
            assert!(
                std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL is required but not reachable at {url}: {e}"
            );
            eprintln!("SKIPPED: PostgreSQL not reachable at {url}: {e}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let smtp = smtp_server(dir.path());
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("policy.yaml"), POLICY).unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let config = |name: &str| {
        let mut c = Config::defaults();
        c.data_dir = dir.path().join(name);
        c.store = StoreUrl::Postgres(url.clone());
        c.workspaces = vec![WorkspaceConfig::new("default", &policies)];
        c.email = Some(smtp.email_config());
        c.console = false;
        c.delivery.poll_interval = POLL;
        c
    };

    // Gate B: a full gate, its worker polling every 10 s.
    let b = server::build_state_with_store(config("b"), store_b, clock.clone())
        .await
        .unwrap();
    b.outbox.connect_postgres(&url, Some(&schema)).unwrap();
    let listener_b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(server::serve_on(listener_b, b.clone()));

    // Gate A: the HTTP app only, no worker; it records runs and rings.
    let a = server::build_state_with_store(config("a"), store_a.clone(), clock.clone())
        .await
        .unwrap();
    a.outbox.connect_postgres(&url, Some(&schema)).unwrap();
    let listener_a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener_a.local_addr().unwrap());
    let app_a = countersign_gate::app(a.clone());
    tokio::spawn(async move {
        axum::serve(
            listener_a,
            app_a.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let gate_a = Gate {
        base,
        http: reqwest::Client::new(),
        state: a,
        clock,
        dir: tempfile::tempdir().unwrap(),
    };
    let agent = gate_a.key(Role::Agent).await;
    // Both gates are listening (their connections open in the background)
    // and B's first pass is over.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let started = Instant::now();
    propose(&gate_a, &agent, "send_invoice_reminder", "finance_agent").await;
    wait_for_mails(&smtp.maildir, 2, POLL).await;
    let took = started.elapsed();
    assert!(
        took < BOUND,
        "gate B sent after {took:?} with a {POLL:?} poll"
    );

    drop(b);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
