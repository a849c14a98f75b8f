#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]
//! The console transport, and the transports as trait objects.

mod common;

use std::sync::Arc;

use countersign_transports::console::ConsoleTransport;
use countersign_transports::{Transport, TransportError};

#[tokio::test]
async fn console_always_succeeds_and_shows_the_request_and_links() {
    let transport: Arc<dyn Transport> = Arc::new(ConsoleTransport::new());
    assert_eq!(transport.channel(), "console");
    let mut msg = common::message();
    msg.payload_summary = "line one\nline two\u{1b}[31m red".into();
    let delivered = transport.deliver(&msg).await.unwrap();
    assert_eq!(delivered.external_id, None);

    let text = ConsoleTransport::render(&msg);
    for expected in [
        "Approval needed: send_invoice_reminder (medium risk)",
        "For: Alice Martin (alice)",
        "Action: send_invoice_reminder",
        "Actor: billing-agent",
        "Rule: large-invoice-needs-finance",
        "Approvers: 2 approvals needed from group finance",
        "Expires: 2031-05-01 14:30 UTC",
        "Approve: https://gate.example/approvals/dlv_01JTESTDELIVERY/approve?t=abc&lang=en",
        "Reject: https://gate.example/approvals/dlv_01JTESTDELIVERY/reject?t=abc&lang=en",
        "Answer (POST): https://gate.example/answers/one-time-token",
        "confirmation page",
        // Agent text cannot forge lines or terminal escapes.
        "Payload summary: line one line two [31m red",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains('\u{1b}'));

    // Without any link it says how to answer instead.
    msg.approve_url = None;
    msg.reject_url = None;
    msg.answer_url = None;
    assert!(ConsoleTransport::render(&msg).contains("No links configured"));
}

#[test]
fn a_summary_titles_the_request_and_the_dashboard_link_is_listed() {
    let mut msg = common::message();
    msg.summary = Some("Remind ACME of invoice 42\nBcc: x".into());
    msg.dashboard_url = Some("https://gate.example/ui/w/acme/runs/run_01JTESTRUN".into());
    let text = ConsoleTransport::render(&msg);
    assert!(
        text.contains("Approval needed: Remind ACME of invoice 42 Bcc: x (medium risk)"),
        "{text}"
    );
    assert!(
        text.contains("Dashboard: https://gate.example/ui/w/acme/runs/run_01JTESTRUN"),
        "{text}"
    );
    // A dashboard URL that is not a web URL is not shown.
    msg.dashboard_url = Some("javascript:alert(1)".into());
    assert!(!ConsoleTransport::render(&msg).contains("Dashboard:"));
}

#[test]
fn transport_errors_carry_message_and_retry_class() {
    let e = TransportError::transient("SMTP 451");
    assert!(e.retryable());
    assert_eq!(e.message(), "SMTP 451");
    assert_eq!(e.to_string(), "SMTP 451");
    let e = TransportError::permanent("no address");
    assert!(!e.retryable());
    let e = TransportError::new("x", true);
    assert!(e.retryable());
    let diagnostic: &dyn miette::Diagnostic = &e;
    assert_eq!(
        diagnostic.code().map(|c| c.to_string()).as_deref(),
        Some("countersign::transport")
    );
}
