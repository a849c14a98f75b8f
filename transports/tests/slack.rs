#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]
//! The Slack transport against a loopback HTTP server that answers the Web
//! API methods it uses like Slack does, plus the inbound side: signature
//! verification and interaction parsing.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{Duration as TimeDelta, Utc};
use countersign_transports::Transport;
use countersign_transports::slack::{
    self, ButtonValue, Decision, InteractionError, SlackAuthError, SlackConfig, SlackTransport,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const TOKEN: &str = "xoxb-test-token";
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TS: &str = "1700000000.000100";

#[derive(Debug, Clone)]
struct Call {
    method: String,
    authorization: Option<String>,
    body: Value,
}

#[derive(Clone, Default)]
struct FakeSlack {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl FakeSlack {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// Answers `chat.postMessage` and `chat.update` as Slack does. A few channel
/// ids trigger Slack's failure modes.
async fn api(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.calls.lock().unwrap().push(Call {
        method: method.clone(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: body.clone(),
    });
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    match channel.as_str() {
        "C_MISSING" => {
            return axum::Json(json!({"ok": false, "error": "channel_not_found"})).into_response();
        }
        "C_BUSY" => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                axum::Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response();
        }
        "C_DOWN" => return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
        _ => {}
    }
    // Slack answers a post to a user id from the app's DM channel with them.
    let channel = match channel.strip_prefix('U') {
        Some(user) => format!("D{user}"),
        None => channel,
    };
    match method.as_str() {
        "chat.postMessage" => axum::Json(json!({
            "ok": true,
            "channel": channel,
            "ts": TS,
            "message": {
                "type": "message",
                "subtype": "bot_message",
                "text": body["text"],
                "ts": TS,
                "bot_id": "B0COUNTERSIGN",
                "blocks": body["blocks"],
            },
        }))
        .into_response(),
        "chat.update" => axum::Json(json!({
            "ok": true,
            "channel": channel,
            "ts": body["ts"],
            "text": body["text"],
            "message": {"text": body["text"], "blocks": body["blocks"]},
        }))
        .into_response(),
        _ => axum::Json(json!({"ok": false, "error": "unknown_method"})).into_response(),
    }
}

async fn start() -> (FakeSlack, String) {
    let fake = FakeSlack::default();
    let app = Router::new()
        .route("/api/{method}", post(api))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}/api/"))
}

fn transport(base: &str, channel: Option<&str>) -> SlackTransport {
    SlackTransport::new(SlackConfig {
        bot_token: TOKEN.into(),
        api_base_url: base.into(),
        channel: channel.map(Into::into),
        signing_secret: SIGNING_SECRET.into(),
    })
    .unwrap()
}

fn field_texts(blocks: &Value) -> Vec<String> {
    let section = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "section" && b["fields"].is_array())
        .expect("a section with fields");
    section["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["type"], "mrkdwn");
            assert_eq!(f["verbatim"], true, "fields are verbatim: {f}");
            f["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn posts_header_fields_and_buttons_to_the_channel() {
    let (fake, base) = start().await;
    let transport = transport(&base, Some("C0APPROVALS"));
    assert_eq!(transport.channel(), "slack");
    let msg = common::message();

    let delivered = transport.deliver(&msg).await.unwrap();
    assert_eq!(
        delivered.external_id.as_deref(),
        Some("C0APPROVALS:1700000000.000100")
    );

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "chat.postMessage");
    assert_eq!(
        call.authorization.as_deref(),
        Some("Bearer xoxb-test-token")
    );
    assert_eq!(call.body["channel"], "C0APPROVALS");
    assert_eq!(
        call.body["text"],
        "Approval needed: send_invoice_reminder (medium risk)"
    );

    let blocks = &call.body["blocks"];
    let kinds: Vec<&str> = blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["header", "section", "context", "actions"]);
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(
        blocks[0]["text"]["text"],
        "Approval needed: send_invoice_reminder (medium risk)"
    );

    let fields = field_texts(blocks);
    let expected = [
        "*Action*\nsend_invoice_reminder",
        "*Actor*\nbilling-agent",
        "*Risk*\nmedium",
        "*Rule*\nlarge-invoice-needs-finance",
        "*Reason*\nInvoices over 10 000 EUR need a finance approver",
        "*Payload summary*\nRemind ACME &lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; [Approve](https://evil.example) &lt;!channel&gt;",
        "*Agent's reasoning*\n\"&gt;&lt;a href=\"javascript:alert(1)\"&gt;click me&lt;/a&gt; {{DATE(2017-02-14T06:08:00Z)}}",
        "*Approvers*\n2 approvals needed from group finance",
        "*Expires*\n2031-05-01 14:30 UTC",
    ];
    assert_eq!(fields, expected);
    // No raw mention or link syntax from the agent reaches Slack.
    let all = blocks.to_string();
    assert!(!all.contains("<!channel>"));
    assert!(!all.contains("<script>"));

    let context = blocks[2]["elements"][0]["text"].as_str().unwrap();
    assert!(context.contains("acme-finance") && context.contains("run_01JTESTRUN"));

    let actions = &blocks[3];
    assert_eq!(actions["block_id"], "countersign_actions");
    let buttons = actions["elements"].as_array().unwrap();
    assert_eq!(buttons.len(), 2);
    for (button, (action_id, label, style, decision)) in buttons.iter().zip([
        ("countersign_approve", "Approve", "primary", "approve"),
        ("countersign_reject", "Reject", "danger", "reject"),
    ]) {
        assert_eq!(button["type"], "button");
        assert_eq!(button["action_id"], action_id);
        assert_eq!(button["text"]["type"], "plain_text");
        assert_eq!(button["text"]["text"], label);
        assert_eq!(button["style"], style);
        let value: Value = serde_json::from_str(button["value"].as_str().unwrap()).unwrap();
        assert_eq!(
            value,
            json!({
                "run_id": "run_01JTESTRUN",
                "workspace": "acme-finance",
                "decision": decision,
                "delivery_id": "dlv_01JTESTDELIVERY",
            })
        );
    }
}

#[tokio::test]
async fn without_a_channel_it_sends_a_direct_message() {
    let (fake, base) = start().await;
    let transport = transport(&base, None);
    let delivered = transport.deliver(&common::message()).await.unwrap();
    assert_eq!(
        delivered.external_id.as_deref(),
        Some("D0ALICE:1700000000.000100")
    );
    assert_eq!(fake.calls()[0].body["channel"], "U0ALICE");

    let mut msg = common::message();
    msg.recipient.slack = None;
    let err = transport.deliver(&msg).await.unwrap_err();
    assert!(!err.retryable());
    assert_eq!(fake.calls().len(), 1, "nothing sent without a target");
}

#[tokio::test]
async fn update_outcome_replaces_the_buttons() {
    let (fake, base) = start().await;
    let transport = transport(&base, Some("C0APPROVALS"));
    transport
        .update_outcome("C0APPROVALS", TS, "✅ Approved by alice (1 of 2)")
        .await
        .unwrap();
    transport
        .update_outcome_with_request(
            "C0APPROVALS",
            TS,
            &common::message(),
            "❌ Rejected by <bob> & co",
        )
        .await
        .unwrap();

    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    let first = &calls[0];
    assert_eq!(first.method, "chat.update");
    assert_eq!(
        first.authorization.as_deref(),
        Some("Bearer xoxb-test-token")
    );
    assert_eq!(first.body["channel"], "C0APPROVALS");
    assert_eq!(first.body["ts"], TS);
    assert_eq!(first.body["text"], "✅ Approved by alice (1 of 2)");
    assert_eq!(
        first.body["blocks"],
        json!([{
            "type": "section",
            "text": {"type": "mrkdwn", "text": "✅ Approved by alice (1 of 2)", "verbatim": true},
        }])
    );

    let second = &calls[1];
    let blocks = second.body["blocks"].as_array().unwrap();
    assert!(
        blocks.iter().all(|b| b["type"] != "actions"),
        "no buttons left"
    );
    assert_eq!(blocks[0]["type"], "header");
    let last = blocks.last().unwrap();
    assert_eq!(last["text"]["text"], "❌ Rejected by &lt;bob&gt; &amp; co");
}

#[tokio::test]
async fn slack_failures_are_classified() {
    let (_fake, base) = start().await;
    let msg = common::message();

    let err = transport(&base, Some("C_MISSING"))
        .deliver(&msg)
        .await
        .unwrap_err();
    assert!(!err.retryable(), "{}", err.message());
    assert!(
        err.message().contains("channel_not_found"),
        "{}",
        err.message()
    );

    let err = transport(&base, Some("C_BUSY"))
        .deliver(&msg)
        .await
        .unwrap_err();
    assert!(err.retryable(), "{}", err.message());

    let err = transport(&base, Some("C_DOWN"))
        .deliver(&msg)
        .await
        .unwrap_err();
    assert!(err.retryable(), "{}", err.message());

    // Nothing listens here any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/api/", listener.local_addr().unwrap());
    drop(listener);
    let err = transport(&closed, Some("C0APPROVALS"))
        .deliver(&msg)
        .await
        .unwrap_err();
    assert!(err.retryable(), "{}", err.message());
}

#[test]
fn plain_http_is_refused_for_a_remote_api() {
    let err = SlackTransport::new(SlackConfig {
        api_base_url: "http://slack.example.com/api/".into(),
        ..SlackConfig::new(TOKEN, SIGNING_SECRET)
    })
    .unwrap_err();
    assert!(!err.retryable());
    // The default points at Slack over https, and building needs no runtime.
    assert!(SlackTransport::new(SlackConfig::new(TOKEN, SIGNING_SECRET)).is_ok());
}

/// Slack's v0 signature, computed here independently of the crate.
fn slack_sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn verify_signature_accepts_only_fresh_correct_signatures() {
    let now = Utc::now();
    let timestamp = now.timestamp().to_string();
    let body = b"payload=%7B%22type%22%3A%22block_actions%22%7D";
    let signature = slack_sign(SIGNING_SECRET, &timestamp, body);

    // Correct: accepted by us and by slack-morphism's own verifier.
    slack::verify_signature(SIGNING_SECRET, &timestamp, &signature, body, now).unwrap();
    slack_morphism::signature_verifier::SlackEventSignatureVerifier::new(
        &slack_morphism::prelude::SlackSigningSecret::new(SIGNING_SECRET.into()),
    )
    .verify(&signature, std::str::from_utf8(body).unwrap(), &timestamp)
    .unwrap();
    // Upper-case hex is the same signature.
    let upper = format!("v0={}", signature[3..].to_uppercase());
    slack::verify_signature(SIGNING_SECRET, &timestamp, &upper, body, now).unwrap();

    // Wrong secret, altered body, altered timestamp.
    let wrong = slack_sign("another-secret", &timestamp, body);
    assert_eq!(
        slack::verify_signature(SIGNING_SECRET, &timestamp, &wrong, body, now),
        Err(SlackAuthError::BadSignature)
    );
    assert_eq!(
        slack::verify_signature(SIGNING_SECRET, &timestamp, &signature, b"payload=x", now),
        Err(SlackAuthError::BadSignature)
    );
    let other_ts = (now.timestamp() - 1).to_string();
    assert_eq!(
        slack::verify_signature(SIGNING_SECRET, &other_ts, &signature, body, now),
        Err(SlackAuthError::BadSignature)
    );

    // Stale or from the future, even when correctly signed.
    for offset in [-301, 301, -86_400] {
        let then = now + TimeDelta::seconds(offset);
        let ts = then.timestamp().to_string();
        let sig = slack_sign(SIGNING_SECRET, &ts, body);
        assert!(
            matches!(
                slack::verify_signature(SIGNING_SECRET, &ts, &sig, body, now),
                Err(SlackAuthError::StaleTimestamp { .. })
            ),
            "offset {offset}"
        );
    }
    // Exactly at the edge is still fresh.
    let edge = (now - TimeDelta::seconds(300)).timestamp().to_string();
    let sig = slack_sign(SIGNING_SECRET, &edge, body);
    slack::verify_signature(SIGNING_SECRET, &edge, &sig, body, now).unwrap();

    // Malformed headers.
    for bad_ts in [
        "",
        "abc",
        "-1700000000",
        "1700000000.5",
        "99999999999999999999",
    ] {
        assert_eq!(
            slack::verify_signature(SIGNING_SECRET, bad_ts, &signature, body, now),
            Err(SlackAuthError::MalformedTimestamp),
            "timestamp {bad_ts:?}"
        );
    }
    for bad_sig in [
        "",
        "v0=",
        "v0=zz",
        &signature[3..],
        &format!("v1={}", &signature[3..]),
        &signature[..signature.len() - 2],
        &format!("{signature}00"),
    ] {
        assert_eq!(
            slack::verify_signature(SIGNING_SECRET, &timestamp, bad_sig, body, now),
            Err(SlackAuthError::MalformedSignature),
            "signature {bad_sig:?}"
        );
    }
    assert_eq!(
        slack::verify_signature("", &timestamp, &signature, body, now),
        Err(SlackAuthError::NoSecret)
    );
}

/// A `block_actions` payload shaped like the ones Slack sends when someone
/// clicks a button in a message.
fn interaction_payload(action_id: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": "T0ACME"},
        "api_app_id": "A0COUNTERSIGN",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": TS,
            "channel_id": "C0APPROVALS",
            "is_ephemeral": false
        },
        "trigger_id": "123.456.abc",
        "team": {"id": "T0ACME", "domain": "acme"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": "C0APPROVALS", "name": "approvals"},
        "message": {
            "type": "message",
            "subtype": "bot_message",
            "text": "Approval needed: send_invoice_reminder (medium risk)",
            "ts": TS,
            "bot_id": "B0COUNTERSIGN",
            "blocks": []
        },
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0ACME/1234/abcdef",
        "actions": [{
            "action_id": action_id,
            "block_id": "countersign_actions",
            "text": {"type": "plain_text", "text": "Approve", "emoji": true},
            "value": value,
            "style": "primary",
            "type": "button",
            "action_ts": "1700000005.123456"
        }]
    })
}

