//! Email over SMTP, with lettre's async client on Tokio and rustls (ring).
//!
//! Each approval request becomes one `multipart/alternative` mail (plain text
//! and HTML) to the recipient's address, with a `Message-ID` derived from
//! the delivery id so that a retried delivery is recognisably the same mail.
//! Approve and Reject are links to confirmation pages: opening one changes
//! nothing until the approver confirms on the page.
//!
//! Every value in the HTML body is HTML-escaped: payload summaries and
//! reasoning come from agents and are treated as hostile. SMTP 4xx replies,
//! timeouts and connection failures are retryable; 5xx replies, TLS failures
//! and bad configuration are not.

use std::fmt;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::text::{self, Fact, facts, html_escape, one_line, title, truncate, web_link};
use crate::{ApprovalMessage, Delivered, Transport, TransportError};

/// Longest value shown in one fact; longer ones are cut with an ellipsis.
const MAX_FACT_CHARS: usize = 5000;

/// Domain part of every `Message-ID` this transport sets.
pub const MESSAGE_ID_DOMAIN: &str = "countersign";

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// No encryption at all. For a relay on the same host or a test server
    /// only: credentials and mail travel in clear.
    Plain,
    /// Plain connection upgraded with STARTTLS, which is required: if the
    /// server does not offer it, nothing is sent (no downgrade). Usually
    /// port 587.
    StartTls,
    /// TLS from the first byte (SMTPS, "implicit TLS"). Usually port 465.
    Tls,
}

/// Where and how to send mail.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// SMTP server host name; also the name its TLS certificate must carry.
    pub host: String,
    /// SMTP server port (25, 465 or 587, usually).
    pub port: u16,
    /// Connection protection.
    pub security: SmtpSecurity,
    /// User name for SMTP AUTH; set together with `password`, or neither.
    pub username: Option<String>,
    /// Password for SMTP AUTH; set together with `username`, or neither.
    pub password: Option<String>,
    /// The `From:` mailbox, e.g. `Countersign <approvals@example.com>`.
    pub from: String,
    /// Time allowed for one whole delivery: connecting, TLS, and the SMTP
    /// conversation up to the server's answer to the mail.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends approval requests by email.
pub struct EmailTransport {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
    timeout: Duration,
}

impl fmt::Debug for EmailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailTransport")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl EmailTransport {
    /// Checks the configuration and builds the transport. Nothing is
    /// connected yet: the first delivery opens the connection.
    pub fn new(config: SmtpConfig) -> Result<Self, TransportError> {
        let host = config.host.trim();
        if host.is_empty() {
            return Err(TransportError::permanent("SMTP host is empty"));
        }
        if config.port == 0 {
            return Err(TransportError::permanent("SMTP port is 0"));
        }
        if config.timeout.is_zero() {
            return Err(TransportError::permanent("SMTP timeout is zero"));
        }
        let from: Mailbox = config.from.parse().map_err(|e| {
            TransportError::permanent(format!("SMTP from address {:?}: {e}", config.from))
        })?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port)
            .timeout(Some(config.timeout));
        match config.security {
            SmtpSecurity::Plain => {}
            SmtpSecurity::StartTls => builder = builder.tls(Tls::Required(tls_parameters(host)?)),
            SmtpSecurity::Tls => builder = builder.tls(Tls::Wrapper(tls_parameters(host)?)),
        }
        match (config.username, config.password) {
            (Some(user), Some(password)) => {
                if config.security == SmtpSecurity::Plain {
                    tracing::warn!(
                        smtp_host = %host,
                        "SMTP credentials will be sent without encryption (security: plain)"
                    );
                }
                builder = builder.credentials(Credentials::new(user, password));
            }
            (None, None) => {}
            _ => {
                return Err(TransportError::permanent(
                    "SMTP username and password must be set together",
                ));
            }
        }
        Ok(Self {
            mailer: builder.build(),
            from,
            server: format!("{host}:{}", config.port),
            timeout: config.timeout,
        })
    }

    /// The mail sent for `msg`, ready for SMTP (headers and both bodies).
    fn compose(&self, msg: &ApprovalMessage) -> Result<Message, TransportError> {
        let address = msg
            .recipient
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                TransportError::permanent(format!(
                    "approver {:?} has no email address",
                    msg.recipient.approver_id
                ))
            })?;
        let address: Address = address.parse().map_err(|e| {
            TransportError::permanent(format!(
                "approver {:?} has an invalid email address: {e}",
                msg.recipient.approver_id
            ))
        })?;
        let name = msg
            .recipient
            .name
            .as_deref()
            .map(|n| one_line(n).trim().to_owned())
            .filter(|n| !n.is_empty());
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject(format!("[Countersign] {}", title(msg)))
            .message_id(Some(message_id(&msg.delivery_id)?))
            .header(AutoSubmitted)
            .multipart(MultiPart::alternative_plain_html(
                text_body(msg),
                html_body(msg),
            ))
            .map_err(|e| TransportError::permanent(format!("cannot build the mail: {e}")))
    }

    /// Sends a short service message that is not an approval request (a
    /// dashboard sign-in link): plain text, one recipient, same server and
    /// timeout as the approval mails.
    ///
    /// Errors: an invalid address or subject (permanent), an SMTP failure
    /// (transient or permanent, as the server answered).
    pub async fn send_notice(
        &self,
        to: &str,
        subject: &str,
        text: String,
    ) -> Result<(), TransportError> {
        let address: Address = to
            .trim()
            .parse()
            .map_err(|e| TransportError::permanent(format!("invalid email address {to:?}: {e}")))?;
        let mail = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, address))
            .subject(one_line(subject))
            .header(AutoSubmitted)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| TransportError::permanent(format!("cannot build the mail: {e}")))?;
        self.send(mail).await.map(|_| ())
    }

    /// Sends one mail, bounding the whole SMTP conversation by the timeout:
    /// lettre's own timeout covers connecting only, so a server that stops
    /// answering could otherwise hang the delivery.
    async fn send(&self, mail: Message) -> Result<Response, TransportError> {
        match tokio::time::timeout(self.timeout, self.mailer.send(mail)).await {
            Err(_) => Err(TransportError::transient(format!(
                "SMTP delivery via {} timed out after {:?}",
                self.server, self.timeout
            ))),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(smtp_error(&e, &self.server)),
        }
    }
}

