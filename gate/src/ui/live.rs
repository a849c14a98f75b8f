//! Live updates of the runs table: server-sent events.
//!
//! The stream follows the workspace's audit chain (the source of truth, so
//! it sees changes made by any gate sharing the database): it polls for
//! events after the last seq it sent and emits one `run` event per changed
//! run, with the run's row as JSON. The SSE id is the chain seq, so a
//! reconnecting browser resumes where it stopped (`Last-Event-ID`).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use countersign_store::{EventKind, Run, RunFilter};
use futures_util::stream;
use serde_json::json;
use std::sync::Arc;

use super::pages::parse_filter;
use super::render::{UiError, secure};
use super::session;
use super::view::RunRow;
use crate::state::AppState;

/// How often the chain is polled.
const POLL: Duration = Duration::from_millis(500);
/// A stream ends after this long; the browser reconnects (and the session
/// is checked again).
const MAX_STREAM: Duration = Duration::from_secs(15 * 60);
/// The session is re-checked every this many polls.
const RECHECK_EVERY: u32 = 20;
/// Events read per poll.
const BATCH: u32 = 200;
/// How far back a stream may start: older changes are on the page already.
const MAX_REPLAY: u64 = 1000;

struct Live {
    state: AppState,
    headers: HeaderMap,
    ws: String,
    after: u64,
    filter: RunFilter,
    queue: VecDeque<SseEvent>,
    started: Instant,
    polls: u32,
    /// Held for the stream's life: bounds concurrent streams.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Whether a run passes the page's filters.
fn matches(run: &Run, f: &RunFilter) -> bool {
    f.governance_status
        .is_none_or(|g| g == run.governance_status)
        && f.execution_status.is_none_or(|e| e == run.execution_status)
        && f.action.as_deref().is_none_or(|a| a == run.proposal.action)
        && f.actor
            .as_deref()
            .is_none_or(|a| Some(a) == run.proposal.actor.as_deref())
}

impl Live {
    /// Reads new events and queues one SSE event per changed run. Returns
    /// false when the stream should end.
    async fn poll(&mut self) -> bool {
        self.polls += 1;
        if self.polls.is_multiple_of(RECHECK_EVERY) {
            match session::current(&self.state, &self.headers).await {
                Ok(Some(s)) if s.workspace(&self.state, &self.ws).is_ok() => {}
                _ => return false,
            }
        }
        let Ok(events) = self.state.store.events(&self.ws, self.after, BATCH).await else {
            // A store hiccup: try again next poll.
            return true;
        };
        // The last seq and "new" flag per run, in first-seen order.
        let mut order: Vec<String> = Vec::new();
        let mut seen: HashMap<String, (u64, bool)> = HashMap::new();
        for e in &events {
            self.after = self.after.max(e.seq);
            let Some(run_id) = &e.run_id else { continue };
            let entry = seen.entry(run_id.clone()).or_insert_with(|| {
                order.push(run_id.clone());
                (e.seq, false)
            });
            entry.0 = e.seq;
            entry.1 |= e.kind == EventKind::RunProposed;
        }
        let now = self.state.clock.now();
        for run_id in order {
            let Some((seq, is_new)) = seen.get(&run_id).copied() else {
                continue;
            };
            let Ok(Some(run)) = self.state.store.get_run(&self.ws, &run_id).await else {
                continue;
            };
            let mut row = RunRow::new(
                &run,
                format!("/ui/w/{}/runs/{}", self.ws, run.proposal.run_id),
                now,
            );
            if let Some(w) = self.state.workspaces.get(&self.ws) {
                row = row.titled(&w.policies(), &run);
            }
            let data = json!({
                "row": row,
                "is_new": is_new,
                "matches": matches(&run, &self.filter),
            });
            if let Ok(ev) = SseEvent::default()
                .event("run")
                .id(seq.to_string())
                .json_data(data)
            {
                self.queue.push_back(ev);
            }
        }
        true
    }
}

/// `GET /ui/w/{ws}/live?after=SEQ&<filters>`: the runs table's event stream.
pub async fn live(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        session::require_in(&state, &headers, &ws).await?;
        let filter = parse_filter(&q)?;
        // A reconnect resumes after the last event the browser got.
        let after = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .or(q.get("after").map(String::as_str))
            .map(|v| v.parse::<u64>())
            .transpose()
            .map_err(|_| UiError::bad_form("`after` must be a chain seq."))?;
        let head = state.store.chain_head(&ws).await?.seq;
        let after = after
            .unwrap_or(head)
            .clamp(head.saturating_sub(MAX_REPLAY), head);
        let permit = Arc::clone(&state.live_streams)
            .try_acquire_owned()
            .map_err(|_| {
                UiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many live views",
                    "This gate serves as many live views as it can; reload the page in a moment.",
                )
            })?;
        let live = Live {
            state: state.clone(),
            headers: headers.clone(),
            ws,
            after,
            filter,
            queue: VecDeque::new(),
            started: Instant::now(),
            polls: 0,
            _permit: permit,
        };
        let events = stream::unfold((live, true), |(mut live, mut first)| async move {
            loop {
                if let Some(ev) = live.queue.pop_front() {
                    return Some((Ok::<_, Infallible>(ev), (live, first)));
                }
                // A stopping gate ends its streams, or it would wait for
                // every open dashboard tab to go away.
                if live.started.elapsed() > MAX_STREAM || live.state.shutdown.is_requested() {
                    return None;
                }
                if !first {
                    tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        () = live.state.shutdown.requested() => return None,
                    }
                }
                first = false;
                if !live.poll().await {
                    return None;
                }
            }
        });
        let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
        Ok::<_, UiError>(secure(sse.into_response()))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
