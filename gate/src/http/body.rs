//! Reading request bodies with a size limit.

use axum::body::Body;

use crate::error::ApiError;

/// The largest form or small control body read (answer forms, sign-in
/// forms, answer and report bodies). Large enough for the longest comment
/// in its most expensive encoding (checked where the comment limit is
/// defined, `approvals::record`).
pub const MAX_FORM_BYTES: usize = 32 * 1024;

/// Reads a request body, refusing more than `limit` bytes with 413.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // to_bytes reports both "too long" and transport errors; only the
        // first is the client's size problem.
        let text = e.to_string();
        if text.contains("length limit") {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadRequest {
                code: "bad_body",
                message: format!("could not read the request body: {text}"),
            }
        }
    })
}
