//! What the pages share: loading a run the viewer may see, who may answer
//! it, and turning a page's result into a response.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use countersign_store::Run;

use crate::run_id::RunId;
use crate::state::AppState;
use crate::ui::render::UiError;
use crate::ui::session::{self, Session};

/// Loads a run of a workspace the viewer may see.
pub async fn load_run(state: &AppState, ws: &str, run_id: &str) -> Result<Run, UiError> {
    if RunId::parse(run_id).is_err() {
        return Err(UiError::not_found("This run"));
    }
    state
        .store
        .get_run(ws, run_id)
        .await?
        .ok_or_else(|| UiError::not_found("This run"))
}

/// The session of this request and a run of a workspace it may see.
pub(super) async fn visible_run(
    state: &AppState,
    headers: &HeaderMap,
    ws: &str,
    run_id: &str,
) -> Result<(Session, Run), UiError> {
    let (s, _) = session::require_in(state, headers, ws).await?;
    let run = load_run(state, ws, run_id).await?;
    Ok((s, run))
}

pub(super) fn respond(r: Result<Response, UiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// The ids of the run's recorded approvers whose address is `email`.
fn ids_with_email<'a>(run: &'a Run, email: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    run.proposal
        .approval
        .iter()
        .flat_map(|a| a.approvers.iter())
        .filter(move |m| {
            m.email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
        })
        .map(|m| m.id.as_str())
}

/// The approver id under which `email` may answer `run`: one of the run's
/// recorded approvers with that address. None if there is none, or if any
/// entry with that address is the run's actor: the person who proved they
/// read this mailbox proposed the action, whatever id they answer under.
pub fn approver_id_for(run: &Run, email: &str) -> Option<String> {
    if ids_with_email(run, email).any(|id| countersign_store::is_actor(run, id)) {
        return None;
    }
    ids_with_email(run, email).next().map(str::to_owned)
}

/// Whether `email` is among a run's approvers (its actor or not).
pub fn listed_as(run: &Run, email: &str) -> bool {
    ids_with_email(run, email).next().is_some()
}
