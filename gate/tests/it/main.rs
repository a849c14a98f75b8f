//! The gate's HTTP integration tests, one module per surface and channel
//! (`api_*`, `approvals_*`, `ui_*`), in one test binary: each binary links
//! the whole gate, so one binary instead of twelve saves minutes of linking
//! and gigabytes of disk. Every test starts its own gate on a loopback port.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

#[path = "../support/mod.rs"]
mod support;

mod api_access;
mod api_receipts;
mod api_runs;
mod api_system;
mod approvals_console;
mod approvals_delivery;
mod approvals_email;
mod approvals_slack;
mod approvals_teams;
mod approvals_wakeup;
mod approvals_webhook;
mod audit_log;
mod ui_inbox;
mod ui_pages;
mod ui_sessions;
