//! What a storage backend implements: the [`Store`](crate::Store) methods
//! after [`Checked`](crate::Checked) has checked their arguments.
//!
//! A backend may rely on what `Checked` guarantees, and repeats none of it:
//! every timestamp it gets is normalized (microseconds, years 1 to 9999), a
//! new run or grant is validated, a limit is within its bounds, and a key's
//! record or a policy reload's event is already built.

use crate::aggregates::{AggregateQuery, DecideRun, SeriesReport, SeriesSpec};
use crate::chain::PendingEvent;
use crate::error::StoreError;
use crate::model::{
    AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalToken, BatchStats, ChainPosition,
    ChainReport, CreateRunOutcome, Delivery, Event, ExecutionOutcome, Grant, GrantKind,
    GrantOutcome, NewGrant, NewRun, Run, RunFilter, RunPage, StatsRow, TokenAnswer, TokenOutcome,
};
use crate::model::{AuditReport, StoredCheckpoint, TreeExtension, TreeHead};
use crate::tlog::Hash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A storage backend. Each method is the [`Store`](crate::Store) method of
/// the same name, given checked arguments; only those whose arguments
/// `Checked` prepares differ in signature.
#[async_trait]
pub(crate) trait Backend: Send + Sync {
    async fn health(&self) -> Result<(), StoreError>;

    /// `run` is validated and its timestamps normalized.
    async fn create_run(&self, run: NewRun) -> Result<CreateRunOutcome, StoreError>;

    /// `queries` are checked; `decide`'s run is not (the backend validates
    /// it inside its transaction).
    async fn create_run_deciding(
        &self,
        workspace: &str,
        now: DateTime<Utc>,
        queries: Vec<AggregateQuery>,
        decide: DecideRun,
    ) -> Result<CreateRunOutcome, StoreError>;

    /// `series` are checked.
    async fn prepare_series(
        &self,
        workspace: &str,
        series: Vec<SeriesSpec>,
    ) -> Result<SeriesReport, StoreError>;

    async fn get_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError>;

    async fn list_runs(&self, workspace: &str, filter: RunFilter) -> Result<RunPage, StoreError>;

    async fn report_execution(
        &self,
        workspace: &str,
        run_id: &str,
        outcome: ExecutionOutcome,
        now: DateTime<Utc>,
    ) -> Result<Run, StoreError>;

    async fn record_answer(
        &self,
        workspace: &str,
        run_id: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<AnswerOutcome, StoreError>;

    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError>;

    /// Registers `key` (built from checked ids) under `key_hash`.
    async fn create_key(
        &self,
        key: ApiKeyRecord,
        key_hash: &str,
    ) -> Result<ApiKeyRecord, StoreError>;

    async fn revoke_key(
        &self,
        workspace: &str,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError>;

    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    async fn list_keys(&self, workspace: &str) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Appends one event that concerns no run (a policy reload).
    async fn append_workspace_event(
        &self,
        workspace: &str,
        event: PendingEvent,
    ) -> Result<Event, StoreError>;

    /// `limit` is already defaulted and capped.
    async fn events(
        &self,
        workspace: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    async fn verify_chain(&self, workspace: &str) -> Result<ChainReport, StoreError>;

    async fn audit(&self, workspace: &str) -> Result<AuditReport, StoreError>;

    async fn tree_head(&self, workspace: &str) -> Result<TreeHead, StoreError>;

    /// Any `size`: the backend checks it against the tree.
    async fn tree_head_at(&self, workspace: &str, size: u64) -> Result<TreeHead, StoreError>;

    /// Any arguments: the backend checks them against the tree.
    async fn inclusion_proof(
        &self,
        workspace: &str,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError>;

    /// Any arguments: the backend checks them against the tree.
    async fn consistency_proof(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError>;

    /// `from <= to` and `to - from <= MAX_EXTENSION`; the backend checks
    /// `to` against the tree.
    async fn verify_extension(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<TreeExtension, StoreError>;

    /// `checkpoint`'s workspace and note are checked, its time normalized.
    async fn save_checkpoint(&self, checkpoint: StoredCheckpoint) -> Result<(), StoreError>;

    /// `size` None: the latest.
    async fn find_checkpoint(
        &self,
        workspace: &str,
        size: Option<u64>,
    ) -> Result<Option<StoredCheckpoint>, StoreError>;

    async fn verified_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError>;

    async fn workspaces(&self) -> Result<Vec<String>, StoreError>;

    /// `limit` is already defaulted and capped.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// `limit` is already defaulted and capped. A backend that serves one
    /// gate (SQLite) claims nothing: what is due is all there is.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let _ = lease;
        self.due_deliveries(now, limit).await
    }

    async fn deliveries_for_run(
        &self,
        workspace: &str,
        run_id: &str,
    ) -> Result<Vec<Delivery>, StoreError>;

    async fn mark_delivery_sent(
        &self,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// `delivery_ids` is not empty.
    async fn mark_deliveries_sent(
        &self,
        delivery_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn mark_delivery_failed(
        &self,
        delivery_id: &str,
        next_attempt_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StoreError>;

    async fn find_token(&self, token_hash: &str) -> Result<Option<ApprovalToken>, StoreError>;

    async fn consume_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenOutcome, StoreError>;

    async fn answer_with_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError>;

    async fn answer_with_shared_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError>;

    async fn chain_head(&self, workspace: &str) -> Result<ChainPosition, StoreError>;

    async fn run_events(&self, workspace: &str, run_id: &str) -> Result<Vec<Event>, StoreError>;

    async fn run_stats(
        &self,
        workspace: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<StatsRow>, StoreError>;

    /// Stores `grant` as `record`, the record `Checked` built from it.
    async fn create_grant(&self, grant: NewGrant, record: Grant) -> Result<Grant, StoreError>;

    async fn find_grant(&self, token_hash: &str) -> Result<Option<Grant>, StoreError>;

    async fn consume_grant(
        &self,
        token_hash: &str,
        kind: GrantKind,
        now: DateTime<Utc>,
    ) -> Result<GrantOutcome, StoreError>;

    async fn revoke_grant(&self, grant_id: &str, now: DateTime<Utc>) -> Result<Grant, StoreError>;

    async fn prune_grants(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn list_grants(&self, workspace: &str, kind: GrantKind)
    -> Result<Vec<Grant>, StoreError>;

    fn batch_stats(&self) -> Option<BatchStats> {
        None
    }
}
