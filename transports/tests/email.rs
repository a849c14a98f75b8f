#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]
//! The email transport against a real SMTP server (aiosmtpd, in a Python
//! subprocess on loopback). The server parses every mail it accepts with
//! Python's email package and hands it back as JSON, so the mail is checked
//! by a parser that is not lettre.

mod common;

use std::process::Stdio;
use std::time::Duration;

use countersign_transports::Transport;
use countersign_transports::email::{EmailTransport, SmtpConfig, SmtpSecurity};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

struct SmtpServer {
    port: u16,
    lines: Lines<BufReader<ChildStdout>>,
    // Killed on drop; its stdin closing also stops it.
    _child: Child,
}

impl SmtpServer {
    async fn start(auth: Option<&str>) -> Self {
        common::ensure_python_module("aiosmtpd", "aiosmtpd");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
        let mut command = Command::new("python3");
        command.arg(script);
        if let Some(auth) = auth {
            command.args(["--auth", auth]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("SMTP server starts within 30 s")
            .unwrap()
            .expect("SMTP server prints its port");
        let port = first
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP server: {first}"));
        Self {
            port,
            lines,
            _child: child,
        }
    }

    fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            security: SmtpSecurity::Plain,
            username: None,
            password: None,
            from: "Countersign <approvals@countersign.test>".into(),
            timeout: Duration::from_secs(10),
        }
    }

    fn transport(&self) -> EmailTransport {
        EmailTransport::new(self.config()).unwrap()
    }

    /// The next mail the server accepted.
    async fn next_mail(&mut self) -> Value {
        let line = timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("a mail arrives within 10 s")
            .unwrap()
            .expect("the SMTP server is still running");
        serde_json::from_str(&line).unwrap()
    }
}

fn header(mail: &Value, name: &str) -> String {
    let values = mail["headers"][name]
        .as_array()
        .unwrap_or_else(|| panic!("mail has no {name} header: {}", mail["headers"]));
    assert_eq!(values.len(), 1, "exactly one {name} header");
    values[0].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn delivers_a_multipart_mail_with_every_fact_and_escaped_html() {
    let mut server = SmtpServer::start(None).await;
    let transport = server.transport();
    assert_eq!(transport.channel(), "email");
    let msg = common::message();

    let delivered = transport.deliver(&msg).await.unwrap();
    assert_eq!(
        delivered.external_id.as_deref(),
        Some("<dlv_01JTESTDELIVERY@countersign>")
    );

    let mail = server.next_mail().await;
    assert_eq!(mail["mail_from"], "approvals@countersign.test");
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["alice@example.com"]));
    assert_eq!(
        header(&mail, "subject"),
        "[Countersign] Approval needed: send_invoice_reminder (medium risk)"
    );
    assert_eq!(
        header(&mail, "message-id"),
        "<dlv_01JTESTDELIVERY@countersign>"
    );
    assert_eq!(header(&mail, "to"), "Alice Martin <alice@example.com>");
    assert_eq!(
        header(&mail, "from"),
        "Countersign <approvals@countersign.test>"
    );
    assert_eq!(header(&mail, "auto-submitted"), "auto-generated");
    assert!(!header(&mail, "date").is_empty());
    assert_eq!(mail["content_type"], "multipart/alternative");
    let parts: Vec<&str> = mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(parts, ["multipart/alternative", "text/plain", "text/html"]);

    let text = mail["text"].as_str().unwrap();
    for expected in [
        "Approval needed: send_invoice_reminder (medium risk)",
        "Hello Alice Martin,",
        "Action: send_invoice_reminder",
        "Actor: billing-agent",
        "Risk: medium",
        "Rule: large-invoice-needs-finance",
        "Reason: Invoices over 10 000 EUR need a finance approver",
        &format!("Payload summary: {}", common::HOSTILE_PAYLOAD),
        &format!("Agent's reasoning: {}", common::HOSTILE_REASONING),
        "Approvers: 2 approvals needed from group finance",
        "Expires: 2031-05-01 14:30 UTC",
        "Approve: https://gate.example/approvals/dlv_01JTESTDELIVERY/approve?t=abc&lang=en",
        "Reject:  https://gate.example/approvals/dlv_01JTESTDELIVERY/reject?t=abc&lang=en",
        "Each link opens a confirmation page; nothing is decided until you confirm there.",
    ] {
        assert!(
            text.contains(expected),
            "text body lacks {expected:?}:\n{text}"
        );
    }

    let html = mail["html"].as_str().unwrap();
    for expected in [
        "send_invoice_reminder",
        "billing-agent",
        "medium",
        "large-invoice-needs-finance",
        "Invoices over 10 000 EUR need a finance approver",
        "2 approvals needed from group finance",
        "2031-05-01 14:30 UTC",
        // Hostile payload, escaped.
        "Remind ACME &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; [Approve](https://evil.example) &lt;!channel&gt;",
        // Hostile reasoning, escaped.
        "&quot;&gt;&lt;a href=&quot;javascript:alert(1)&quot;&gt;click me&lt;/a&gt;",
        // The two links, with their query escaped in the attribute.
        "href=\"https://gate.example/approvals/dlv_01JTESTDELIVERY/approve?t=abc&amp;lang=en\"",
        "href=\"https://gate.example/approvals/dlv_01JTESTDELIVERY/reject?t=abc&amp;lang=en\"",
        ">Approve</a>",
        ">Reject</a>",
        "Each link opens a confirmation page; nothing is decided until you confirm there.",
    ] {
        assert!(
            html.contains(expected),
            "HTML body lacks {expected:?}:\n{html}"
        );
    }
    assert!(!html.contains("<script"), "raw script tag in HTML");
    assert!(!html.contains("<img"), "raw img tag in HTML");
    assert!(
        !html.contains("href=\"javascript"),
        "javascript link in HTML"
    );
    assert_eq!(html.matches("<a ").count(), 2, "only the two buttons link");
}

