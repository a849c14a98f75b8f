//! Countersign's audit store: an append-only, tamper-evident event log per
//! workspace, with runs, answers, API keys and approval deliveries kept as
//! projections updated in the same transaction as the events they follow.
//!
//! What it is for:
//! - recording every state change of a run (proposed, decided, answered,
//!   expired, executed) and of keys and policies as a hash-chained event;
//! - enforcing the run state machine atomically (quorum, self-approval
//!   judged by identity skeleton ([`identity_skeleton`]), single execution
//!   report, idempotent creation), identically on SQLite
//!   ([`SqliteStore`], embedded, group commit) and PostgreSQL
//!   ([`PostgresStore`], for several gate instances);
//! - proving the log was not edited: [`Store::verify_chain`].
//!
//! What it must not do:
//! - read the clock: every operation that changes state takes `now`;
//! - update or delete an event, ever;
//! - let a call reach a backend unchecked: only [`Checked`] constructs one;
//! - see secrets: API keys and approval tokens arrive already hashed;
//! - evaluate policies, talk HTTP or deliver messages: that is the gate's job;
//! - let one workspace see or touch another workspace's data.
//!
//! How it is built: [`SqliteStore`] and [`PostgresStore`] are both a
//! [`Checked`] store, which checks and normalizes every argument in one
//! place, then hands the call to its backend (`sqlite/`, `postgres/`). The
//! backends share the run state machine (`run_state`), the checks of new
//! input (`validate`), the run table's columns (`rows`) and the hash chain
//! (`chain`), so they cannot drift apart. The data types live in `model/`,
//! one file per entity, and are re-exported here.

mod backend;
mod canonical;
mod chain;
mod checked;
mod cursor;
mod error;
mod grants;
mod identity;
mod model;
mod postgres;
mod rows;
mod run_state;
mod sqlite;
mod store;
pub mod tlog;
mod ts;
mod validate;
mod workspace_events;

pub use canonical::to_canonical_json;
pub use chain::{GENESIS_HASH, compute_hash};
pub use checked::Checked;
pub use error::{ChainBreak, StoreError};
pub use identity::{identity_skeleton, same_identity};
pub use model::{
    AnswerDecision, AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalAnswer, ApprovalRequirement,
    ApprovalToken, ApproverRef, BatchStats, ChainPosition, ChainReport, CreateRunOutcome,
    DecisionRecord, Delivery, Event, EventKind, ExecutionOutcome, ExecutionReport, ExecutionStatus,
    GovernanceStatus, Grant, GrantKind, GrantOutcome, NewDelivery, NewGrant, NewRun, Proposal,
    Recipient, Role, Run, RunFilter, RunPage, StatsRow, TokenAnswer, TokenOutcome, is_executable,
};
pub use postgres::tls as postgres_tls;
pub use postgres::{PostgresOptions, PostgresStore};
pub use run_state::is_actor;
pub use sqlite::SqliteStore;
pub use store::{DEFAULT_EVENTS_LIMIT, MAX_EVENTS_LIMIT, Store};
pub use ts::format_ts;
