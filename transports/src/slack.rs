//! Slack, through the Web API (slack-morphism over hyper, rustls with ring).
//!
//! [`SlackTransport`]'s [`deliver`](crate::Transport::deliver) posts a Block
//! Kit message with `chat.postMessage` to the configured channel, or as a
//! direct message to the recipient's Slack user id: a header, the request's
//! facts, and Approve / Reject buttons whose `value` is a JSON
//! [`ButtonValue`]. When someone clicks, Slack POSTs a `block_actions`
//! interaction to the gate, which checks it with [`verify_signature`] and
//! reads it with [`parse_interaction`]; this crate decides nothing about it.
//! [`SlackTransport::update_outcome`] then replaces the buttons with an
//! outcome line through `chat.update`.
//!
//! All values shown are escaped for Slack's `mrkdwn` (`&`, `<`, `>`) and sent
//! with `verbatim: true`, so agent text cannot mention `@channel`, link, or
//! turn URLs into links.
//!
//! The module is split along the way a request travels: `button` is the
//! contract between what is posted and what comes back (action ids and the
//! button value), `blocks` builds the Block Kit message, `send` talks to the
//! Web API, and `inbound` checks and reads Slack's interaction requests.
//! The submodules are private: every public name has one path, `slack::…`.

mod blocks;
mod button;
mod inbound;
mod send;

pub use blocks::ACTIONS_BLOCK_ID;
pub use button::{APPROVE_ACTION_ID, ButtonValue, Decision, REJECT_ACTION_ID};
pub use inbound::{
    Interaction, InteractionError, MAX_TIMESTAMP_SKEW_SECONDS, SlackAuthError, parse_interaction,
    verify_signature,
};
pub use send::{DEFAULT_API_BASE_URL, SlackConfig, SlackTransport};
