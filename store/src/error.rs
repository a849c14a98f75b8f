//! The store's public error type.

use miette::Diagnostic;
use thiserror::Error;

/// Why a workspace's hash chain failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The stored hash is not the hash of the stored event.
    HashMismatch {
        /// Hash recomputed from the stored fields.
        computed: String,
        /// Hash found in the row.
        stored: String,
    },
    /// The event's `prev_hash` is not the hash of the event before it.
    PrevHashMismatch {
        /// Hash of the previous event (64 zeros for seq 1).
        expected: String,
        /// `prev_hash` found in the row.
        found: String,
    },
    /// A sequence number is missing: events jump from `expected - 1` to `found`.
    SeqGap {
        /// Sequence number that should have come next.
        expected: u64,
        /// Sequence number found instead.
        found: u64,
    },
    /// The workspace's recorded head is past the last stored event, so events
    /// at the end of the chain were removed.
    Truncated {
        /// Sequence number of the head recorded at the last append.
        head_seq: u64,
        /// Sequence number of the last event actually stored.
        last_seq: u64,
    },
    /// The recorded head disagrees with the last stored event's hash.
    HeadMismatch {
        /// Hash recorded as the head at the last append.
        head_hash: String,
        /// Hash of the last stored event.
        last_hash: String,
    },
    /// A stored field could not be read at all (e.g. data that is not JSON).
    Unreadable {
        /// What could not be read.
        message: String,
    },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HashMismatch { computed, stored } => write!(
                f,
                "hash mismatch: the event hashes to {computed} but {stored} is stored"
            ),
            Self::PrevHashMismatch { expected, found } => write!(
                f,
                "prev_hash mismatch: expected {expected} (hash of the previous event), found {found}"
            ),
            Self::SeqGap { expected, found } => {
                write!(f, "seq gap: expected seq {expected}, found seq {found}")
            }
            Self::Truncated { head_seq, last_seq } => write!(
                f,
                "events removed from the end: head was recorded at seq {head_seq} but the last stored event is seq {last_seq}"
            ),
            Self::HeadMismatch {
                head_hash,
                last_hash,
            } => write!(
                f,
                "head mismatch: head recorded as {head_hash} but the last event hashes to {last_hash}"
            ),
            Self::Unreadable { message } => write!(f, "unreadable event: {message}"),
        }
    }
}

/// Everything a [`crate::Store`] operation can fail with.
///
/// Each variant carries owned strings only, so errors can be cloned and
/// handed to several callers (the SQLite writer answers a whole batch at once).
#[derive(Debug, Clone, Error, Diagnostic)]
pub enum StoreError {
    /// The run, key, delivery or token does not exist in this workspace.
    #[error("{entity} `{id}` not found")]
    #[diagnostic(code(countersign::store::not_found))]
    NotFound {
        /// What was looked for: "run", "key", "delivery"...
        entity: &'static str,
        /// The id that was looked for.
        id: String,
    },

