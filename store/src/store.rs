//! The [`Store`] trait: the audit store as the gate uses it
//! (`Arc<dyn Store>`), and the limits of its reads.

use crate::aggregates::{AggregateQuery, DecideRun, SeriesReport, SeriesSpec};
use crate::error::StoreError;
use crate::model::{
    AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalToken, BatchStats, ChainPosition,
    ChainReport, CreateRunOutcome, Delivery, Event, ExecutionOutcome, Grant, GrantKind,
    GrantOutcome, NewGrant, NewRun, Role, Run, RunFilter, RunPage, StatsRow, TokenAnswer,
    TokenOutcome,
};
use crate::model::{AuditReport, StoredCheckpoint, TreeExtension, TreeHead};
use crate::tlog::Hash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Default number of events returned by [`Store::events`] when `limit` is 0.
pub const DEFAULT_EVENTS_LIMIT: u32 = 100;
/// Largest number of events one [`Store::events`] call returns.
pub const MAX_EVENTS_LIMIT: u32 = 1000;

pub(crate) fn events_limit(limit: u32) -> u32 {
    if limit == 0 {
        DEFAULT_EVENTS_LIMIT
    } else {
        limit.min(MAX_EVENTS_LIMIT)
    }
}

/// The audit store, as the gate uses it (`Arc<dyn Store>`).
///
/// Every state-changing method appends its events and updates the
/// projections in one transaction; a returned `Ok` means committed and
/// durable. Timestamps are truncated to microseconds.
#[async_trait]
pub trait Store: Send + Sync {
    /// Readiness: the database answers reads and (where it applies) the
    /// writer is alive.
    async fn health(&self) -> Result<(), StoreError>;

    /// Creates a run with its decision, or returns the existing run for an
    /// idempotent retry (same workspace, idempotency key and request hash).
    ///
    /// Appends run_proposed, policy_decided and, when pending,
    /// approval_requested; queues `run.deliveries` in the same transaction.
    /// Errors: [`StoreError::IdempotencyConflict`] for a reused key with a
    /// different request hash, [`StoreError::Conflict`] for a run id already
    /// taken, [`StoreError::InvalidInput`].
    async fn create_run(&self, run: NewRun) -> Result<CreateRunOutcome, StoreError>;

    /// Creates a run decided with the values of `queries`, all inside one
    /// store transaction: the values are computed (from the aggregate
    /// index, seeing every run recorded before, including those of the same
    /// group commit), `decide` builds the run from them, and the run is
    /// recorded as [`Store::create_run`] does (it must be of `workspace`).
    /// Concurrent calls for one workspace are serialized, so two of them
    /// cannot both slip under a limit. A query whose series is not built
    /// yet ([`Store::prepare_series`]) gives an error value, not a failed
    /// call: `decide` fails closed on it.
    /// Errors: those of [`Store::create_run`], and `decide`'s.
    async fn create_run_deciding(
        &self,
        workspace: &str,
        now: DateTime<Utc>,
        queries: Vec<AggregateQuery>,
        decide: DecideRun,
    ) -> Result<CreateRunOutcome, StoreError>;

    /// Registers the series of the aggregate index that `series` describe
    /// and builds each new one from the runs already recorded (in chunks,
    /// logging its progress), returning when all are built. From its
    /// registration on, every new run gets its entries as it is created.
    /// Errors: [`StoreError::InvalidInput`] for a malformed series.
    async fn prepare_series(
        &self,
        workspace: &str,
        series: Vec<SeriesSpec>,
    ) -> Result<SeriesReport, StoreError>;

    /// A run of this workspace; `None` if unknown or of another workspace.
    async fn get_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError>;

    /// Runs of a workspace, newest first (created_at desc, run_id desc).
    /// Errors: [`StoreError::InvalidCursor`].
    async fn list_runs(&self, workspace: &str, filter: RunFilter) -> Result<RunPage, StoreError>;

    /// Records the execution outcome of an executable, unreported run.
    ///
    /// Repeating the recorded report exactly returns the run unchanged.
    /// Errors: [`StoreError::NotFound`], [`StoreError::Conflict`] (not
    /// executable, or already reported differently).
    async fn report_execution(
        &self,
        workspace: &str,
        run_id: &str,
        outcome: ExecutionOutcome,
        now: DateTime<Utc>,
    ) -> Result<Run, StoreError>;

