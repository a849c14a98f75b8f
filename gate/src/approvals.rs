//! The approval workflow: who is asked, through which channels, with which
//! single-use links; the delivery worker; and recording answers.
//!
//! When a decision requires approval, the intercept writes one delivery per
//! approver and channel (and one per workspace webhook) in the same
//! transaction as the run: an outbox. The worker sends them, retries with
//! backoff, and records failures on the run. Answers come back through the
//! confirmation pages (email, Teams, console links), Slack buttons, or the
//! webhook answer URL, and all end in [`record::record_answer`].

pub mod channels;
pub mod plan;
pub mod record;
pub mod tokens;
pub mod worker;
