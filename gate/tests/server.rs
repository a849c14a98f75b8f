//! The gate as a server among hostile clients and operators' signals:
//! slow clients are cut off and cannot crowd out the others, a connection
//! over the cap is told so, and SIGTERM or Ctrl-C stop the real binary
//! within 5 s whatever is connected (a second Ctrl-C at once).
//!
//! A test binary of its own, its tests one at a time (a lock): the flood
//! measures latency, which other tests running beside it would disturb.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use countersign_store::Role;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use support::approvals::POLICY;
use support::{free_port, start};

/// One test at a time in this binary (each test has its own runtime, so
/// the lock is tokio's, which any runtime can wait on).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Slow clients held open during the flood.
const SLOW_CLIENTS: usize = 2000;
/// Intercepts the normal client sends while they are held.
const INTERCEPTS: usize = 200;

/// The open files this process needs for the flood: both ends of every
/// slow connection (the gate runs in this process) and some to spare.
fn files_needed(slow: usize) -> u64 {
    2 * slow as u64 + 512
}

/// 2,000 clients trickling request headers (one header line every half
/// second, never the blank line) hold their connections while a normal
/// client's intercepts keep succeeding quickly; once the header timeout
/// has passed, every slow connection has been closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_crowd_out_others() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // Both ends of every connection live in this process: raise its
    // open-file limit as the gate does at start, and size the flood to
    // what the system allows if it is lower (said in the output).
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let slow = if limit >= files_needed(SLOW_CLIENTS) {
        SLOW_CLIENTS
    } else {
        let fit = usize::try_from(limit.saturating_sub(512) / 2).unwrap();
        eprintln!("open-file limit {limit}: flooding with {fit} slow clients, not {SLOW_CLIENTS}");
        fit
    };
    let header_timeout = Duration::from_secs(6);
    let gate = start(POLICY, |c, _| {
        c.connections.header_timeout = header_timeout;
        c.rate_limit.per_second = 100_000;
        c.rate_limit.burst = 100_000;
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    let addr = gate.base.trim_start_matches("http://").to_owned();

    let opened = Instant::now();
    let mut conns = Vec::with_capacity(slow);
    for _ in 0..slow {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /v1/intercept HTTP/1.1\r\nhost: gate\r\n")
            .await
            .unwrap();
        conns.push(s);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                for s in &mut conns {
                    let _ = s.write_all(b"x-trickle: 1\r\n").await;
                }
            }
            conns
        })
    };

    let mut took = Vec::with_capacity(INTERCEPTS);
    for i in 0..INTERCEPTS {
        let started = Instant::now();
        let (status, run) = gate
            .post_json(
                "/v1/intercept",
                Some(&agent),
                &json!({"action": "send_invoice_reminder", "payload": {"amount": 10 + i}, "actor": "finance_agent"}),
            )
            .await;
        took.push(started.elapsed());
        assert_eq!(status, 201, "{run}");
        assert_eq!(run["governance_status"], "allowed", "{run}");
    }
    assert!(
        opened.elapsed() < header_timeout,
        "the intercepts must run while the slow clients are held ({:?})",
        opened.elapsed()
    );
    took.sort();
    let p50 = took[took.len() / 2];
    let p99 = took[took.len() * 99 / 100];
    eprintln!("{INTERCEPTS} intercepts beside {slow} slow clients: p50 {p50:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");

    // Past the header timeout: every slow connection was closed by the
    // gate (end of stream, perhaps after a 408, or a reset).
    tokio::time::sleep_until((opened + header_timeout + Duration::from_secs(2)).into()).await;
    stop.store(true, Ordering::SeqCst);
    let conns = trickle.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut still_open = 0;
    for mut s in conns {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => {
                    still_open += 1;
                    break;
                }
            }
        }
    }
    assert_eq!(
        still_open, 0,
        "slow connections still open after the header timeout"
    );
}

/// One connection over `connections.max` is answered 503 with the API's
/// JSON error, and served again once connections close.
#[tokio::test]
async fn a_connection_over_the_cap_is_told_to_retry() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let gate = start(POLICY, |c, _| c.connections.max = 16).await;
    let addr = gate.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // The gate accepts them in the background.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = reqwest::get(format!("{}/healthz", gate.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = reqwest::get(format!("{}/healthz", gate.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// A body sent too slowly ends in a 400 once `body_timeout` has passed,
