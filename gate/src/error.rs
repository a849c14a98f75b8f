//! The one error type of the HTTP API: every failure becomes a status and a
//! JSON body `{"error": {"code", "message", "field"?}}`. Internal details are
//! logged, never sent to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign_store::StoreError;
use serde_json::json;

/// An API failure, with the HTTP status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a malformed query or path parameter.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 401: no key, an unknown key or a revoked key.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the key's role or workspace does not allow this.
    #[error("{message}")]
    Forbidden {
        /// Machine-readable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// Machine-readable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// 413: the body is larger than the configured limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 422: the body is not what the endpoint takes.
    #[error("{message}")]
    Validation {
        /// The offending field (`body` for malformed JSON).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 422: a request the current state cannot answer (a tree range
    /// beyond the log, reversed sizes).
    #[error("{message}")]
    Unprocessable {
        /// Machine-readable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// 500 `audit_mismatch`: the stored state differs from the audit log
    /// (the database was edited outside the gate); nothing was done or
    /// signed. The detail is logged at ERROR only.
    #[error("the stored state differs from the audit log; nothing was done (see the gate's log)")]
    AuditMismatch(String),
    /// 429: the key's rate limit is exhausted.
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request would be accepted.
        retry_after_secs: u64,
    },
    /// 503: a dependency (the store) cannot serve.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; the message is logged only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 422 for `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation { .. } | ApiError::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::AuditMismatch(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. } => code,
            ApiError::AuditMismatch(_) => "audit_mismatch",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        if let ApiError::AuditMismatch(detail) = &self {
            tracing::error!(%detail, "audit mismatch: refusing to act on state the log does not say");
        }
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let ApiError::Validation { field, .. } = &self {
            error["field"] = json!(field);
        }
        let mut response = (self.status(), axum::Json(json!({ "error": error }))).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self_is_unauthorized(response.status()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn self_is_unauthorized(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { entity, id } => {
                ApiError::NotFound(format!("{entity} `{id}` not found"))
            }
            e @ StoreError::IdempotencyConflict { .. } => ApiError::Conflict {
                code: "idempotency_conflict",
                message: e.to_string(),
            },
            StoreError::Conflict { message } => ApiError::Conflict {
                code: "conflict",
                message,
            },
            e @ StoreError::NotAnApprover { .. } => ApiError::Forbidden {
                code: "not_an_approver",
                message: e.to_string(),
            },
            e @ StoreError::SelfApproval { .. } => ApiError::Forbidden {
                code: "self_approval",
                message: e.to_string(),
            },
            e @ StoreError::NotYetEligible { .. } => ApiError::Forbidden {
                code: "not_yet_eligible",
                message: e.to_string(),
            },
            StoreError::InvalidCursor => ApiError::BadRequest {
                code: "invalid_cursor",
                message: "invalid cursor: pass back the next_cursor of a previous page unchanged"
                    .to_owned(),
            },
            StoreError::InvalidInput { message } => ApiError::validation("body", message),
            e @ StoreError::Unavailable { .. } => ApiError::Unavailable(e.to_string()),
            StoreError::TreeRange { message } => ApiError::Unprocessable {
                code: "tree_range",
                message,
            },
            e @ (StoreError::AuditMismatch { .. } | StoreError::AuditFailed { .. }) => {
                ApiError::AuditMismatch(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
