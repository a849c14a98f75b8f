//! Countersign's transports: how an approval request reaches the people who
//! must answer it, where they already work.
//!
//! When a policy says `require_approval`, the gate builds one
//! [`ApprovalMessage`] per approver and hands it to a [`Transport`]: email
//! ([`email`]), Slack ([`slack`]), a signed webhook ([`webhook`]), a Microsoft
//! Teams workflow ([`teams`]) or the log ([`console`]). Answers come back
//! through the gate: a confirmation page behind `approve_url`/`reject_url`, a
//! Slack button click (whose signature [`slack::verify_signature`] checks and
//! whose payload [`slack::parse_interaction`] reads), or a POST to
//! `answer_url`.
//!
//! What this crate must not do:
//! - decide anything: it never evaluates a policy, counts a quorum or chooses
//!   an outcome; it formats and sends messages, and it verifies inbound
//!   signatures, nothing more;
//! - touch the store: it has no database handle, keeps no state between calls
//!   and records nothing; retrying and recording deliveries is the gate's job,
//!   guided by [`TransportError::retryable`];
//! - trust message content: everything in an [`ApprovalMessage`] that came
//!   from an agent (payload summary, reasoning, actor, even the action name)
//!   is treated as hostile text and escaped for the medium it is sent in;
//! - follow redirects or fall back to plaintext: HTTP transports never follow
//!   a 3xx, and TLS is rustls with the `ring` provider everywhere.

pub mod console;
pub mod email;
mod http;
mod message;
pub mod slack;
pub mod teams;
mod text;
pub mod webhook;

pub use message::{
    ApprovalMessage, Delivered, EligibleApprover, Recipient, Transport, TransportError,
};
pub use text::html_escape;
