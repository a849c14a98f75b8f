//! Waking the delivery worker when the outbox is written, so an approval
//! request goes out as soon as its run is recorded instead of at the next
//! poll. The worker still polls: a wake-up is a hint, and deliveries that
//! fall due later (retries, escalations) are found by polling.
//!
//! On PostgreSQL the wake-up also reaches the workers of the other gates
//! sharing the database (LISTEN/NOTIFY, see
//! [`countersign_store::OutboxNotifier`]): whichever gate claims the
//! delivery first sends it.

use std::sync::{Arc, OnceLock};

use countersign_store::{OutboxNotifier, OutboxWake, StoreError};
use tokio::sync::Notify;

/// The outbox's doorbell, shared by the paths that queue deliveries and
/// the worker that sends them.
#[derive(Debug, Default)]
pub struct OutboxBell {
    local: Arc<Notify>,
    remote: OnceLock<OutboxNotifier>,
}

impl OutboxBell {
    /// Deliveries were queued (and committed): wake this gate's worker and,
    /// on PostgreSQL, every other gate's.
    pub fn queued(&self) {
        self.local.notify_one();
        if let Some(remote) = self.remote.get() {
            remote.queued();
        }
    }

    /// Completes at the next wake-up; one rung while nobody waited is kept
    /// for the next wait, so none is lost between two passes.
    pub async fn rung(&self) {
        self.local.notified().await;
    }

    /// Also rings for (and rings) the other gates on the PostgreSQL
    /// database at `url`, outbox in `schema` (`None`: the URL's search
    /// path). A second call changes nothing.
    pub fn connect_postgres(&self, url: &str, schema: Option<&str>) -> Result<(), StoreError> {
        if self.remote.get().is_some() {
            return Ok(());
        }
        let local = Arc::clone(&self.local);
        let notifier = OutboxNotifier::start(url, schema, move |wake| match wake {
            OutboxWake::Notified | OutboxWake::Listening => local.notify_one(),
            OutboxWake::Lost(e) => {
                tracing::warn!(error = %e, "outbox notifications lost; polling until reconnected");
            }
        })?;
        // Lost race with another caller: theirs is kept, this one dropped.
        let _ = self.remote.set(notifier);
        Ok(())
    }
}