    /// Records an approver's answer and applies it (quorum, reject, expiry).
    ///
    /// Errors: [`StoreError::NotFound`], [`StoreError::NotAnApprover`],
    /// [`StoreError::SelfApproval`]; nothing is recorded for those.
    async fn record_answer(
        &self,
        workspace: &str,
        run_id: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<AnswerOutcome, StoreError>;

    /// Expires every pending run, in every workspace, whose `expires_at` is
    /// at or before `now`, and returns them.
    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError>;

    /// Registers an API key by the SHA-256 of its secret.
    /// Errors: [`StoreError::Conflict`] if the id or hash exists.
    async fn create_key(
        &self,
        workspace: &str,
        key_id: &str,
        key_hash: &str,
        role: Role,
        label: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError>;

    /// Registers an agent API key bound to `actor`: the runs it proposes are
    /// that actor's. `actor: None` is [`Store::create_key`].
    /// Errors: [`StoreError::InvalidInput`] for a bound admin key or an
    /// actor that is empty, invisible, too long or has control characters;
    /// [`StoreError::Conflict`] if the id or hash exists.
    #[expect(
        clippy::too_many_arguments,
        reason = "create_key's arguments and the actor"
    )]
    async fn create_bound_key(
        &self,
        workspace: &str,
        key_id: &str,
        key_hash: &str,
        role: Role,
        label: Option<String>,
        actor: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError>;

    /// Revokes a key; revoking a revoked key returns it unchanged.
    /// Errors: [`StoreError::NotFound`].
    async fn revoke_key(
        &self,
        workspace: &str,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError>;

    /// The key with this hash, revoked or not (check `revoked_at`),
    /// checked first against its own key_created and key_revoked events
    /// (one indexed read): each event's MAC, and the row's role, label,
    /// actor, creation and revocation times and (for keys created since
    /// schema version 6) the fingerprint of its hash.
    ///
    /// Errors: [`StoreError::KeyMismatch`] naming the key and the first
    /// differing column (`key_created` when no authenticated event created
    /// it); the caller must not accept the key.
    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// The workspace's keys, oldest first.
    async fn list_keys(&self, workspace: &str) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Records a policy (re)load attempt as a policy_reloaded event.
    async fn record_policy_reload(
        &self,
        workspace: &str,
        policy_version: &str,
        ok: bool,
        diagnostics: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Event, StoreError>;

    /// Events of a workspace with seq > `after_seq`, in seq order; `limit`
    /// 0 means [`DEFAULT_EVENTS_LIMIT`], capped at [`MAX_EVENTS_LIMIT`].
    async fn events(
        &self,
        workspace: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    /// Audits a workspace in full (see [`Store::audit`]) and sums it up the
    /// way `countersign audit verify` has always reported a chain.
    /// Errors: [`StoreError::ChainBroken`] naming the first broken seq when
    /// the hash chain is broken, else [`StoreError::AuditFailed`] listing
    /// every other problem (bad MACs, tree hashes, checkpoints, projection
    /// rows).
    async fn verify_chain(&self, workspace: &str) -> Result<ChainReport, StoreError>;

    /// The full audit of a workspace: every event's MAC, the hash chain and
    /// its head, every stored tree hash, every stored checkpoint's root
    /// (a checkpoint beyond the log's end means events were deleted), and
    /// every run, approval and API key row recomputed from the events. The
    /// report lists every problem (up to [`MAX_AUDIT_PROBLEMS`](crate::MAX_AUDIT_PROBLEMS)); it is
    /// `Ok` even when problems are found. Reads the whole workspace.
    async fn audit(&self, workspace: &str) -> Result<AuditReport, StoreError>;

    /// Size and root hash of the workspace's Merkle tree now (size = number
    /// of events; the empty tree for an unknown workspace).
    async fn tree_head(&self, workspace: &str) -> Result<TreeHead, StoreError>;

    /// Root hash of the workspace's tree at an earlier `size`, from
    /// `O(log size)` stored hashes in one query.
    /// Errors: [`StoreError::TreeRange`] when `size` is beyond the tree.
    async fn tree_head_at(&self, workspace: &str, size: u64) -> Result<TreeHead, StoreError>;

    /// RFC 9162 §2.1.3.1 inclusion proof of leaf `index` (0-based: the
    /// event with seq `index + 1`) in the tree of `size` leaves, read with
    /// one query of `O(log size)` stored hashes.
    /// Errors: [`StoreError::TreeRange`] unless `index < size <= tree size`.
    async fn inclusion_proof(
        &self,
        workspace: &str,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError>;

    /// RFC 9162 §2.1.4.1 consistency proof from the tree of `from` leaves to
    /// the tree of `to` leaves (empty when `from` is 0 or equals `to`).
    /// Errors: [`StoreError::TreeRange`] unless `from <= to <= tree size`.
    async fn consistency_proof(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError>;

    /// Events with `first_seq <= seq <= last_seq`, in seq order; at most
    /// [`MAX_EVENTS_LIMIT`] of them.
    /// Errors: [`StoreError::TreeRange`] for an empty or reversed range, a
    /// range starting at 0 or longer than [`MAX_EVENTS_LIMIT`], or one that
    /// reaches past the log's end.
    async fn events_range(
        &self,
        workspace: &str,
        first_seq: u64,
        last_seq: u64,
    ) -> Result<Vec<Event>, StoreError>;

    /// Checks the events with `from < seq <= to` before a checkpoint covers
    /// them: each event's MAC, hash and link, and the root of the stored
    /// frontier at `from` with their leaves appended equal to the stored
    /// root at `to`. One read of at most `O(log to)` hashes and the events.
    /// The caller compares the returned `from` root with the one it signed
    /// before.
    /// Errors: [`StoreError::TreeRange`] unless `from <= to <= tree size`
    /// and `to - from <= MAX_EXTENSION`; [`StoreError::AuditFailed`]
    /// listing every event that fails and a root that differs.
    async fn verify_extension(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<TreeExtension, StoreError>;

    /// Keeps a checkpoint the gate signed. Refused unless its size is
    /// within the tree and its root is the tree's root at that size; saving
    /// the same size again keeps the first one.
    /// Errors: [`StoreError::TreeRange`], [`StoreError::Conflict`] (a root
    /// that is not the tree's), [`StoreError::InvalidInput`].
    async fn save_checkpoint(&self, checkpoint: StoredCheckpoint) -> Result<(), StoreError>;

    /// The checkpoint of the largest size saved for the workspace.
    async fn latest_checkpoint(
        &self,
        workspace: &str,
    ) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// The saved checkpoint of the largest size at or below `size`.
    async fn checkpoint_at_or_before(
        &self,
        workspace: &str,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// A run, checked against its own events first: each event's MAC, and
    /// the stored row and approvals equal to what the events say. Call it
    /// before signing anything about the run.
    /// Errors: [`StoreError::AuditMismatch`] naming the first differing column.
    async fn verified_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError>;

    /// Workspaces that have at least one event, a recorded chain head or a
    /// saved checkpoint, sorted (a workspace whose events were deleted
    /// stays listed through its checkpoints).
    async fn workspaces(&self) -> Result<Vec<String>, StoreError>;

    /// Unsent deliveries whose `next_attempt_at` is at or before `now`, for
    /// runs still pending approval, oldest due first.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Claims up to `limit` due deliveries (as [`Store::due_deliveries`])
    /// for one sender: until `now + lease`, or until the sender records
    /// the attempt, no other caller gets them. Several gates sharing one
    /// PostgreSQL database therefore send each request once; a gate that
    /// dies mid-send leaves its claims to fall due again when the lease
    /// ends (at least once, never lost). The default, used by SQLite (one
    /// gate per database file), claims nothing and returns what is due.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let _ = lease;
        self.due_deliveries(now, limit).await
    }

    /// Every delivery of a run of this workspace, oldest first (empty for a
    /// run of another workspace).
    async fn deliveries_for_run(
        &self,
        workspace: &str,
        run_id: &str,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Marks a delivery sent. Errors: [`StoreError::NotFound`].
    async fn mark_delivery_sent(
        &self,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Marks several deliveries sent, in one transaction: all of them or,
    /// when one is unknown, none. Errors: [`StoreError::NotFound`] naming
    /// the first unknown id.
    async fn mark_deliveries_sent(
        &self,
        delivery_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records a failed delivery attempt; `next_attempt_at = None` gives up.
    /// Errors: [`StoreError::NotFound`].
    async fn mark_delivery_failed(
        &self,
        delivery_id: &str,
        next_attempt_at: Option<DateTime<Utc>>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Looks up an approval token by its hash without using it.
    async fn find_token(&self, token_hash: &str) -> Result<Option<ApprovalToken>, StoreError>;

    /// Uses a single-use approval token: the first call within its validity
    /// gets [`TokenOutcome::Consumed`], every later call
    /// [`TokenOutcome::AlreadyUsed`].
    async fn consume_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenOutcome, StoreError>;

    /// Spends a single-use approval token and records `answer` on the
    /// token's run, in one transaction: both happen or neither does. A
    /// token that cannot be spent gives [`TokenAnswer::Refused`] and writes
    /// nothing; an answer the run refuses (the errors of
    /// [`Store::record_answer`]) leaves the token unspent.
    async fn answer_with_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError>;

    /// Records `answer` through a shared destination's link token (one
    /// several approvers answer through, each naming themselves), in one
    /// transaction: the token must exist and be unexpired (it is not
    /// spent: each approver answers once, which the run enforces), and it
    /// is checked against the run's log first, so a token row a database
    /// writer added or edited is refused with
    /// [`StoreError::AuditMismatch`].
    async fn answer_with_shared_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError>;

    /// The head of a workspace's chain: seq 0 and [`GENESIS_HASH`](crate::GENESIS_HASH) when it
    /// has no events yet.
    async fn chain_head(&self, workspace: &str) -> Result<ChainPosition, StoreError>;

    /// Every event of one run of this workspace, in seq order (empty for an
    /// unknown run or a run of another workspace).
    async fn run_events(&self, workspace: &str, run_id: &str) -> Result<Vec<Event>, StoreError>;

    /// Counts of the workspace's runs created in `[since, until)`, grouped
    /// by UTC day and current status, ordered by day.
    async fn run_stats(
        &self,
        workspace: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<StatsRow>, StoreError>;

    /// Creates an access grant. A share link also appends a
    /// share_link_created event to its workspace's chain, in the same
    /// transaction.
    /// Errors: [`StoreError::Conflict`] if the id or token hash exists,
    /// [`StoreError::InvalidInput`] (a share link without a workspace).
    async fn create_grant(&self, grant: NewGrant, now: DateTime<Utc>) -> Result<Grant, StoreError>;

    /// The grant with this token hash, whatever its state.
    async fn find_grant(&self, token_hash: &str) -> Result<Option<Grant>, StoreError>;

    /// Uses a single-use grant of `kind` (a sign-in link): the first call
    /// while it is live gets [`GrantOutcome::Consumed`], every later one
    /// [`GrantOutcome::AlreadyUsed`]. A grant of another kind is
    /// [`GrantOutcome::Unknown`] and is left untouched.
    async fn consume_grant(
        &self,
        token_hash: &str,
        kind: GrantKind,
        now: DateTime<Utc>,
    ) -> Result<GrantOutcome, StoreError>;

    /// Revokes a grant; revoking a revoked grant returns it unchanged. A
    /// share link also appends a share_link_revoked event.
    /// Errors: [`StoreError::NotFound`].
    async fn revoke_grant(&self, grant_id: &str, now: DateTime<Utc>) -> Result<Grant, StoreError>;

    /// Deletes sign-in links and sessions that expired before `before`, and
    /// returns how many. Share links are kept: they are part of the audit
    /// record and stay listed after they expire.
    async fn prune_grants(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The workspace's grants of one kind, newest first.
    async fn list_grants(&self, workspace: &str, kind: GrantKind)
    -> Result<Vec<Grant>, StoreError>;

    /// Group-commit batch sizes, for backends that batch (SQLite).
    fn batch_stats(&self) -> Option<BatchStats> {
        None
    }
}
