//! Row shapes shared by both backends: how a [`Run`] is flattened into
//! columns and rebuilt from them, so the column list, its decode order,
//! JSON encoding and status parsing are written once.

use crate::error::StoreError;
use crate::model::{
    AnswerDecision, ApprovalAnswer, ApprovalRequirement, ApproverRef, ChainPosition,
    DecisionRecord, ExecutionReport, ExecutionStatus, GovernanceStatus, Proposal, Role, Run,
    is_executable,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Columns of `runs`, in [`RunRow::decode`] order; every backend selects
/// and inserts them in this order.
pub(crate) const RUN_COLUMNS: &str = "workspace, run_id, action, actor, source_json, reasoning, \
    payload_json, payload_hash, payload_summary, idempotency_key, request_hash, decision_status, \
    decision_rule, decision_reason, policy_version, risk, decision_details, approval_group, \
    approval_quorum, expires_at, approvers_json, governance_status, execution_status, \
    execution_json, created_at, updated_at, head_seq, head_hash, context_json";

/// How many [`RUN_COLUMNS`] there are (the insert's placeholder count).
pub(crate) const RUN_COLUMN_COUNT: usize = 29;

/// One result row, read by column index. Each backend implements it for
/// its own row type, converting its own column types (SQLite keeps
/// timestamps as text, PostgreSQL as `timestamptz`).
pub(crate) trait ReadRow {
    /// A non-null text column.
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// A non-null integer column.
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A non-null timestamp column.
    fn ts(&self, i: usize) -> Result<DateTime<Utc>, StoreError>;
    /// A nullable timestamp column.
    fn opt_ts(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// The columns of the `runs` table, in a backend-neutral form.
#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    pub workspace: String,
    pub run_id: String,
    pub action: String,
    pub actor: Option<String>,
    pub source_json: Option<String>,
    pub reasoning: Option<String>,
    pub payload_json: String,
    pub payload_hash: String,
    pub payload_summary: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub decision_status: String,
    pub decision_rule: Option<String>,
    pub decision_reason: String,
    pub policy_version: String,
    pub risk: Option<String>,
    pub decision_details: String,
    pub approval_group: Option<String>,
    pub approval_quorum: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub approvers_json: Option<String>,
    pub governance_status: String,
    pub execution_status: String,
    pub execution_json: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub head_seq: i64,
    pub head_hash: String,
    pub context_json: Option<String>,
}

pub(crate) fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::invalid(format!("seq {seq} is too large")))
}

pub(crate) fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::corrupt(format!("negative seq {seq}")))
}

pub(crate) fn governance(s: &str) -> Result<GovernanceStatus, StoreError> {
    GovernanceStatus::parse(s)
        .ok_or_else(|| StoreError::corrupt(format!("unknown governance status `{s}`")))
}

pub(crate) fn execution(s: &str) -> Result<ExecutionStatus, StoreError> {
    ExecutionStatus::parse(s)
        .ok_or_else(|| StoreError::corrupt(format!("unknown execution status `{s}`")))
}

pub(crate) fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::corrupt(format!("unknown role `{s}`")))
}

pub(crate) fn answer_decision(s: &str) -> Result<AnswerDecision, StoreError> {
    AnswerDecision::parse(s)
        .ok_or_else(|| StoreError::corrupt(format!("unknown answer decision `{s}`")))
}

impl RunRow {
    /// Reads a row selected as [`RUN_COLUMNS`].
    pub(crate) fn decode(row: &impl ReadRow) -> Result<Self, StoreError> {
        Ok(Self {
            workspace: row.text(0)?,
            run_id: row.text(1)?,
            action: row.text(2)?,
            actor: row.opt_text(3)?,
            source_json: row.opt_text(4)?,
            reasoning: row.opt_text(5)?,
            payload_json: row.text(6)?,
            payload_hash: row.text(7)?,
            payload_summary: row.text(8)?,
            idempotency_key: row.opt_text(9)?,
            request_hash: row.text(10)?,
            decision_status: row.text(11)?,
            decision_rule: row.opt_text(12)?,
            decision_reason: row.text(13)?,
            policy_version: row.text(14)?,
            risk: row.opt_text(15)?,
            decision_details: row.text(16)?,
            approval_group: row.opt_text(17)?,
            approval_quorum: row.opt_int(18)?,
            expires_at: row.opt_ts(19)?,
            approvers_json: row.opt_text(20)?,
            governance_status: row.text(21)?,
            execution_status: row.text(22)?,
            execution_json: row.opt_text(23)?,
            created_at: row.ts(24)?,
            updated_at: row.ts(25)?,
            head_seq: row.int(26)?,
            head_hash: row.text(27)?,
            context_json: row.opt_text(28)?,
        })
    }