fn form_body(payload: &Value) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
        .into_bytes()
}

#[tokio::test]
async fn a_button_click_round_trips_through_verify_and_parse() {
    let (fake, base) = start().await;
    let transport = transport(&base, Some("C0APPROVALS"));
    transport.deliver(&common::message()).await.unwrap();
    // The value Slack sends back is the one we put on the button.
    let posted = &fake.calls()[0].body["blocks"][3]["elements"][0];
    let value = posted["value"].as_str().unwrap();

    let body = form_body(&interaction_payload("countersign_approve", value));
    let now = Utc::now();
    let timestamp = now.timestamp().to_string();
    let signature = slack_sign(SIGNING_SECRET, &timestamp, &body);
    transport
        .verify(&timestamp, &signature, &body, now)
        .unwrap();

    let interaction = slack::parse_interaction(&body).unwrap();
    assert_eq!(interaction.user_id, "U0ALICE");
    assert_eq!(interaction.user_name.as_deref(), Some("alice"));
    assert_eq!(interaction.team_id.as_deref(), Some("T0ACME"));
    assert_eq!(interaction.action_id, "countersign_approve");
    assert_eq!(
        interaction.value,
        ButtonValue {
            run_id: "run_01JTESTRUN".into(),
            workspace: "acme-finance".into(),
            decision: Decision::Approve,
            delivery_id: "dlv_01JTESTDELIVERY".into(),
        }
    );
    assert_eq!(interaction.channel_id, "C0APPROVALS");
    assert_eq!(interaction.message_ts, TS);
    assert_eq!(
        interaction.response_url.as_deref(),
        Some("https://hooks.slack.com/actions/T0ACME/1234/abcdef")
    );
}