#[tokio::test]
async fn a_retried_delivery_keeps_its_message_id() {
    let mut server = SmtpServer::start(None).await;
    let transport = server.transport();
    let mut msg = common::message();
    msg.delivery_id = "dlv:weird id/é".into();
    transport.deliver(&msg).await.unwrap();
    transport.deliver(&msg).await.unwrap();
    let first = header(&server.next_mail().await, "message-id");
    let second = header(&server.next_mail().await, "message-id");
    assert_eq!(first, second);
    assert_eq!(first, "<dlv=3Aweird=20id=2F=C3=A9@countersign>");
}

#[tokio::test]
async fn a_recipient_without_email_is_a_permanent_error_and_sends_nothing() {
    let mut server = SmtpServer::start(None).await;
    let transport = server.transport();
    let mut msg = common::message();
    msg.recipient.email = None;
    let err = transport.deliver(&msg).await.unwrap_err();
    assert!(!err.retryable());
    assert!(err.message().contains("alice"), "{}", err.message());

    msg.recipient.email = Some("not an address".into());
    let err = transport.deliver(&msg).await.unwrap_err();
    assert!(!err.retryable());

    // Nothing was sent: the next mail the server sees is this one.
    let mut ok = common::message();
    ok.delivery_id = "dlv_after".into();
    transport.deliver(&ok).await.unwrap();
    let mail = server.next_mail().await;
    assert_eq!(header(&mail, "message-id"), "<dlv_after@countersign>");
}

#[tokio::test]
async fn smtp_4xx_is_retryable_and_5xx_is_permanent() {
    let server = SmtpServer::start(None).await;
    let transport = server.transport();
    let mut msg = common::message();

    msg.recipient.email = Some("tempfail@example.com".into());
    let err = transport.deliver(&msg).await.unwrap_err();
    assert!(err.retryable(), "{}", err.message());
    assert!(err.message().contains("451"), "{}", err.message());

    msg.recipient.email = Some("permfail@example.com".into());
    let err = transport.deliver(&msg).await.unwrap_err();
    assert!(!err.retryable(), "{}", err.message());
    assert!(err.message().contains("550"), "{}", err.message());
}

#[tokio::test]
async fn authenticates_and_wrong_credentials_are_permanent() {
    let mut server = SmtpServer::start(Some("countersign:s3cret")).await;

    let wrong = EmailTransport::new(SmtpConfig {
        username: Some("countersign".into()),
        password: Some("wrong".into()),
        ..server.config()
    })
    .unwrap();
    let err = wrong.deliver(&common::message()).await.unwrap_err();
    assert!(!err.retryable(), "{}", err.message());

    let right = EmailTransport::new(SmtpConfig {
        username: Some("countersign".into()),
        password: Some("s3cret".into()),
        ..server.config()
    })
    .unwrap();
    right.deliver(&common::message()).await.unwrap();
    let mail = server.next_mail().await;
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["alice@example.com"]));
}

#[tokio::test]
async fn required_starttls_never_falls_back_to_plain_text() {
    let mut server = SmtpServer::start(None).await;
    let starttls = EmailTransport::new(SmtpConfig {
        security: SmtpSecurity::StartTls,
        ..server.config()
    })
    .unwrap();
    let err = starttls.deliver(&common::message()).await.unwrap_err();
    assert!(!err.retryable(), "{}", err.message());

    // Nothing went through in clear: the next mail is the plain one.
    let mut msg = common::message();
    msg.delivery_id = "dlv_plain".into();
    server.transport().deliver(&msg).await.unwrap();
    assert_eq!(
        header(&server.next_mail().await, "message-id"),
        "<dlv_plain@countersign>"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let transport = EmailTransport::new(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
        from: "approvals@countersign.test".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let err = transport.deliver(&common::message()).await.unwrap_err();
    assert!(err.retryable(), "{}", err.message());
}

#[tokio::test]
async fn a_server_that_stops_answering_times_out_as_retryable() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            held.push(socket);
        }
    });
    let transport = EmailTransport::new(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
        from: "approvals@countersign.test".into(),
        timeout: Duration::from_millis(500),
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = transport.deliver(&common::message()).await.unwrap_err();
    assert!(err.retryable(), "{}", err.message());
    assert!(err.message().contains("timed out"), "{}", err.message());
    assert!(started.elapsed() < Duration::from_secs(5));
    silent.abort();
}
