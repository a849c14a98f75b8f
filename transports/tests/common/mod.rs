//! Shared by the integration tests: a sample approval request full of
//! hostile text, and the Python packages some tests run against.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of this module"
)]

use std::process::Command;
use std::sync::Mutex;

use chrono::{TimeZone, Utc};
use countersign_transports::{ApprovalMessage, Recipient};

/// Text an agent might send to break out of a template.
pub const HOSTILE_PAYLOAD: &str = r#"Remind ACME <script>alert("x")</script> & <img src=x onerror=alert(1)> [Approve](https://evil.example) <!channel>"#;

/// Reasoning trying to close an attribute and add a link.
pub const HOSTILE_REASONING: &str =
    r#""><a href="javascript:alert(1)">click me</a> {{DATE(2017-02-14T06:08:00Z)}}"#;

/// A realistic request with hostile agent text in it.
pub fn message() -> ApprovalMessage {
    ApprovalMessage {
        delivery_id: "dlv_01JTESTDELIVERY".into(),
        workspace: "acme-finance".into(),
        run_id: "run_01JTESTRUN".into(),
        action: "send_invoice_reminder".into(),
        actor: Some("billing-agent".into()),
        risk: Some("medium".into()),
        reasoning: Some(HOSTILE_REASONING.into()),
        payload_summary: HOSTILE_PAYLOAD.into(),
        summary: None,
        dashboard_url: None,
        rule: Some("large-invoice-needs-finance".into()),
        reason: "Invoices over 10 000 EUR need a finance approver".into(),
        group: "finance".into(),
        quorum: 2,
        expires_at: Utc.with_ymd_and_hms(2031, 5, 1, 14, 30, 0).unwrap(),
        recipient: Recipient {
            approver_id: "alice".into(),
            name: Some("Alice Martin".into()),
            email: Some("alice@example.com".into()),
            slack: Some("U0ALICE".into()),
        },
        approve_url: Some(
            "https://gate.example/approvals/dlv_01JTESTDELIVERY/approve?t=abc&lang=en".into(),
        ),
        reject_url: Some(
            "https://gate.example/approvals/dlv_01JTESTDELIVERY/reject?t=abc&lang=en".into(),
        ),
        answer_url: Some("https://gate.example/answers/one-time-token".into()),
        approvers: vec![
            countersign_transports::EligibleApprover {
                id: "alice".into(),
                eligible_from: None,
            },
            countersign_transports::EligibleApprover {
                id: "carol".into(),
                eligible_from: Some(Utc.with_ymd_and_hms(2031, 5, 1, 12, 0, 0).unwrap()),
            },
        ],
    }
}

static PIP: Mutex<()> = Mutex::new(());

/// Makes sure `python3` can import `module`, installing `package` from PyPI
/// with pip if it cannot. Panics (failing the test) if that does not work.
pub fn ensure_python_module(module: &str, package: &str) {
    let _guard = PIP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let importable = || {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if importable() {
        return;
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            package,
        ])
        .output()
        .expect("python3 must be installed to run this test");
    assert!(
        out.status.success() && importable(),
        "cannot install the Python package {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback HTTP receiver that records every request, for the webhook and
/// Teams tests.
pub mod receiver {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
    use axum::response::{IntoResponse, Response};

    /// One request as received.
    #[derive(Debug, Clone)]
    pub struct Received {
        /// Request method.
        pub method: Method,
        /// Path and query.
        pub path: String,
        /// All headers.
        pub headers: HeaderMap,
        /// The exact body bytes.
        pub body: Bytes,
    }

    impl Received {
        /// A header's value as text.
        pub fn header(&self, name: &str) -> &str {
            self.headers
                .get(name)
                .unwrap_or_else(|| panic!("no {name} header"))
                .to_str()
                .unwrap()
        }
    }

    /// The running receiver.
    #[derive(Clone)]
    pub struct Receiver {
        /// `http://127.0.0.1:PORT`
        pub base: String,
        received: Arc<Mutex<Vec<Received>>>,
    }

    impl Receiver {
        /// Everything received so far.
        pub fn received(&self) -> Vec<Received> {
            self.received.lock().unwrap().clone()
        }

        /// The URL of `path` on this receiver.
        pub fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }
    }

    /// Answers by path: `/redirect` → 302 to `/ok`, `/status/NNN` → NNN,
    /// `/slow` → 200 after 3 s, anything else → 200.
    async fn answer(
        State((received, base)): State<(Arc<Mutex<Vec<Received>>>, String)>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
        received.lock().unwrap().push(Received {
            method,
            path: path.clone(),
            headers,
            body,
        });
        let path = uri.path();
        if path == "/redirect" {
            return (
                StatusCode::FOUND,
                [(header::LOCATION, format!("{base}/ok"))],
                "moved",
            )
                .into_response();
        }
        if let Some(code) = path.strip_prefix("/status/") {
            let status = StatusCode::from_u16(code.parse().unwrap()).unwrap();
            return (status, format!("answer {code}")).into_response();
        }
        if path == "/slow" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        (StatusCode::OK, "ok").into_response()
    }

    /// Starts a receiver on 127.0.0.1 on a free port.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback(answer)
            .with_state((received.clone(), base.clone()));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, received }
    }
}