    /// The idempotency key was used before for a different request.
    #[error("idempotency key `{idempotency_key}` was already used for a different request")]
    #[diagnostic(
        code(countersign::store::idempotency_conflict),
        help("reuse an idempotency key only to retry the exact same request")
    )]
    IdempotencyConflict {
        /// The key that clashed.
        idempotency_key: String,
        /// The run the key belongs to.
        existing_run_id: String,
    },

    /// The operation is not allowed in the run's (or key's) current state.
    #[error("conflict: {message}")]
    #[diagnostic(code(countersign::store::conflict))]
    Conflict {
        /// Why the operation was refused.
        message: String,
    },

    /// The answering approver is not in the run's approver list.
    #[error("`{approver_id}` is not an approver of run `{run_id}`")]
    #[diagnostic(code(countersign::store::not_an_approver))]
    NotAnApprover {
        /// Who tried to answer.
        approver_id: String,
        /// The run concerned.
        run_id: String,
    },

    /// The approver is the actor that proposed the run.
    #[error("`{approver_id}` proposed run `{run_id}` and cannot approve it")]
    #[diagnostic(
        code(countersign::store::self_approval),
        help("another approver of the group has to answer")
    )]
    SelfApproval {
        /// Who tried to answer.
        approver_id: String,
        /// The run concerned.
        run_id: String,
    },

    /// The approver belongs to the escalation group and may not answer
    /// before the escalation time.
    #[error(
        "`{approver_id}` may answer run `{run_id}` only from {}",
        eligible_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    #[diagnostic(
        code(countersign::store::not_yet_eligible),
        help("the escalation group is asked only once `escalate_after` has passed")
    )]
    NotYetEligible {
        /// Who tried to answer.
        approver_id: String,
        /// The run concerned.
        run_id: String,
        /// When they may answer.
        eligible_from: chrono::DateTime<chrono::Utc>,
    },

    /// A pagination cursor that this store did not issue.
    #[error("invalid cursor")]
    #[diagnostic(
        code(countersign::store::invalid_cursor),
        help("pass back the next_cursor of a previous page unchanged")
    )]
    InvalidCursor,

    /// The input breaks one of the store's rules (empty id, quorum of 0...).
    #[error("invalid input: {message}")]
    #[diagnostic(code(countersign::store::invalid_input))]
    InvalidInput {
        /// What is wrong with the input.
        message: String,
    },

    /// The workspace's hash chain does not verify.
    #[error("hash chain of workspace `{workspace}` is broken at seq {seq}: {reason}")]
    #[diagnostic(
        code(countersign::store::chain_broken),
        help("the audit log was changed outside Countersign; treat this as a security incident")
    )]
    ChainBroken {
        /// The workspace whose chain is broken.
        workspace: String,
        /// The first sequence number at which the chain breaks.
        seq: u64,
        /// Why it breaks there.
        reason: ChainBreak,
    },

    /// A tree size, leaf index or seq range outside the workspace's log
    /// (a proof for a size the tree has not reached, sizes out of order...).
    #[error("out of range: {message}")]
    #[diagnostic(code(countersign::store::tree_range))]
    TreeRange {
        /// What is out of range.
        message: String,
    },

    /// A run's stored row (or its events) differs from what the run's own
    /// authenticated events say: the database was edited outside the
    /// gate. Nothing was done.
    #[error("audit mismatch on run `{run_id}` of workspace `{workspace}`: {column}: {detail}")]
    #[diagnostic(
        code(countersign::store::audit_mismatch),
        help(
            "the database was changed outside Countersign; run `countersign audit verify` and treat this as a security incident"
        )
    )]
    AuditMismatch {
        /// The workspace.
        workspace: String,
        /// The run whose row or events do not agree with the log.
        run_id: String,
        /// The first differing column (`governance_status`,
        /// `approvals[0].approver_id`...) or `events.mac` for an event that
        /// fails authentication.
        column: String,
        /// What was stored and what the log says.
        detail: String,
    },

    /// A full audit of a workspace found problems other than a broken
    /// chain (see [`crate::Store::audit`] for the full report).
    #[error("audit of workspace `{workspace}` failed: {}", list_problems(problems))]
    #[diagnostic(
        code(countersign::store::audit_failed),
        help("the database was changed outside Countersign; treat this as a security incident")
    )]
    AuditFailed {
        /// The workspace.
        workspace: String,
        /// Every problem found (capped, see [`crate::AuditReport`]).
        problems: Vec<crate::model::AuditProblem>,
    },

    /// A stored row could not be decoded into the store's types.
    #[error("corrupt store data: {message}")]
    #[diagnostic(code(countersign::store::corrupt))]
    Corrupt {
        /// What could not be decoded.
        message: String,
    },

    /// The database reported an error.
    #[error("{backend} error: {message}")]
    #[diagnostic(code(countersign::store::backend))]
    Backend {
        /// "sqlite" or "postgres".
        backend: &'static str,
        /// The database's message.
        message: String,
    },

    /// The store cannot serve requests (writer stopped, pool exhausted...).
    #[error("store unavailable: {message}")]
    #[diagnostic(code(countersign::store::unavailable))]
    Unavailable {
        /// Why the store is unavailable.
        message: String,
    },
}

fn list_problems(problems: &[crate::model::AuditProblem]) -> String {
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("{} problem(s): {}", problems.len(), shown.join("; "))
}

impl StoreError {
    /// The HTTP status a gate would normally answer with for this error.
    ///
    /// A suggestion only: the store knows nothing of HTTP, but keeping the
    /// mapping next to the variants makes it hard to forget a new one.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::IdempotencyConflict { .. } | Self::Conflict { .. } => 409,
            Self::NotAnApprover { .. }
            | Self::SelfApproval { .. }
            | Self::NotYetEligible { .. } => 403,
            Self::InvalidCursor | Self::InvalidInput { .. } => 400,
            Self::TreeRange { .. } => 422,
            Self::ChainBroken { .. }
            | Self::AuditMismatch { .. }
            | Self::AuditFailed { .. }
            | Self::Corrupt { .. }
            | Self::Backend { .. } => 500,
            Self::Unavailable { .. } => 503,
        }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
        }
    }

    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Self::Corrupt {
            message: message.into(),
        }
    }

    pub(crate) fn run_not_found(run_id: &str) -> Self {
        Self::NotFound {
            entity: "run",
            id: run_id.to_owned(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Backend {
            backend: "sqlite",
            message: e.to_string(),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The Display of a server error is only "db error"; the detail is in
        // the source, so spell it out.
        let message = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        Self::Backend {
            backend: "postgres",
            message,
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(inner) => inner.into(),
            other => Self::Unavailable {
                message: format!("postgres pool: {other}"),
            },
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::corrupt(format!("json: {e}"))
    }
}
