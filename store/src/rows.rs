//! Row shapes shared by both backends: how a [`Run`] is flattened into
//! columns and rebuilt from them, so JSON encoding and status parsing are
//! written once.

use crate::StoreError;
use crate::model::{
    AnswerDecision, ApprovalAnswer, ApprovalRequirement, ApproverRef, ChainPosition,
    DecisionRecord, ExecutionReport, ExecutionStatus, GovernanceStatus, Role, Run, is_executable,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

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
    /// Flattens a run (its approvals are stored separately).
    pub(crate) fn from_run(run: &Run) -> Result<Self, StoreError> {
        let approval = run.approval.as_ref();
        Ok(Self {
            workspace: run.workspace.clone(),
            run_id: run.run_id.clone(),
            action: run.action.clone(),
            actor: run.actor.clone(),
            source_json: run.source.as_ref().map(serde_json::to_string).transpose()?,
            reasoning: run.reasoning.clone(),
            payload_json: run.payload_json.clone(),
            payload_hash: run.payload_hash.clone(),
            payload_summary: run.payload_summary.clone(),
            idempotency_key: run.idempotency_key.clone(),
            request_hash: run.request_hash.clone(),
            decision_status: run.decision.governance_status.as_str().to_owned(),
            decision_rule: run.decision.rule.clone(),
            decision_reason: run.decision.reason.clone(),
            policy_version: run.decision.policy_version.clone(),
            risk: run.decision.risk.clone(),
            decision_details: serde_json::to_string(&run.decision.details)?,
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
            created_at: run.created_at,
            updated_at: run.updated_at,
            head_seq: seq_to_db(run.chain.seq)?,
            head_hash: run.chain.hash.clone(),
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
        let execution_report: Option<ExecutionReport> = self
            .execution_json
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        let governance_status = governance(&self.governance_status)?;
        let execution_status = execution(&self.execution_status)?;
        Ok(Run {
            workspace: self.workspace,
            run_id: self.run_id,
            action: self.action,
            actor: self.actor,
            source,
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
            governance_status,
            execution_status,
            executable: is_executable(governance_status, execution_status),
            approvals,
            execution: execution_report,
            created_at: self.created_at,
            updated_at: self.updated_at,
            chain: ChainPosition {
                seq: seq_from_db(self.head_seq)?,
                hash: self.head_hash,
            },
        })
    }
}
