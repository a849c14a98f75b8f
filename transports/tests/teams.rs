#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]
//! The Teams transport against a loopback receiver standing in for a
//! Workflows webhook URL.

mod common;

use common::receiver;
use countersign_transports::Transport;
use countersign_transports::teams::TeamsTransport;
use serde_json::{Value, json};

#[tokio::test]
async fn posts_an_adaptive_card_with_facts_and_confirmation_links() {
    let receiver = receiver::start().await;
    let transport = TeamsTransport::new(
        receiver.url("/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SECRET"),
    )
    .unwrap();
    assert_eq!(transport.channel(), "teams");
    transport.deliver(&common::message()).await.unwrap();

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert!(request.path.ends_with("sig=SECRET"));
    assert_eq!(request.header("content-type"), "application/json");
    let body: Value = serde_json::from_slice(&request.body).unwrap();

    assert_eq!(body["type"], "message");
    let attachments = body["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachments[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );

    let body_items = card["body"].as_array().unwrap();
    assert_eq!(body_items[0]["type"], "TextBlock");
    assert_eq!(
        body_items[0]["text"],
        "Approval needed: send\\_invoice\\_reminder (medium risk)"
    );
    let fact_set = body_items
        .iter()
        .find(|b| b["type"] == "FactSet")
        .expect("a FactSet");
    let facts: Vec<(String, String)> = fact_set["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["title"].as_str().unwrap().to_owned(),
                f["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("Action", r"send\_invoice\_reminder"),
        ("Actor", "billing-agent"),
        ("Risk", "medium"),
        ("Rule", "large-invoice-needs-finance"),
        ("Reason", "Invoices over 10 000 EUR need a finance approver"),
        (
            "Payload summary",
            r#"Remind ACME \<script\>alert("x")\</script\> & \<img src=x onerror=alert(1)\> \[Approve\](https://evil.example) \<!channel\>"#,
        ),
        (
            "Agent's reasoning",
            r#""\>\<a href="javascript:alert(1)"\>click me\</a\> \{\{DATE(2017-02-14T06:08:00Z)\}\}"#,
        ),
        ("Approvers", "2 approvals needed from group finance"),
        ("Expires", "2031-05-01 14:30 UTC"),
        ("Workspace", "acme-finance"),
        ("Run", r"run\_01JTESTRUN"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(facts, expected);
    assert!(
        body_items.iter().any(|b| b["text"]
            .as_str()
            .is_some_and(|t| t.contains("confirmation page"))),
        "the card says the buttons open a confirmation page"
    );

    assert_eq!(
        card["actions"],
        json!([
            {
                "type": "Action.OpenUrl",
                "title": "Approve",
                "url": "https://gate.example/approvals/dlv_01JTESTDELIVERY/approve?t=abc&lang=en",
                "style": "positive",
            },
            {
                "type": "Action.OpenUrl",
                "title": "Reject",
                "url": "https://gate.example/approvals/dlv_01JTESTDELIVERY/reject?t=abc&lang=en",
                "style": "destructive",
            },
        ])
    );
    // No submit actions: a webhook card cannot carry them.
    assert!(!request_text(&request.body).contains("Action.Submit"));
}

fn request_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[tokio::test]
async fn only_web_links_become_buttons() {
    let receiver = receiver::start().await;
    let transport = TeamsTransport::new(receiver.url("/flow")).unwrap();
    let mut msg = common::message();
    msg.approve_url = Some("javascript:alert(1)".into());
    msg.reject_url = None;
    transport.deliver(&msg).await.unwrap();
    let body: Value = serde_json::from_slice(&receiver.received()[0].body).unwrap();
    assert_eq!(body["attachments"][0]["content"]["actions"], json!([]));
}

#[tokio::test]
async fn redirects_and_statuses_are_classified() {
    let receiver = receiver::start().await;
    let deliver = |path: &str| {
        let transport = TeamsTransport::new(receiver.url(path)).unwrap();
        async move { transport.deliver(&common::message()).await }
    };
    let err = deliver("/redirect").await.unwrap_err();
    assert!(!err.retryable(), "{}", err.message());
    assert_eq!(
        receiver.received().len(),
        1,
        "the redirect was not followed"
    );

    assert!(deliver("/status/502").await.unwrap_err().retryable());
    assert!(deliver("/status/429").await.unwrap_err().retryable());
    assert!(!deliver("/status/400").await.unwrap_err().retryable());
    // Workflows answer 202 Accepted.
    deliver("/status/202").await.unwrap();

    // The signed URL never shows up in errors.
    let err = deliver("/status/500?sig=SECRET").await.unwrap_err();
    assert!(!err.message().contains("SECRET"), "{}", err.message());
}
