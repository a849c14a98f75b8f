#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]
//! The webhook transport against a loopback receiver. Signatures are checked
//! twice, independently of the crate: recomputed here with HMAC-SHA256, and
//! verified by the `standardwebhooks` reference package from PyPI.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use common::receiver;
use countersign_transports::Transport;
use countersign_transports::webhook::{self, WebhookTarget, WebhookTransport};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// 24 random-looking key bytes, Standard Webhooks format.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn transport(url: String) -> WebhookTransport {
    WebhookTransport::new(WebhookTarget {
        name: "ops-ticketing".into(),
        url,
        secret: SECRET.into(),
    })
    .unwrap()
}

/// The signature recomputed here from the spec, without the crate.
fn expected_signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Runs the `standardwebhooks` package's verifier; `Ok(payload)` or
/// `Err(stderr)`.
fn verify_with_standardwebhooks(headers: &[(&str, &str)], body: &str) -> Result<Value, String> {
    common::ensure_python_module("standardwebhooks", "standardwebhooks");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/verify_standard_webhook.py"
    );
    let request = json!({
        "secret": SECRET,
        "headers": headers.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "body": body,
    });
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn delivers_a_signed_event_that_standard_webhooks_verifies() {
    let receiver = receiver::start().await;
    let transport = transport(receiver.url("/hooks/countersign"));
    assert_eq!(transport.channel(), "webhook");
    assert_eq!(transport.name(), "ops-ticketing");
    let msg = common::message();

    let before = Utc::now().timestamp();
    let delivered = transport.deliver(&msg).await.unwrap();
    let after = Utc::now().timestamp();
    assert_eq!(delivered.external_id, None);

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/countersign");
    assert_eq!(request.header("content-type"), "application/json");

    let id = request.header("webhook-id");
    let timestamp = request.header("webhook-timestamp");
    let signature = request.header("webhook-signature");
    assert_eq!(id, "dlv_01JTESTDELIVERY");
    let seconds: i64 = timestamp.parse().unwrap();
    assert!((before..=after).contains(&seconds));

    // Recomputed independently.
    assert_eq!(signature, expected_signature(id, timestamp, &request.body));
    // The crate's public sign() agrees.
    assert_eq!(
        signature,
        webhook::sign(SECRET, id, seconds, &request.body).unwrap()
    );

    // And the reference implementation accepts it.
    let body = std::str::from_utf8(&request.body).unwrap();
    let headers = [
        ("webhook-id", id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ];
    let verified = verify_with_standardwebhooks(&headers, body).unwrap();

    let expected = json!({
        "type": "approval.requested",
        "timestamp": verified["timestamp"],
        "data": {
            "delivery_id": "dlv_01JTESTDELIVERY",
            "run_id": "run_01JTESTRUN",
            "workspace": "acme-finance",
            "action": "send_invoice_reminder",
            "actor": "billing-agent",
            "risk": "medium",
            "reasoning": common::HOSTILE_REASONING,
            "payload_summary": common::HOSTILE_PAYLOAD,
            "rule": "large-invoice-needs-finance",
            "reason": "Invoices over 10 000 EUR need a finance approver",
            "group": "finance",
            "quorum": 2,
            "expires_at": "2031-05-01T14:30:00Z",
            "approver": "alice",
            "answer_url": "https://gate.example/answers/one-time-token",
            "approve_url": "https://gate.example/approvals/dlv_01JTESTDELIVERY/approve?t=abc&lang=en",
            "reject_url": "https://gate.example/approvals/dlv_01JTESTDELIVERY/reject?t=abc&lang=en",
            "approvers": [
                {"id": "alice", "eligible_from": null},
                {"id": "carol", "eligible_from": "2031-05-01T12:00:00Z"},
            ],
        }
    });
    assert_eq!(verified, expected);
    let event_time =
        chrono::DateTime::parse_from_rfc3339(verified["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(event_time.timestamp(), seconds);

    // The reference implementation refuses a tampered body or a foreign id.
    let tampered = body.replace("\"quorum\":2", "\"quorum\":1");
    assert_ne!(tampered, body);
    assert!(verify_with_standardwebhooks(&headers, &tampered).is_err());
    let other_id = [
        ("webhook-id", "dlv_other"),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ];
    assert!(verify_with_standardwebhooks(&other_id, body).is_err());
}

#[tokio::test]
async fn a_retry_keeps_the_webhook_id() {
    let receiver = receiver::start().await;
    let transport = transport(receiver.url("/hook"));
    let msg = common::message();
    transport.deliver(&msg).await.unwrap();
    transport.deliver(&msg).await.unwrap();
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
}

#[tokio::test]
async fn redirects_are_refused_and_not_followed() {
    let receiver = receiver::start().await;
    let err = transport(receiver.url("/redirect"))
        .deliver(&common::message())
        .await
        .unwrap_err();
    assert!(!err.retryable(), "{}", err.message());
    assert!(err.message().contains("302"), "{}", err.message());
    let paths: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/redirect"], "the redirect was not followed");
}

#[tokio::test]
async fn failures_are_classified_by_status() {
    let receiver = receiver::start().await;
    for (code, retryable) in [
        (500, true),
        (503, true),
        (429, true),
        (408, true),
        (400, false),
        (401, false),
        (404, false),
        (410, false),
    ] {
        let err = transport(receiver.url(&format!("/status/{code}")))
            .deliver(&common::message())
            .await
            .unwrap_err();
        assert_eq!(err.retryable(), retryable, "{code}: {}", err.message());
        assert!(
            err.message().contains(&code.to_string()),
            "{}",
            err.message()
        );
    }
    // Any 2xx is success.
    transport(receiver.url("/status/204"))
        .deliver(&common::message())
        .await
        .unwrap();
}

#[tokio::test]
async fn timeouts_and_connection_failures_are_retryable() {
    let receiver = receiver::start().await;
    let slow = transport(receiver.url("/slow")).with_timeout(Duration::from_millis(300));
    let err = slow.deliver(&common::message()).await.unwrap_err();
    assert!(err.retryable(), "{}", err.message());
    assert!(err.message().contains("timed out"), "{}", err.message());

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let err = transport(closed)
        .deliver(&common::message())
        .await
        .unwrap_err();
    assert!(err.retryable(), "{}", err.message());
}

#[test]
fn bad_targets_are_refused_up_front() {
    let target = |url: &str, secret: &str| WebhookTarget {
        name: "t".into(),
        url: url.into(),
        secret: secret.into(),
    };
    for (url, secret) in [
        ("ftp://example.com/hook", SECRET),
        ("not a url", SECRET),
        ("https://example.com/hook", "whsec_not base64!"),
        ("https://example.com/hook", "whsec_"),
    ] {
        let err = WebhookTransport::new(target(url, secret)).unwrap_err();
        assert!(!err.retryable());
        assert!(
            !err.message().contains("C2FVsBQ"),
            "the secret never appears in errors"
        );
    }
    // Building needs no runtime.
    assert!(WebhookTransport::new(target("https://example.com/hook", SECRET)).is_ok());
}
