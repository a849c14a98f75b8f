//! The router: every route of the gate in one place.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};

use crate::api::{answers, audit, intercept, runs, system};
use crate::error::ApiError;
use crate::state::AppState;

/// Builds the gate's router. Tests call this directly with `oneshot`, or
/// serve it on a loopback port.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        // A person who opens the gate's address lands on the dashboard.
        .route("/", get(|| async { axum::response::Redirect::to("/ui") }))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .route("/v1/intercept", post(intercept::intercept))
        .route("/v1/runs", get(runs::list_runs))
        .route("/v1/runs/{id}", get(runs::get_run))
        .route("/v1/runs/{id}/executed", post(runs::report_executed))
        .route("/v1/runs/{id}/failed", post(runs::report_failed))
        .route("/v1/runs/{id}/receipt", get(runs::receipt))
        .route("/v1/receipt-keys", get(system::receipt_keys))
        .route("/v1/policies", get(system::policies))
        .route("/v1/policies/reload", post(system::reload))
        .route("/v1/audit/verify", get(system::audit_verify))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/v1/audit/proofs/inclusion", get(audit::inclusion_proof))
        .route(
            "/v1/audit/proofs/consistency",
            get(audit::consistency_proof),
        )
        .route(
            "/v1/audit/{workspace}/checkpoint",
            get(audit::public_checkpoint),
        )
        .route(
            "/v1/audit/{workspace}/proofs/inclusion",
            get(audit::public_inclusion_proof),
        )
        .route(
            "/v1/audit/{workspace}/proofs/consistency",
            get(audit::public_consistency_proof),
        )
        .route("/v1/approvals/{token}", post(answers::answer_api))
        .route("/slack/interactions", post(answers::slack_interactions))
        .merge(crate::ui::routes(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Handlers read bodies themselves with the configured limit; this
        // keeps axum's own extractors within it too.
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for `{}`", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> axum::response::Response {
    let mut r = axum::response::IntoResponse::into_response(ApiError::BadRequest {
        code: "method_not_allowed",
        message: format!("`{method}` is not allowed on `{}`", uri.path()),
    });
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    r
}
