//! One place for the argument checks of every [`Store`] method.
//!
//! [`Checked`] validates and normalizes what the caller gives, then hands it
//! to its backend, so SQLite and PostgreSQL refuse exactly the same input
//! and get it in exactly the same form. The public constructors
//! ([`crate::SqliteStore::open`], [`crate::PostgresStore::connect`]) return a
//! `Checked` store; a backend is never reachable without it.

use crate::aggregates::{AggregateQuery, DecideRun, SeriesReport, SeriesSpec};
use crate::backend::Backend;
use crate::error::StoreError;
use crate::model::{
    AnswerInput, AnswerOutcome, ApiKeyRecord, ApprovalToken, BatchStats, ChainPosition,
    ChainReport, CreateRunOutcome, Delivery, Event, ExecutionOutcome, Grant, GrantKind,
    GrantOutcome, NewGrant, NewRun, Role, Run, RunFilter, RunPage, StatsRow, TokenAnswer,
    TokenOutcome,
};
use crate::model::{AuditReport, StoredCheckpoint, TreeExtension, TreeHead};
use crate::store::MAX_EVENTS_LIMIT;
use crate::store::{Store, events_limit};
use crate::tlog::Hash;
use crate::ts::normalize;
use crate::validate::{check_id, check_key_actor, validate_new_run};
use crate::{grants, workspace_events};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

fn range(message: String) -> StoreError {
    StoreError::TreeRange { message }
}

/// Sizes a database can hold (seqs are signed 64-bit there) and the tree
/// numbering supports.
fn check_tree_size(size: u64) -> Result<(), StoreError> {
    if size > crate::tlog::MAX_TREE_SIZE {
        return Err(range(format!(
            "tree size {size} is above the supported maximum of 2^62"
        )));
    }
    Ok(())
}

/// A store whose every method checks its arguments, then delegates to the
/// backend `B`. Use it through [`crate::SqliteStore`] or
/// [`crate::PostgresStore`].
pub struct Checked<B> {
    backend: B,
}

impl<B> Checked<B> {
    /// Wraps a backend; only the backends' constructors call it.
    pub(crate) fn new(backend: B) -> Self {
        Self { backend }
    }
}

/// Shows the backend, as if there were no wrapper.
impl<B: std::fmt::Debug> std::fmt::Debug for Checked<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.backend.fmt(f)
    }
}

#[async_trait]
impl<B: Backend> Store for Checked<B> {
    async fn health(&self) -> Result<(), StoreError> {
        self.backend.health().await
    }

    async fn create_run(&self, mut run: NewRun) -> Result<CreateRunOutcome, StoreError> {
        validate_new_run(&mut run)?;
        self.backend.create_run(run).await
    }

    async fn create_run_deciding(
        &self,
        workspace: &str,
        now: DateTime<Utc>,
        queries: Vec<AggregateQuery>,
        decide: DecideRun,
    ) -> Result<CreateRunOutcome, StoreError> {
        for q in &queries {
            crate::aggregates::validate_query(q)?;
        }
        let now = normalize(now)?;
        self.backend
            .create_run_deciding(workspace, now, queries, decide)
            .await
    }

    async fn prepare_series(
        &self,
        workspace: &str,
        series: Vec<SeriesSpec>,
    ) -> Result<SeriesReport, StoreError> {
        for s in &series {
            crate::aggregates::validate_series(s)?;
        }
        self.backend.prepare_series(workspace, series).await
    }