#[test]
fn parse_interaction_refuses_what_is_not_a_countersign_click() {
    let reject_value = r#"{"run_id":"r","workspace":"w","decision":"reject","delivery_id":"d"}"#;
    let ok = slack::parse_interaction(&form_body(&interaction_payload(
        "countersign_reject",
        reject_value,
    )))
    .unwrap();
    assert_eq!(ok.value.decision, Decision::Reject);

    assert_eq!(
        slack::parse_interaction(b"token=abc&team_id=T1"),
        Err(InteractionError::NoPayload)
    );
    assert!(matches!(
        slack::parse_interaction(b"payload=%7Bnot%20json"),
        Err(InteractionError::InvalidJson(_))
    ));
    let mut shortcut = interaction_payload("countersign_reject", reject_value);
    shortcut["type"] = json!("shortcut");
    assert_eq!(
        slack::parse_interaction(&form_body(&shortcut)),
        Err(InteractionError::NotBlockActions("shortcut".into()))
    );
    let mut no_actions = interaction_payload("countersign_reject", reject_value);
    no_actions["actions"] = json!([]);
    assert_eq!(
        slack::parse_interaction(&form_body(&no_actions)),
        Err(InteractionError::NoAction)
    );
    assert_eq!(
        slack::parse_interaction(&form_body(&interaction_payload(
            "other_button",
            reject_value
        ))),
        Err(InteractionError::UnknownAction("other_button".into()))
    );
    // A reject value on the approve button is refused.
    assert!(matches!(
        slack::parse_interaction(&form_body(&interaction_payload(
            "countersign_approve",
            reject_value
        ))),
        Err(InteractionError::InvalidValue(_))
    ));
    assert!(matches!(
        slack::parse_interaction(&form_body(&interaction_payload(
            "countersign_approve",
            "not json"
        ))),
        Err(InteractionError::InvalidValue(_))
    ));
}