#[async_trait::async_trait]
impl Transport for EmailTransport {
    fn channel(&self) -> &'static str {
        "email"
    }

    async fn deliver(&self, msg: &ApprovalMessage) -> Result<Delivered, TransportError> {
        let mail = self.compose(msg)?;
        let id = message_id(&msg.delivery_id)?;
        let response = self.send(mail).await?;
        tracing::info!(
            delivery_id = %msg.delivery_id,
            smtp_server = %self.server,
            smtp_reply = response.first_line().unwrap_or(""),
            "approval request delivered by email"
        );
        Ok(Delivered {
            external_id: Some(id),
        })
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, TransportError> {
    TlsParameters::new(host.to_owned())
        .map_err(|e| TransportError::permanent(format!("SMTP TLS setup for {host}: {e}")))
}

/// Classifies an SMTP failure: 4xx, timeouts, connection and network errors
/// may pass later; 5xx, TLS and client-side errors will not.
fn smtp_error(e: &lettre::transport::smtp::Error, server: &str) -> TransportError {
    let retryable = if e.is_transient() || e.is_timeout() {
        true
    } else {
        !(e.is_permanent() || e.is_tls() || e.is_client())
    };
    let mut message = format!("SMTP delivery via {server} failed: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    TransportError::new(message, retryable)
}

/// `<{delivery_id}@countersign>`, with every character outside
/// `[A-Za-z0-9_-]` written as `=XX` (its UTF-8 bytes in hex), so any delivery
/// id yields a valid, distinct Message-ID.
pub fn message_id(delivery_id: &str) -> Result<String, TransportError> {
    if delivery_id.is_empty() {
        return Err(TransportError::permanent("delivery id is empty"));
    }
    let mut local = String::with_capacity(delivery_id.len());
    for c in delivery_id.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            local.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                local.push_str(&format!("={b:02X}"));
            }
        }
    }
    Ok(format!("<{local}@{MESSAGE_ID_DOMAIN}>"))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): tells vacation responders and
