//! The checkpoint signer's loop, beside the delivery worker: every
//! `audit.checkpoint_interval`, a checkpoint for each configured workspace
//! whose log grew, pushed to the workspace's webhooks.

use std::sync::Arc;
use std::time::Duration;

use countersign_store::StoredCheckpoint;

use super::CHECKPOINT_EVENT;
use crate::state::AppState;

/// Signs checkpoints for every configured workspace every
/// `audit.checkpoint_interval` while events arrive, and pushes each new one
/// to the workspace's webhooks. Ends when the gate is asked to stop,
/// between passes (a checkpoint is saved in one transaction and pushed
/// only after); the handle completes then.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.audit.checkpoint_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_size: std::collections::HashMap<String, u64> = Default::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = state.shutdown.requested() => return,
            }
            for ws in state.workspaces.keys() {
                if state.shutdown.is_requested() {
                    return;
                }
                pass(&state, ws, &mut last_size).await;
            }
        }
    })
}

async fn pass(
    state: &AppState,
    workspace: &str,
    last_size: &mut std::collections::HashMap<String, u64>,
) {
    let signed = match state
        .checkpoints
        .advance(state.store.as_ref(), workspace, state.clock.now())
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) if e.is_tampering() => {
            tracing::error!(workspace, error = %e, "audit log check failed: no checkpoint signed");
            return;
        }
        Err(e) => {
            tracing::warn!(workspace, error = %e, "cannot sign a checkpoint");
            return;
        }
    };
    let before = last_size.insert(workspace.to_owned(), signed.size);
    if before == Some(signed.size) || !state.config.audit.push_checkpoints {
        return;
    }
    push(state, &signed).await;
}

/// How long one checkpoint push may take per webhook.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

async fn push(state: &AppState, checkpoint: &StoredCheckpoint) {
    let Some(hooks) = state.channels.workspace_hooks.get(&checkpoint.workspace) else {
        return;
    };
    let id = format!("cp_{}_{}", checkpoint.workspace, checkpoint.size);
    let data = serde_json::json!({
        "workspace": checkpoint.workspace,
        "origin": state.checkpoints.origin(&checkpoint.workspace),
        "size": checkpoint.size,
        "checkpoint": checkpoint.note,
    });
    for hook in hooks {
        let hook = Arc::clone(hook);
        let sent = tokio::time::timeout(
            PUSH_TIMEOUT,
            // The receiver checks the timestamp against its own clock, as
            // for approval requests: real time, not the gate's test clock.
            hook.send_event(&id, CHECKPOINT_EVENT, data.clone(), chrono::Utc::now()),
        )
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(webhook = hook.name(), error = %e.message(), "checkpoint push failed")
            }
            Err(_) => tracing::warn!(webhook = hook.name(), "checkpoint push timed out"),
        }
    }
}
