//! The gate's HTTP API, as the proxy uses it: intercept, read a run,
//! report its execution. The same endpoints any agent calls, so the gate
//! may be remote.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// How long one request to the gate may take.
const GATE_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a request to the gate failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GateError {
    /// No answer (connection refused, timeout, a garbled response).
    #[error("the gate at {url} could not be reached: {message}")]
    Unreachable {
        /// The gate's base URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The gate answered with an error.
    #[error("the gate refused the request ({status} {code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error code of its JSON body.
        code: String,
        /// Its message.
        message: String,
    },
}

/// An approval requirement, as the run shows it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ApprovalView {
    /// The approvers asked.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// When the request expires.
    #[serde(default)]
    pub expires_at: String,
}

/// One answer recorded on a run.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AnswerView {
    /// Who answered.
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Their comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The part of a run the proxy reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RunInfo {
    /// The run's id.
    pub run_id: String,
    /// allowed, pending_approval, blocked, approved, rejected, expired.
    pub governance_status: String,
    /// not_executed, awaiting_execution, executed, failed.
    pub execution_status: String,
    /// The policy's reason.
    #[serde(default)]
    pub governance_reason: String,
    /// The deciding rule.
    #[serde(default)]
    pub rule: Option<String>,
    /// The approval requirement, for runs that needed one.
    #[serde(default)]
    pub approval: Option<ApprovalView>,
    /// The answers so far.
    #[serde(default)]
    pub approvals: Vec<AnswerView>,
}

/// A client of one gate with one API key.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Gate {
    /// A client of the gate at `base` (`http://127.0.0.1:8080`).
    pub(crate) fn new(base: &str, key: &str) -> Result<Self, GateError> {
        let http = reqwest::Client::builder()
            .timeout(GATE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GateError::Unreachable {
                url: base.to_owned(),
                message: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> GateError {
        GateError::Unreachable {
            url: self.base.clone(),
            message: e.to_string(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, GateError> {
        let resp = req
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let err = json.get("error");
        let text = |k: &str| {
            err.and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let message = match text("message") {
            m if m.is_empty() => String::from_utf8_lossy(&body).chars().take(300).collect(),
            m => m,
        };
        Err(GateError::Refused {
            status: status.as_u16(),
            code: text("code"),
            message,
        })
    }

    /// `POST /v1/intercept`.
    pub(crate) async fn intercept(&self, body: &Value) -> Result<RunInfo, GateError> {
        let url = format!("{}/v1/intercept", self.base);
        let v = self.send(self.http.post(url).json(body)).await?;
        serde_json::from_value(v).map_err(|e| self.unreachable(format!("unexpected answer: {e}")))
    }

    /// `GET /v1/runs/{id}`; `None` if the gate does not know the run.
    pub(crate) async fn run(&self, run_id: &str) -> Result<Option<RunInfo>, GateError> {
        let url = format!("{}/v1/runs/{run_id}", self.base);
        match self.send(self.http.get(url)).await {
            Ok(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| self.unreachable(format!("unexpected answer: {e}"))),
            Err(GateError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/policies`: the policy set in force, as declarations.
    pub(crate) async fn policies(&self) -> Result<Value, GateError> {
        let url = format!("{}/v1/policies", self.base);
        self.send(self.http.get(url)).await
    }

    /// `POST /v1/runs/{id}/executed`.
    pub(crate) async fn executed(&self, run_id: &str, result: Value) -> Result<(), GateError> {
        let url = format!("{}/v1/runs/{run_id}/executed", self.base);
        let body = serde_json::json!({ "execution_result": result });
        self.send(self.http.post(url).json(&body)).await.map(drop)
    }

    /// `POST /v1/runs/{id}/failed`.
    pub(crate) async fn failed(&self, run_id: &str, error: &str) -> Result<(), GateError> {
        let url = format!("{}/v1/runs/{run_id}/failed", self.base);
        let body = serde_json::json!({ "execution_error": error });
        self.send(self.http.post(url).json(&body)).await.map(drop)
    }
}