/// other robots not to answer.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// Keeps line breaks, replaces other control characters with spaces.
fn clean_multiline(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' => '\n',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

fn fact_value(fact: &Fact) -> String {
    clean_multiline(&truncate(&fact.value, MAX_FACT_CHARS))
}

fn greeting(msg: &ApprovalMessage) -> String {
    match msg.recipient.name.as_deref().map(one_line) {
        Some(name) if !name.trim().is_empty() => format!("Hello {},", name.trim()),
        _ => "Hello,".to_owned(),
    }
}

const CONFIRMATION_NOTE: &str =
    "Each link opens a confirmation page; nothing is decided until you confirm there.";

/// The plain-text body.
fn text_body(msg: &ApprovalMessage) -> String {
    let mut out = format!(
        "{}\n\n{}\n\nAn agent wants to perform an action that requires your approval.\n\n",
        title(msg),
        greeting(msg)
    );
    for fact in facts(msg) {
        let value = fact_value(&fact);
        if value.contains('\n') {
            out.push_str(&format!("{}:\n", fact.label));
            for line in value.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        } else {
            out.push_str(&format!("{}: {value}\n", fact.label));
        }
    }
    out.push('\n');
    let approve = web_link(msg.approve_url.as_deref());
    let reject = web_link(msg.reject_url.as_deref());
    if let Some(url) = approve {
        out.push_str(&format!("Approve: {url}\n"));
    }
    if let Some(url) = reject {
        out.push_str(&format!("Reject:  {url}\n"));
    }
    if approve.is_some() || reject.is_some() {
        out.push_str(&format!("\n{CONFIRMATION_NOTE}\n"));
    } else {
        out.push_str("Answer this request in Countersign.\n");
    }
    out.push_str(&format!(
        "This request expires at {} if nobody answers.\n\n-- \nSent by Countersign, delivery {}\n",
        text::expiry(msg),
        one_line(&msg.delivery_id)
    ));
    out
}

/// The HTML body. Every value is escaped; links are only `http(s)` URLs.
fn html_body(msg: &ApprovalMessage) -> String {
    let mut rows = String::new();
    for fact in facts(msg) {
        rows.push_str(&format!(
            "<tr><th style=\"text-align:left;vertical-align:top;padding:4px 12px 4px 0;white-space:nowrap\">{}</th>\
             <td style=\"padding:4px 0;white-space:pre-wrap\">{}</td></tr>\n",
            html_escape(fact.label),
            html_escape(&fact_value(&fact))
        ));
    }
    let button = |label: &str, url: &str, color: &str| {
        format!(
            "<a href=\"{}\" style=\"display:inline-block;padding:10px 18px;margin-right:8px;\
             background:{color};color:#ffffff;text-decoration:none;border-radius:4px;font-weight:bold\">{}</a>",
            html_escape(url),
            html_escape(label)
        )
    };
    let approve = web_link(msg.approve_url.as_deref());
    let reject = web_link(msg.reject_url.as_deref());
    let mut buttons = String::new();
    if let Some(url) = approve {
        buttons.push_str(&button("Approve", url, "#1a7f37"));
    }
    if let Some(url) = reject {
        buttons.push_str(&button("Reject", url, "#cf222e"));
    }
    let actions = if buttons.is_empty() {
        "<p>Answer this request in Countersign.</p>".to_owned()
    } else {
        format!(
            "<p>{buttons}</p>\n<p style=\"color:#57606a\">{}</p>",
            html_escape(CONFIRMATION_NOTE)
        )
    };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family:sans-serif;color:#1f2328\">\n\
         <h2>{title}</h2>\n<p>{greeting}</p>\n\
         <p>An agent wants to perform an action that requires your approval.</p>\n\
         <table style=\"border-collapse:collapse\">\n{rows}</table>\n{actions}\n\
         <p style=\"color:#57606a\">This request expires at {expiry} if nobody answers.</p>\n\
         <p style=\"color:#57606a;font-size:small\">Sent by Countersign, delivery {delivery}</p>\n\
         </body></html>\n",
        title = html_escape(&title(msg)),
        greeting = html_escape(&greeting(msg)),
        expiry = html_escape(&text::expiry(msg)),
        delivery = html_escape(&msg.delivery_id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_valid_and_distinct() {
        assert_eq!(message_id("dlv_01ABC").unwrap(), "<dlv_01ABC@countersign>");
        assert_eq!(message_id("a:b").unwrap(), "<a=3Ab@countersign>");
        assert_eq!(message_id("a.b").unwrap(), "<a=2Eb@countersign>");
        assert_eq!(message_id("é").unwrap(), "<=C3=A9@countersign>");
        assert_ne!(message_id("a_b").unwrap(), message_id("a:b").unwrap());
        assert!(message_id("").is_err());
    }

    #[test]
    fn config_debug_hides_the_password() {
        let config = SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            security: SmtpSecurity::StartTls,
            username: Some("u".into()),
            password: Some("hunter2".into()),
            from: "a@example.com".into(),
            timeout: Duration::from_secs(5),
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn config_errors_are_permanent() {
        let base = SmtpConfig {
            host: "127.0.0.1".into(),
            port: 25,
            security: SmtpSecurity::Plain,
            username: None,
            password: None,
            from: "Countersign <approvals@example.com>".into(),
            timeout: Duration::from_secs(5),
        };
        assert!(EmailTransport::new(base.clone()).is_ok());
        let bad_from = SmtpConfig {
            from: "not an address".into(),
            ..base.clone()
        };
        assert!(!EmailTransport::new(bad_from).unwrap_err().retryable());
        let half_credentials = SmtpConfig {
            username: Some("u".into()),
            ..base.clone()
        };
        assert!(
            !EmailTransport::new(half_credentials)
                .unwrap_err()
                .retryable()
        );
        let no_host = SmtpConfig {
            host: " ".into(),
            ..base
        };
        assert!(EmailTransport::new(no_host).is_err());
    }
}
