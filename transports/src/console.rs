//! The console transport: writes the request and its links to the log and to
//! standard output, so that a walkthrough works with nothing configured.

use std::io::Write as _;

use crate::text::{facts, one_line, title};
use crate::{ApprovalMessage, Delivered, Transport};

/// Prints approval requests; never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleTransport;

impl ConsoleTransport {
    /// The console transport.
    pub fn new() -> Self {
        Self
    }

    /// The text printed for `msg`: a title line, one line per fact, and the
    /// links. Control characters in values are replaced with spaces so that
    /// agent text cannot forge extra lines or terminal escapes.
    pub fn render(msg: &ApprovalMessage) -> String {
        let mut out = format!(
            "== Countersign: {} ==\nFor: {}\n",
            one_line(&title(msg)),
            one_line(recipient_label(msg).as_str())
        );
        for fact in facts(msg) {
            out.push_str(&format!("{}: {}\n", fact.label, one_line(&fact.value)));
        }
        let links = [
            ("Approve", &msg.approve_url),
            ("Reject", &msg.reject_url),
            ("Answer (POST)", &msg.answer_url),
        ];
        let mut any = false;
        for (label, url) in links {
            if let Some(url) = url {
                out.push_str(&format!("{label}: {}\n", one_line(url)));
                any = true;
            }
        }
        if msg.approve_url.is_some() || msg.reject_url.is_some() {
            out.push_str("(Approve/Reject open a confirmation page; nothing changes until you confirm there.)\n");
        } else if !any {
            out.push_str("(No links configured: answer with the gate's API or CLI.)\n");
        }
        out
    }
}

fn recipient_label(msg: &ApprovalMessage) -> String {
    match &msg.recipient.name {
        Some(name) => format!("{name} ({})", msg.recipient.approver_id),
        None => msg.recipient.approver_id.clone(),
    }
}

#[async_trait::async_trait]
impl Transport for ConsoleTransport {
    fn channel(&self) -> &'static str {
        "console"
    }

    async fn deliver(&self, msg: &ApprovalMessage) -> Result<Delivered, crate::TransportError> {
        let text = Self::render(msg);
        tracing::info!(
            delivery_id = %msg.delivery_id,
            run_id = %msg.run_id,
            approver = %msg.recipient.approver_id,
            // The links carry single-use tokens: they go to stdout for the
            // person at the terminal, never into structured logs.
            "approval requested: {}",
            one_line(&title(msg))
        );
        // Printing is best effort: a closed stdout must not fail a delivery.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        Ok(Delivered { external_id: None })
    }
}