    /// Flattens a run (its approvals are stored separately).
    pub(crate) fn from_run(run: &Run) -> Result<Self, StoreError> {
        let approval = run.proposal.approval.as_ref();
        let p = &run.proposal;
        Ok(Self {
            workspace: p.workspace.clone(),
            run_id: p.run_id.clone(),
            action: p.action.clone(),
            actor: p.actor.clone(),
            source_json: p.source.as_ref().map(serde_json::to_string).transpose()?,
            reasoning: p.reasoning.clone(),
            payload_json: p.payload_json.clone(),
            payload_hash: p.payload_hash.clone(),
            payload_summary: p.payload_summary.clone(),
            idempotency_key: p.idempotency_key.clone(),
            request_hash: p.request_hash.clone(),
            decision_status: p.decision.governance_status.as_str().to_owned(),
            decision_rule: p.decision.rule.clone(),
            decision_reason: p.decision.reason.clone(),
            policy_version: p.decision.policy_version.clone(),
            risk: p.decision.risk.clone(),
            decision_details: serde_json::to_string(&p.decision.details)?,
            approval_group: approval.map(|a| a.group.clone()),
            approval_quorum: approval.map(|a| i64::from(a.quorum)),
            expires_at: approval.map(|a| a.expires_at),
            approvers_json: approval
                .map(|a| serde_json::to_string(&a.approvers))
                .transpose()?,
            governance_status: run.governance_status.as_str().to_owned(),
            execution_status: run.execution_status.as_str().to_owned(),
            execution_json: run
                .execution
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?,
            created_at: p.created_at,
            updated_at: run.updated_at,
            head_seq: seq_to_db(run.chain.seq)?,
            head_hash: run.chain.hash.clone(),
            context_json: p.context.as_ref().map(serde_json::to_string).transpose()?,
        })
    }

    /// Rebuilds the run.
    pub(crate) fn into_run(self, approvals: Vec<ApprovalAnswer>) -> Result<Run, StoreError> {
        let approval = match (self.approval_group, self.approval_quorum, self.expires_at) {
            (Some(group), Some(quorum), Some(expires_at)) => {
                let approvers: Vec<ApproverRef> = match &self.approvers_json {
                    Some(text) => serde_json::from_str(text)?,
                    None => Vec::new(),
                };
                Some(ApprovalRequirement {
                    group,
                    quorum: u32::try_from(quorum)
                        .map_err(|_| StoreError::corrupt(format!("bad quorum {quorum}")))?,
                    expires_at,
                    approvers,
                })
            }
            _ => None,
        };
        let source: Option<Value> = self
            .source_json
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        let context: Option<Value> = self
            .context_json
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        let execution_report: Option<ExecutionReport> = self
            .execution_json
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        let governance_status = governance(&self.governance_status)?;
        let execution_status = execution(&self.execution_status)?;
        Ok(Run {
            proposal: Proposal {
                workspace: self.workspace,
                run_id: self.run_id,
                action: self.action,
                actor: self.actor,
                source,
                context,
                reasoning: self.reasoning,
                payload_json: self.payload_json,
                payload_hash: self.payload_hash,
                payload_summary: self.payload_summary,
                idempotency_key: self.idempotency_key,
                request_hash: self.request_hash,
                decision: DecisionRecord {
                    governance_status: governance(&self.decision_status)?,
                    rule: self.decision_rule,
                    reason: self.decision_reason,
                    policy_version: self.policy_version,
                    risk: self.risk,
                    details: serde_json::from_str(&self.decision_details)?,
                },
                approval,
                created_at: self.created_at,
            },
            governance_status,
            execution_status,
            executable: is_executable(governance_status, execution_status),
            approvals,
            execution: execution_report,
            updated_at: self.updated_at,
            chain: ChainPosition {
                seq: seq_from_db(self.head_seq)?,
                hash: self.head_hash,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_column_count_matches_the_column_list() {
        assert_eq!(RUN_COLUMNS.split(',').count(), RUN_COLUMN_COUNT);
    }
}