    async fn get_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        self.backend.get_run(workspace, run_id).await
    }

    async fn list_runs(&self, workspace: &str, filter: RunFilter) -> Result<RunPage, StoreError> {
        self.backend.list_runs(workspace, filter).await
    }

    async fn report_execution(
        &self,
        workspace: &str,
        run_id: &str,
        outcome: ExecutionOutcome,
        now: DateTime<Utc>,
    ) -> Result<Run, StoreError> {
        let now = normalize(now)?;
        self.backend
            .report_execution(workspace, run_id, outcome, now)
            .await
    }

    async fn record_answer(
        &self,
        workspace: &str,
        run_id: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<AnswerOutcome, StoreError> {
        let now = normalize(now)?;
        self.backend
            .record_answer(workspace, run_id, answer, now)
            .await
    }

    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
        self.backend.expire_due(normalize(now)?).await
    }

    async fn create_key(
        &self,
        workspace: &str,
        key_id: &str,
        key_hash: &str,
        role: Role,
        label: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.create_bound_key(workspace, key_id, key_hash, role, label, None, now)
            .await
    }

    async fn create_bound_key(
        &self,
        workspace: &str,
        key_id: &str,
        key_hash: &str,
        role: Role,
        label: Option<String>,
        actor: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError> {
        check_id("workspace", workspace)?;
        check_id("key_id", key_id)?;
        check_id("key_hash", key_hash)?;
        if let Some(actor) = &actor {
            check_key_actor(role, actor)?;
        }
        let key = workspace_events::new_key(workspace, key_id, role, label, actor, normalize(now)?);
        self.backend.create_key(key, key_hash).await
    }

    async fn revoke_key(
        &self,
        workspace: &str,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord, StoreError> {
        let now = normalize(now)?;
        self.backend.revoke_key(workspace, key_id, now).await
    }

    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.backend.find_key(key_hash).await
    }

    async fn list_keys(&self, workspace: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.backend.list_keys(workspace).await
    }

    async fn record_policy_reload(
        &self,
        workspace: &str,
        policy_version: &str,
        ok: bool,
        diagnostics: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Event, StoreError> {
        check_id("workspace", workspace)?;
        let event = workspace_events::policy_reloaded_event(
            policy_version,
            ok,
            &diagnostics,
            normalize(now)?,
        );
        self.backend.append_workspace_event(workspace, event).await
    }

    async fn events(
        &self,
        workspace: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        self.backend
            .events(workspace, after_seq, events_limit(limit))
            .await
    }

    async fn verify_chain(&self, workspace: &str) -> Result<ChainReport, StoreError> {
        self.backend.verify_chain(workspace).await
    }

    async fn audit(&self, workspace: &str) -> Result<AuditReport, StoreError> {
        self.backend.audit(workspace).await
    }

    async fn tree_head(&self, workspace: &str) -> Result<TreeHead, StoreError> {
        self.backend.tree_head(workspace).await
    }

    async fn tree_head_at(&self, workspace: &str, size: u64) -> Result<TreeHead, StoreError> {
        check_tree_size(size)?;
        self.backend.tree_head_at(workspace, size).await
    }

    async fn inclusion_proof(
        &self,
        workspace: &str,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        check_tree_size(size)?;
        if index >= size {
            return Err(range(format!(
                "leaf index {index} is not in a tree of size {size}"
            )));
        }
        self.backend.inclusion_proof(workspace, index, size).await
    }

    async fn consistency_proof(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        check_tree_size(to)?;
        if from > to {
            return Err(range(format!(
                "cannot prove consistency from size {from} to the smaller size {to}"
            )));
        }
        self.backend.consistency_proof(workspace, from, to).await
    }

    async fn events_range(
        &self,
        workspace: &str,
        first_seq: u64,
        last_seq: u64,
    ) -> Result<Vec<Event>, StoreError> {
        if first_seq == 0 || last_seq < first_seq {
            return Err(range(format!(
                "seq range {first_seq}..={last_seq} is empty or starts at 0"
            )));
        }
        let count = last_seq - first_seq + 1;
        if count > u64::from(MAX_EVENTS_LIMIT) {
            return Err(range(format!(
                "seq range {first_seq}..={last_seq} holds more than {MAX_EVENTS_LIMIT} events"
            )));
        }
        let limit = u32::try_from(count).unwrap_or(MAX_EVENTS_LIMIT);
        let events = self.backend.events(workspace, first_seq - 1, limit).await?;
        if (events.len() as u64) < count {
            return Err(range(format!(
                "seq range {first_seq}..={last_seq} reaches past the log's last event (seq {})",
                events.last().map_or(first_seq - 1, |e| e.seq)
            )));
        }
        Ok(events)
    }

    async fn verify_extension(
        &self,
        workspace: &str,
        from: u64,
        to: u64,
    ) -> Result<TreeExtension, StoreError> {
        check_tree_size(to)?;
        if from > to || to - from > crate::extension::MAX_EXTENSION {
            return Err(range(format!(
                "cannot check the log from size {from} to size {to} (at most {} events at once)",
                crate::extension::MAX_EXTENSION
            )));
        }
        self.backend.verify_extension(workspace, from, to).await
    }

    async fn save_checkpoint(&self, mut checkpoint: StoredCheckpoint) -> Result<(), StoreError> {
        check_id("workspace", &checkpoint.workspace)?;
        check_tree_size(checkpoint.size)?;
        if checkpoint.note.is_empty() {
            return Err(StoreError::invalid("a checkpoint's note is empty"));
        }
        checkpoint.created_at = normalize(checkpoint.created_at)?;
        self.backend.save_checkpoint(checkpoint).await
    }

    async fn latest_checkpoint(
        &self,
        workspace: &str,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.backend.find_checkpoint(workspace, None).await
    }

    async fn checkpoint_at_or_before(
        &self,
        workspace: &str,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let size = size.min(crate::tlog::MAX_TREE_SIZE);
        self.backend.find_checkpoint(workspace, Some(size)).await
    }

    async fn verified_run(&self, workspace: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        self.backend.verified_run(workspace, run_id).await
    }

    async fn workspaces(&self) -> Result<Vec<String>, StoreError> {
        self.backend.workspaces().await
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = normalize(now)?;
        self.backend.due_deliveries(now, events_limit(limit)).await
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = normalize(now)?;
        self.backend
            .claim_due_deliveries(now, events_limit(limit), lease)
            .await
    }

    async fn deliveries_for_run(
        &self,
        workspace: &str,
        run_id: &str,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.backend.deliveries_for_run(workspace, run_id).await
    }

    async fn mark_delivery_sent(
        &self,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = normalize(now)?;
        self.backend.mark_delivery_sent(delivery_id, now).await
    }

    async fn mark_deliveries_sent(
        &self,
        delivery_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if delivery_ids.is_empty() {
            return Ok(());
        }
        let now = normalize(now)?;
        self.backend.mark_deliveries_sent(delivery_ids, now).await
    }

    async fn mark_delivery_failed(
        &self,
        delivery_id: &str,
        next_attempt_at: Option<DateTime<Utc>>,
        error: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let next = next_attempt_at.map(normalize).transpose()?;
        self.backend
            .mark_delivery_failed(delivery_id, next, error)
            .await
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<ApprovalToken>, StoreError> {
        self.backend.find_token(token_hash).await
    }

    async fn consume_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenOutcome, StoreError> {
        let now = normalize(now)?;
        self.backend.consume_token(token_hash, now).await
    }

    async fn answer_with_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError> {
        let now = normalize(now)?;
        self.backend
            .answer_with_token(token_hash, answer, now)
            .await
    }

    async fn answer_with_shared_token(
        &self,
        token_hash: &str,
        answer: AnswerInput,
        now: DateTime<Utc>,
    ) -> Result<TokenAnswer, StoreError> {
        let now = normalize(now)?;
        self.backend
            .answer_with_shared_token(token_hash, answer, now)
            .await
    }

    async fn chain_head(&self, workspace: &str) -> Result<ChainPosition, StoreError> {
        self.backend.chain_head(workspace).await
    }

    async fn run_events(&self, workspace: &str, run_id: &str) -> Result<Vec<Event>, StoreError> {
        self.backend.run_events(workspace, run_id).await
    }

    async fn run_stats(
        &self,
        workspace: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<StatsRow>, StoreError> {
        let (since, until) = (normalize(since)?, normalize(until)?);
        self.backend.run_stats(workspace, since, until).await
    }

    async fn create_grant(&self, grant: NewGrant, now: DateTime<Utc>) -> Result<Grant, StoreError> {
        let record = grants::prepare(&grant, now)?;
        self.backend.create_grant(grant, record).await
    }

    async fn find_grant(&self, token_hash: &str) -> Result<Option<Grant>, StoreError> {
        self.backend.find_grant(token_hash).await
    }

    async fn consume_grant(
        &self,
        token_hash: &str,
        kind: GrantKind,
        now: DateTime<Utc>,
    ) -> Result<GrantOutcome, StoreError> {
        let now = normalize(now)?;
        self.backend.consume_grant(token_hash, kind, now).await
    }

    async fn revoke_grant(&self, grant_id: &str, now: DateTime<Utc>) -> Result<Grant, StoreError> {
        let now = normalize(now)?;
        self.backend.revoke_grant(grant_id, now).await
    }

    async fn prune_grants(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.backend.prune_grants(normalize(before)?).await
    }

    async fn list_grants(
        &self,
        workspace: &str,
        kind: GrantKind,
    ) -> Result<Vec<Grant>, StoreError> {
        self.backend.list_grants(workspace, kind).await
    }

    fn batch_stats(&self) -> Option<BatchStats> {
        self.backend.batch_stats()
    }
}
