//! The Block Kit message: the request's facts and the two buttons, and the
//! outcome line that replaces the buttons once the request is answered.
//! Everything shown is escaped for `mrkdwn` and cut to Slack's limits here.

use slack_morphism::prelude::*;

use super::button::{ButtonValue, Decision};
use crate::text::{facts, one_line, title, truncate};
use crate::{ApprovalMessage, TransportError};

/// `block_id` of the actions block holding the two buttons.
pub const ACTIONS_BLOCK_ID: &str = "countersign_actions";

/// Slack's limits: header text, section field text, button value.
const MAX_HEADER_CHARS: usize = 150;
const MAX_FIELD_CHARS: usize = 2000;
const MAX_TEXT_CHARS: usize = 3000;
const MAX_BUTTON_VALUE_CHARS: usize = 2000;

/// The Block Kit blocks posted for `msg`: header, facts, context, and
/// the Approve / Reject buttons.
pub(super) fn approval_blocks(msg: &ApprovalMessage) -> Result<Vec<SlackBlock>, TransportError> {
    let mut blocks = request_blocks(msg);
    let approve = decision_button(msg, Decision::Approve)?;
    let reject = decision_button(msg, Decision::Reject)?;
    blocks.push(
        SlackActionsBlock::new(vec![approve.into(), reject.into()])
            .with_block_id(SlackBlockId::new(ACTIONS_BLOCK_ID.to_owned()))
            .into(),
    );
    Ok(blocks)
}

/// Header, facts and context: everything but the buttons.
pub(super) fn request_blocks(msg: &ApprovalMessage) -> Vec<SlackBlock> {
    let header = truncate(&one_line(&title(msg)), MAX_HEADER_CHARS);
    let fields: Vec<SlackBlockText> = facts(msg)
        .into_iter()
        .filter(|f| !matches!(f.label, "Workspace" | "Run"))
        .map(|f| {
            let label = format!("*{}*\n", f.label);
            let room = MAX_FIELD_CHARS.saturating_sub(label.chars().count());
            verbatim(format!(
                "{label}{}",
                truncate_escaped(&mrkdwn_escape(&f.value), room)
            ))
        })
        .collect();
    let context = format!(
        "Workspace {} · run {} · delivery {}",
        mrkdwn_escape(&one_line(&msg.workspace)),
        mrkdwn_escape(&one_line(&msg.run_id)),
        mrkdwn_escape(&one_line(&msg.delivery_id)),
    );
    vec![
        SlackHeaderBlock::new(plain(header)).into(),
        SlackSectionBlock::new().with_fields(fields).into(),
        SlackContextBlock::new(vec![
            SlackBlockMarkDownText::new(truncate_escaped(&context, MAX_TEXT_CHARS))
                .with_verbatim(true)
                .into(),
        ])
        .into(),
    ]
}

/// The outcome line (e.g. "✅ Approved by alice (1 of 2)") as a section.
pub(super) fn outcome_block(text: &str) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(verbatim(truncate_escaped(
            &mrkdwn_escape(text),
            MAX_TEXT_CHARS,
        )))
        .into()
}

fn decision_button(
    msg: &ApprovalMessage,
    decision: Decision,
) -> Result<SlackBlockButtonElement, TransportError> {
    let value = serde_json::to_string(&ButtonValue {
        run_id: msg.run_id.clone(),
        workspace: msg.workspace.clone(),
        decision,
        delivery_id: msg.delivery_id.clone(),
    })
    .map_err(|e| TransportError::permanent(format!("cannot encode Slack button value: {e}")))?;
    if value.chars().count() > MAX_BUTTON_VALUE_CHARS {
        return Err(TransportError::permanent(
            "Slack button value exceeds 2000 characters (ids too long)",
        ));
    }
    let (label, style) = match decision {
        Decision::Approve => ("Approve", SlackBlockButtonStyle::Primary),
        Decision::Reject => ("Reject", SlackBlockButtonStyle::Danger),
    };
    Ok(SlackBlockButtonElement::new(plain(label))
        .with_action_id(SlackActionId::new(decision.action_id().to_owned()))
        .with_value(value)
        .with_style(style))
}

/// Escapes text for Slack `mrkdwn`: `&`, `<` and `>` are the only characters
/// Slack gives meaning to in links and mentions.
fn mrkdwn_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A `mrkdwn` text with `verbatim: true`: no automatic links or mentions.
fn verbatim(text: String) -> SlackBlockText {
    SlackBlockMarkDownText::new(text).with_verbatim(true).into()
}

fn plain(text: impl Into<String>) -> SlackBlockPlainTextOnly {
    SlackBlockPlainText::new(text.into()).into()
}

/// Cuts escaped text without splitting an `&…;` entity.
fn truncate_escaped(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut cut = truncate(s, max);
    cut.pop(); // the ellipsis
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
    {
        cut.truncate(amp);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_escape_defuses_mentions_and_links() {
        assert_eq!(
            mrkdwn_escape("<!channel> <https://evil|click> & co"),
            "&lt;!channel&gt; &lt;https://evil|click&gt; &amp; co"
        );
    }

    #[test]
    fn truncation_never_splits_an_entity() {
        let s = mrkdwn_escape("aaaa<");
        assert_eq!(s, "aaaa&lt;");
        assert_eq!(truncate_escaped(&s, 7), "aaaa…");
        assert_eq!(truncate_escaped(&s, 8), "aaaa&lt;");
    }
}
