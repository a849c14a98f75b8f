//! Countersign's gate: the HTTP API agents call before they act, the
//! configuration, and the command-line tools.
//!
//! Data flows agent → gate (this crate) → engine (decide) → store (append,
//! durable before the answer) → receipt. The gate decides nothing itself:
//! policies decide; it authenticates, validates input, records, and signs.
//! It never lets a request through when in doubt: invalid input, an unknown
//! action or a failing condition all end blocked or refused.

pub mod api;
pub mod app;
pub mod approvals;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod intercept;
pub mod keys;
pub mod metrics;
pub mod ratelimit;
pub mod receipts;
pub mod run_id;
pub mod server;
pub mod state;
pub mod ui;
pub mod workspace;

pub use app::app;
pub use state::AppState;