/// and the connection is closed.
#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let gate = start(POLICY, |c, _| {
        c.connections.body_timeout = Duration::from_secs(1)
    })
    .await;
    let agent = gate.key(Role::Agent).await;
    let addr = gate.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    s.write_all(
        format!(
            "POST /v1/intercept HTTP/1.1\r\nhost: gate\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"action\"",
            agent.0
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
        .await
        .expect("the gate closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("bad_body"), "{text}");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

/// A `countersign serve` in a temporary directory, with an admin key.
struct Served {
    _dir: tempfile::TempDir,
    root: PathBuf,
    child: Child,
    base: String,
    admin_key: String,
}

impl Served {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("policies")).unwrap();
        std::fs::write(root.join("policies/policy.yaml"), POLICY).unwrap();
        let port = free_port();
        std::fs::write(
            root.join("countersign.yaml"),
            format!(
                "listen: 127.0.0.1:{port}\ndata_dir: ./data\nconsole: false\nconnections: {{ header_timeout: 1s }}\nworkspaces:\n  default: {{ policies: ./policies }}\n"
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
                "admin",
                "--config",
                "countersign.yaml",
            ])
            .current_dir(&root)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let admin_key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let log = std::fs::File::create(root.join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(["serve", "--config", "countersign.yaml"])
            .current_dir(&root)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut served = Self {
            _dir: dir,
            root,
            child,
            base: format!("http://127.0.0.1:{port}"),
            admin_key,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                served.child.try_wait().unwrap().is_none(),
                "the gate exited: {}",
                served.log()
            );
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the gate did not start"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        served
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("serve.log")).unwrap_or_default()
    }

    /// Signs in with the admin key and opens the runs table's live stream;
    /// returns the open response (headers received, stream running).
    async fn open_live_stream(&self, http: &reqwest::Client) -> reqwest::Response {
        let login = http
            .get(format!("{}/ui/login", self.base))
            .send()
            .await
            .unwrap();
        let pre = cookies(&login);
        let html = login.text().await.unwrap();
        let csrf = support::ui::csrf(&html);
        let signed_in = http
            .post(format!("{}/ui/login/key", self.base))
            .header("cookie", pre)
            .form(&[("csrf", csrf.as_str()), ("key", self.admin_key.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            signed_in.status(),
            303,
            "{}",
            signed_in.text().await.unwrap()
        );
        let session = cookies(&signed_in);
        let live = http
            .get(format!("{}/ui/w/default/live", self.base))
            .header("cookie", session)
            .send()
            .await
            .unwrap();
        assert_eq!(live.status(), 200);
        assert!(
            live.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        live
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; its status, or None after `limit`.
    fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name=value` of every cookie a response sets, as a Cookie header.
fn cookies(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The time a stop may take, whatever is connected.
const STOP_LIMIT: Duration = Duration::from_secs(5);

async fn stops_cleanly_with_a_live_stream_open(signal: &str) {
    let mut gate = Served::start();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let live = gate.open_live_stream(&http).await;
    let reader = tokio::spawn(async move {
        let mut live = live;
        while let Ok(Some(_)) = live.chunk().await {}
    });
    // A stream outlives the header timeout (1 s here): only a stop ends it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !reader.is_finished(),
        "the live stream ended before the stop"
    );
    gate.signal(signal);
    let status = tokio::task::spawn_blocking(move || {
        let status = gate.exited_within(STOP_LIMIT);
        (status, gate.log())
    })
    .await
    .unwrap();
    let (status, log) = status;
    let status =
        status.unwrap_or_else(|| panic!("still running {STOP_LIMIT:?} after SIG{signal}:\n{log}"));
    assert!(status.success(), "{status:?}\n{log}");
    // The stream ended with the gate.
    tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn sigterm_stops_the_gate_with_a_live_stream_open() {
    let _serial = ONE_AT_A_TIME.lock().await;
    stops_cleanly_with_a_live_stream_open("TERM").await;
}

#[tokio::test]
async fn ctrl_c_stops_the_gate_with_a_live_stream_open() {
    let _serial = ONE_AT_A_TIME.lock().await;
    stops_cleanly_with_a_live_stream_open("INT").await;
}

/// A slow request in hand holds a first Ctrl-C's stop (for its grace
/// period); a second Ctrl-C ends the process at once.
#[tokio::test]
async fn a_second_ctrl_c_exits_at_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut gate = Served::start();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let _live = gate.open_live_stream(&http).await;
    // A request whose body is still coming: in hand, not finished (the
    // sign-in form reads its body before anything else).
    let addr = gate.base.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /ui/login/key HTTP/1.1\r\nhost: gate\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\ncsrf=")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.signal("INT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        gate.child.try_wait().unwrap().is_none(),
        "the first Ctrl-C waits for the request in hand"
    );
    let second = Instant::now();
    gate.signal("INT");
    let (status, log) = tokio::task::spawn_blocking(move || {
        let status = gate.exited_within(Duration::from_secs(1));
        (status, gate.log())
    })
    .await
    .unwrap();
    let status =
        status.unwrap_or_else(|| panic!("still running 1 s after a second Ctrl-C:\n{log}"));
    eprintln!(
        "exited {:?} after the second Ctrl-C: {status:?}",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{log}");
    drop(slow);
}
