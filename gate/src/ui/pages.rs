//! The workspace pages, one module each: overview, runs, run detail,
//! receipt, policies; and what they share (loading a run the viewer may
//! see, and who may answer it).

mod overview;
mod policies;
mod receipt;
mod run;
mod runs;

pub use overview::overview;
pub use policies::policies;
pub use receipt::{receipt, receipt_download, receipt_json, receipt_page};
pub use run::run_detail;
pub use runs::{filter_query, parse_filter, runs};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use countersign_store::Run;

use super::render::{UiError, see_other};
use super::session::{self, Session};
use crate::run_id::RunId;
use crate::state::AppState;

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
async fn visible_run(
    state: &AppState,
    headers: &HeaderMap,
    ws: &str,
    run_id: &str,
) -> Result<(Session, Run), UiError> {
    let (s, _) = session::require_in(state, headers, ws).await?;
    let run = load_run(state, ws, run_id).await?;
    Ok((s, run))
}

fn respond(r: Result<Response, UiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /ui`: where a visitor starts.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(
        async {
            Ok(match session::current(&state, &headers).await? {
                None => see_other("/ui/login"),
                Some(s) => match &s.viewer {
                    session::Viewer::Admin { workspace, .. } => {
                        see_other(&format!("/ui/w/{workspace}"))
                    }
                    session::Viewer::Approver { .. } => see_other("/ui/inbox"),
                },
            })
        }
        .await,
    )
}

/// The ids of the run's recorded approvers whose address is `email`.
fn ids_with_email<'a>(run: &'a Run, email: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    run.approval
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
