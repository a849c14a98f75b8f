//! Countersign's gate: the HTTP API agents call before they act, the
//! approval workflow, the HTML dashboard and confirmation pages, the
//! configuration, and the command-line tools.
//!
//! Data flows agent → gate (this crate) → engine (decide) → store (append,
//! durable before the answer) → transports (ask approvers) → approver →
//! gate → store → receipt.
//!
//! What the gate must not do: decide anything itself (policies decide; it
//! authenticates, validates input, records, and signs); answer before the
//! store has the run durably; let a request through when in doubt (invalid
//! input, an unknown action or a failing condition all end blocked or
//! refused); show internal errors or secrets to clients.
//!
//! Imports point down only, with no circle between files (checked by
//! `scripts/import_cycles.py`):
//!
//! - [`app`] and [`server`]: the router and the process;
//! - [`api`] (JSON only) and [`ui`] (HTML only, askama templates, the
//!   approval confirmation pages included), which never import each other;
//! - [`intercept`] (decide → plan approvals → record), [`approvals`] (plan,
//!   tokens, delivery worker, recording answers), [`auth`], [`state`],
//!   [`secrets`] (the secrets gates of one deployment share) and the rest
//!   of the domain;
//! - at the bottom, importing nothing above them: [`http`] (client address,
//!   body limits, page headers, untrusted text), [`error`], [`keys`],
//!   [`run_id`], [`clock`] and [`shutdown`] (the stop request every
//!   long-lived task watches).

pub mod api;
pub mod app;
pub mod approvals;
pub mod auth;
pub mod checkpoints;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod intercept;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod ratelimit;
pub mod receipt_proof;
pub mod receipts;
pub mod run_id;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod title;
pub mod ui;
pub mod workspace;

pub use app::app;
pub use state::AppState;
