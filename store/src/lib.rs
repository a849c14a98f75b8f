//! Countersign's audit store: an append-only, verifiable event log per
//! workspace, with runs, answers, API keys and approval deliveries kept as
//! projections updated in the same transaction as the events they follow.
//!
//! What it is for:
//! - recording every state change of a run (proposed, decided, answered,
//!   expired, executed) and of keys and policies as an event;
//! - enforcing the run state machine atomically (quorum, self-approval
//!   judged by identity skeleton ([`identity_skeleton`]), single execution
//!   report, idempotent creation), identically on SQLite
//!   ([`SqliteStore`], embedded, group commit) and PostgreSQL
//!   ([`PostgresStore`], for several gate instances);
//! - answering limits over time: an index of past runs (`aggregates`,
//!   a projection of the runs) from which [`Store::create_run_deciding`]
//!   computes counts and sums inside the transaction that records the
//!   decision, without knowing the policy language;
//! - making the log verifiable by someone who does not trust the database:
//!   each event is authenticated with a [`LogKey`] kept outside it, is a
//!   leaf of its workspace's RFC 9162 Merkle tree ([`tlog`]; tree heads,
//!   inclusion and consistency proofs in `O(log n)` reads), and checkpoints
//!   the gate signs are kept with the tree they commit to;
//! - checking state against the log: before an answer or an execution
//!   report, the run's row is recomputed from its own events and compared
//!   ([`StoreError::AuditMismatch`]); [`Store::verified_run`] does the same
//!   for a read, [`Store::find_key`] checks an API key's row against its
//!   own key events before it returns it ([`StoreError::KeyMismatch`]),
//!   and [`Store::audit`] recomputes a whole workspace.
//!
//! # What is authenticated
//! An event's canonical bytes ([`event_leaf_data`]) are the canonical JSON
//! object with exactly the members `at, data, kind, prev_hash, run_id, seq,
//! workspace` (RFC 8785 member order; `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`,
//! `data` canonical, `run_id` null when the event concerns no run). They
//! are at once:
//! - the MAC's input: `mac = HMAC-SHA256(key, "countersign audit event
//!   v1\0" || bytes)`, stored as hex in `events.mac`;
//! - the Merkle leaf data: leaf `seq - 1` of the workspace's tree, hashed
//!   `SHA-256(0x00 || bytes)`;
//! - the linear chain's input, kept as an extra check:
//!   `hash = hex(SHA-256(prev_hash || bytes))`.
//!
//! Events stored before the verifiable log (schema version 4) get their MAC
//! and their leaves when a store first opens the database with its key:
//! they are authenticated as they stood at that moment.
//!
//! What it must not do:
//! - read the clock: every operation that changes state takes `now`;
//! - update or delete an event, ever (the upgrade's one-time backfill of
//!   the MAC column is the only UPDATE, inside the migration);
//! - store the log key, or open without one;
//! - let a call reach a backend unchecked: only [`Checked`] constructs one;
//! - see secrets: API keys and approval tokens arrive already hashed;
//! - evaluate policies, sign checkpoints, talk HTTP or deliver messages:
//!   that is the gate's job;
//! - let one workspace see or touch another workspace's data.
//!
//! How it is built: [`SqliteStore`] and [`PostgresStore`] are both a
//! [`Checked`] store, which checks and normalizes every argument in one
//! place, then hands the call to its backend (`sqlite/`, `postgres/`). The
//! backends share the run state machine (`run_state`), the checks of new
//! input (`validate`), the run table's columns (`rows`), the hash chain
//! (`chain`), the tree's frontier (`tree`), the projections recomputed from
//! events (`projection`) and the full audit (`audit`), so they cannot drift
//! apart. The data types live in `model/`, one file per entity, and are
//! re-exported here.

mod aggregates;
mod audit;
mod backend;
mod canonical;
mod chain;
mod checked;
mod cursor;
mod error;
mod extension;
mod grants;
mod history;
mod identity;
mod log_key;
mod model;
mod postgres;
mod projection;
mod rows;
mod run_state;
mod sqlite;
mod store;
mod strict_json;
pub mod tlog;
mod tree;
mod ts;
mod validate;
mod workspace_events;

pub use aggregates::{
    AggregateQuery, AggregateResult, AggregateValue, DecideRun, SeriesField, SeriesReport,
    SeriesSpec, group_key,
};
pub use audit::MAX_AUDIT_PROBLEMS;
pub use canonical::to_canonical_json;
pub use chain::{GENESIS_HASH, compute_hash, event_leaf_data};
pub use checked::Checked;
pub use error::{ChainBreak, StoreError};
pub use extension::MAX_EXTENSION;
pub use history::{HISTORY_PAGE_EVENTS, HistoryQuery, HistoryReader, HistoryRun};
pub use identity::{identity_skeleton, same_identity};
pub use log_key::{EVENT_MAC_PREFIX, LOG_KEY_LEN, LogKey, LogKeyError};
pub use model::{
    AnswerDecision, AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalAnswer, ApprovalRequirement,
    ApprovalToken, ApproverRef, AuditProblem, AuditReport, AuditSubject, BatchStats, ChainPosition,
    ChainReport, CreateRunOutcome, DecisionRecord, Delivery, Event, EventKind, ExecutionOutcome,
    ExecutionReport, ExecutionStatus, GovernanceStatus, Grant, GrantKind, GrantOutcome,
    NewDelivery, NewGrant, NewRun, Proposal, Recipient, Role, Run, RunFilter, RunPage, StatsRow,
    StoredCheckpoint, TokenAnswer, TokenOutcome, TreeExtension, TreeHead, is_executable,
};
pub use postgres::notify::{OutboxNotifier, OutboxWake};
pub use postgres::tls as postgres_tls;
pub use postgres::{PostgresOptions, PostgresStore};
pub use run_state::is_actor;
pub use sqlite::SqliteStore;
pub use store::{DEFAULT_EVENTS_LIMIT, MAX_EVENTS_LIMIT, Store};
pub use strict_json::{StrictJsonError, parse_strict_json};
pub use ts::format_ts;
