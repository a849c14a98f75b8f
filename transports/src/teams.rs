//! Microsoft Teams, through a Workflows ("When a Teams webhook request is
//! received") URL.
//!
//! The transport POSTs a message with one Adaptive Card 1.4 attachment: a
//! title, a FactSet with the request's context, and two `Action.OpenUrl`
//! buttons, Approve and Reject. Cards posted through a webhook cannot carry
//! submit buttons, so the buttons open the same confirmation pages as the
//! email links; nothing is decided until the approver confirms there.
//!
//! Values shown in the card are escaped for the card's Markdown subset, so
//! agent-supplied text cannot add links or formatting. Redirects are never
//! followed; 5xx, 408, 429, timeouts and connection errors are retryable.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::text::{facts, one_line, title, truncate, web_link};
use crate::{ApprovalMessage, Delivered, Transport, TransportError, http};

/// Longest value shown in one fact; longer ones are cut with an ellipsis.
const MAX_FACT_CHARS: usize = 1500;

/// Sends approval requests to a Teams channel or chat as Adaptive Cards.
pub struct TeamsTransport {
    workflow_url: Url,
    client: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for TeamsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamsTransport")
            .field("workflow_url", &http::redacted(&self.workflow_url))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TeamsTransport {
    /// Checks the workflow URL and builds the transport, with a 10-second
    /// timeout per delivery. The URL carries its own signature (`sig=`), so
    /// it is treated as a secret and never logged in full.
    pub fn new(workflow_url: impl AsRef<str>) -> Result<Self, TransportError> {
        Ok(Self {
            workflow_url: http::endpoint(workflow_url.as_ref(), "Teams workflow")?,
            client: http::client()?,
            timeout: http::DEFAULT_TIMEOUT,
        })
    }

    /// Sets the total time allowed for one delivery.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The message (with its Adaptive Card) sent for `msg`.
    pub fn message(msg: &ApprovalMessage) -> Value {
        let facts: Vec<Value> = facts(msg)
            .into_iter()
            .map(|f| {
                json!({
                    "title": f.label,
                    "value": markdown_escape(&truncate(&f.value, MAX_FACT_CHARS)),
                })
            })
            .collect();
        let mut body = vec![
            json!({
                "type": "TextBlock",
                "text": markdown_escape(&title(msg)),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": true,
            }),
            json!({ "type": "FactSet", "facts": facts }),
        ];
        let mut actions = Vec::new();
        if let Some(url) = web_link(msg.approve_url.as_deref()) {
            actions.push(json!({
                "type": "Action.OpenUrl",
                "title": "Approve",
                "url": url,
                "style": "positive",
            }));
        }
        if let Some(url) = web_link(msg.reject_url.as_deref()) {
            actions.push(json!({
                "type": "Action.OpenUrl",
                "title": "Reject",
                "url": url,
                "style": "destructive",
            }));
        }
        body.push(json!({
            "type": "TextBlock",
            "text": if actions.is_empty() {
                "Answer this request in Countersign."
            } else {
                "Each button opens a confirmation page; nothing is decided until you confirm there."
            },
            "isSubtle": true,
            "wrap": true,
        }));
        let card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
            "actions": actions,
        });
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }],
        })
    }
}

#[async_trait::async_trait]
impl Transport for TeamsTransport {
    fn channel(&self) -> &'static str {
        "teams"
    }

    async fn deliver(&self, msg: &ApprovalMessage) -> Result<Delivered, TransportError> {
        let body = serde_json::to_vec(&Self::message(msg))
            .map_err(|e| TransportError::permanent(format!("cannot encode Teams card: {e}")))?;
        let status = http::post_json(
            &self.client,
            &self.workflow_url,
            HeaderMap::new(),
            body,
            self.timeout,
            "Teams workflow",
        )
        .await?;
        tracing::info!(
            delivery_id = %msg.delivery_id,
            status = status.as_u16(),
            "approval request delivered to Teams"
        );
        Ok(Delivered { external_id: None })
    }
}

/// Escapes text for the Adaptive Card Markdown subset, so that agent text
/// stays text: the characters that open emphasis, links, autolinks, code and
/// `{{DATE(…)}}` functions get a backslash everywhere, and list or heading
/// markers get one at the start of a line. Line breaks are kept; other
/// control characters become spaces.
pub(crate) fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        escape_line(&one_line(line), &mut out);
    }
    out
}

fn escape_line(line: &str, out: &mut String) {
    let indent = line.len() - line.trim_start().len();
    let (lead, rest) = line.split_at(indent);
    out.push_str(lead);
    // A leading number followed by '.' or ')' would start a numbered list.
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    for (i, c) in rest.chars().enumerate() {
        let at_start = i == 0 && matches!(c, '-' | '+' | '#');
        let list_number = digits > 0 && i == digits && matches!(c, '.' | ')');
        let always = matches!(
            c,
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '<' | '>' | '{' | '}'
        );
        if at_start || list_number || always {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escape_neutralises_links_and_formatting() {
        assert_eq!(
            markdown_escape("[Approve](https://evil.example) **now**"),
            r"\[Approve\](https://evil.example) \*\*now\*\*"
        );
        assert_eq!(markdown_escape("{{DATE(x)}}"), r"\{\{DATE(x)\}\}");
        assert_eq!(markdown_escape("a\r\nb"), "a \nb");
        assert_eq!(
            markdown_escape("- one\n  2. two\n# three\n2026-05-01 (ok)"),
            "\\- one\n  2\\. two\n\\# three\n2026-05-01 (ok)"
        );
    }

    #[test]
    fn debug_hides_the_signed_url() {
        let t = TeamsTransport::new("https://prod.example.com/workflows/1?sig=SECRET").unwrap();
        assert!(!format!("{t:?}").contains("SECRET"));
    }
}
