//! Text helpers shared by the transports: the facts every message shows, in
//! one order, and escaping for the media they are shown in.

use crate::message::ApprovalMessage;

/// Shown where an optional value is absent.
pub(crate) const NOT_GIVEN: &str = "(not given)";

/// One labelled fact about the request, for any medium.
pub(crate) struct Fact {
    pub(crate) label: &'static str,
    pub(crate) value: String,
}

fn fact(label: &'static str, value: impl Into<String>) -> Fact {
    Fact {
        label,
        value: value.into(),
    }
}

fn or_not_given(value: Option<&String>) -> String {
    value
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or(NOT_GIVEN)
        .to_owned()
}

/// The facts every transport shows, in the order they are shown. Values are
/// raw (unescaped): each medium escapes them itself.
pub(crate) fn facts(msg: &ApprovalMessage) -> Vec<Fact> {
    let mut out = vec![
        fact("Action", msg.action.clone()),
        fact("Actor", or_not_given(msg.actor.as_ref())),
        fact("Risk", or_not_given(msg.risk.as_ref())),
        fact("Rule", or_not_given(msg.rule.as_ref())),
        fact("Reason", msg.reason.clone()),
        fact("Payload summary", msg.payload_summary.clone()),
        fact("Agent's reasoning", or_not_given(msg.reasoning.as_ref())),
        fact("Approvers", approvers_line(msg)),
        fact("Expires", expiry(msg)),
        fact("Workspace", msg.workspace.clone()),
        fact("Run", msg.run_id.clone()),
    ];
    if let Some(url) = msg.dashboard_url.as_deref().filter(|u| is_web_url(u)) {
        out.push(fact("Dashboard", url));
    }
    out
}

/// "2 approvals needed from group finance".
pub(crate) fn approvers_line(msg: &ApprovalMessage) -> String {
    let noun = if msg.quorum == 1 {
        "approval"
    } else {
        "approvals"
    };
    format!("{} {noun} needed from group {}", msg.quorum, msg.group)
}

/// The expiry as an unambiguous UTC time.
pub(crate) fn expiry(msg: &ApprovalMessage) -> String {
    msg.expires_at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A one-line title: "Approval needed: send_invoice_reminder (medium risk)",
/// or with the request's summary instead of the action name when it has one:
/// "Approval needed: Refund 250 EUR to Ada (high risk)".
pub(crate) fn title(msg: &ApprovalMessage) -> String {
    let named = msg
        .summary
        .as_deref()
        .map(|s| one_line(s).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| msg.action.clone());
    let action = truncate(&one_line(&named), 120);
    match msg.risk.as_deref().map(one_line) {
        Some(risk) if !risk.trim().is_empty() => {
            format!(
                "Approval needed: {action} ({} risk)",
                truncate(risk.trim(), 30)
            )
        }
        _ => format!("Approval needed: {action}"),
    }
}

/// Replaces every control character (line breaks included) with a space, for
/// contexts that must stay on one line (subjects, headers, titles).
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Cuts `s` to at most `max` characters, marking the cut with an ellipsis.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let kept: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Escapes text for HTML element content and double- or single-quoted
/// attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `url` may be put behind a link: only absolute `https://` or
/// `http://` URLs, so that a `javascript:` or `data:` URL never becomes a
/// button.
pub(crate) fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// `url`, if it may be put behind a link (see [`is_web_url`]); approve and
/// reject links go through here in every medium.
pub(crate) fn web_link(url: Option<&str>) -> Option<&str> {
    url.filter(|u| is_web_url(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escape_covers_markup_and_quotes() {
        assert_eq!(
            html_escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn truncate_counts_characters_not_bytes() {
        assert_eq!(truncate("ééééé", 5), "ééééé");
        assert_eq!(truncate("éééééé", 5), "éééé…");
    }

    #[test]
    fn one_line_removes_line_breaks() {
        assert_eq!(one_line("a\r\nBcc: x"), "a  Bcc: x");
    }

    #[test]
    fn only_web_urls_become_links() {
        assert!(is_web_url("https://gate.example/a/1"));
        assert!(is_web_url("http://127.0.0.1:8080/a"));
        assert!(!is_web_url("javascript:alert(1)"));
        assert!(!is_web_url("https://x.example/a b"));
    }
}
