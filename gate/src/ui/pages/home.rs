//! `/ui`: where a visitor starts, sent on by who they are.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::common::respond;
use crate::state::AppState;
use crate::ui::render::see_other;
use crate::ui::session;

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
