//! Waking the delivery workers of every gate sharing one database when
//! deliveries are queued: PostgreSQL LISTEN/NOTIFY on one channel per
//! schema.
//!
//! A wake-up is only a hint that the outbox changed: a lost notification
//! (the connection dropped, the gate was restarting) costs latency, never a
//! delivery, because every worker still polls the outbox. That is why this
//! sits beside the store rather than inside its transactions: the gate
//! calls [`OutboxNotifier::queued`] after the write that queued deliveries
//! has committed, so a woken worker always finds them.
//!
//! One dedicated connection both listens and sends; it is reopened with
//! backoff when it fails, and every (re)connection wakes the local worker
//! once, since notifications sent while it was down were missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::StoreError;

/// First wait before reconnecting; doubled after each failure.
const RECONNECT_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// PostgreSQL's limit on an identifier (and so on a channel name), in bytes.
const MAX_IDENTIFIER: usize = 63;

/// What the notifier tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxWake {
    /// Some gate (this one included) queued deliveries.
    Notified,
    /// The connection is (again) listening: wake-ups sent while it was not
    /// were missed, so the outbox should be looked at.
    Listening,
    /// The connection failed; it is reopened after a pause.
    Lost(String),
}

/// Sends and receives outbox wake-ups for one database schema. Dropping it
/// closes its connection.
pub struct OutboxNotifier {
    pending: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for OutboxNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxNotifier").finish_non_exhaustive()
    }
}

impl OutboxNotifier {
    /// Starts listening on the database at `url`, for the outbox in
    /// `schema` (`None`: the connection's current schema, as the URL's
    /// `search_path` sets it). `on_wake` is called for every wake-up from
    /// any gate (this one included), after every (re)connection and when
    /// the connection fails (see [`OutboxWake`]). Must be
    /// called inside a tokio runtime; connecting happens in the background.
    pub fn start(
        url: &str,
        schema: Option<&str>,
        on_wake: impl Fn(OutboxWake) + Send + Sync + 'static,
    ) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::invalid(format!("bad postgres url: {e}")))?;
        if let Some(schema) = schema {
            config.options(format!("-c search_path={schema}"));
        }
        let pending = Arc::new(Notify::new());
        let task = tokio::spawn(run(config, Arc::clone(&pending), Arc::new(on_wake)));
        Ok(Self { pending, task })
    }

    /// Tells every listening gate that deliveries were queued. Returns at
    /// once; wake-ups asked for close together are sent as one.
    pub fn queued(&self) {
        self.pending.notify_one();
    }
}

impl Drop for OutboxNotifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The channel for the outbox in `schema`.
fn channel_name(schema: &str) -> String {
    let mut name = format!("countersign_outbox.{schema}");
    while name.len() > MAX_IDENTIFIER {
        name.pop();
    }
    name
}

/// Connects, listens and sends until the connection fails; then again,
/// after a growing pause.
async fn run(
    config: tokio_postgres::Config,
    pending: Arc<Notify>,
    on_wake: Arc<dyn Fn(OutboxWake) + Send + Sync>,
) {
    let mut pause = RECONNECT_FIRST;
    loop {
        match session(&config, &pending, &on_wake).await {
            Ok(()) => {
                on_wake(OutboxWake::Lost("the connection closed".to_owned()));
                pause = RECONNECT_FIRST;
            }
            Err(e) => on_wake(OutboxWake::Lost(e.to_string())),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

/// One connection's life: LISTEN, then send a NOTIFY for each batch of
/// wake-ups asked for, until the connection ends.
async fn session(
    config: &tokio_postgres::Config,
    pending: &Arc<Notify>,
    on_wake: &Arc<dyn Fn(OutboxWake) + Send + Sync>,
) -> Result<(), StoreError> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let closed = Arc::new(AtomicBool::new(false));
    // The connection must be polled for anything to happen on it, and its
    // messages are where notifications arrive.
    let driver = {
        let closed = Arc::clone(&closed);
        let pending = Arc::clone(pending);
        let on_wake = Arc::clone(on_wake);
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => on_wake(OutboxWake::Notified),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
            closed.store(true, Ordering::SeqCst);
            // Wakes the sending loop below so it sees the connection ended.
            pending.notify_one();
        })
    };
    let result = async {
        let row = client.query_one("SELECT current_schema()", &[]).await?;
        let schema: Option<String> = row.get(0);
        let channel = channel_name(schema.as_deref().unwrap_or("public"));
        client
            .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
            .await?;
        on_wake(OutboxWake::Listening);
        loop {
            pending.notified().await;
            if closed.load(Ordering::SeqCst) {
                return Ok(());
            }
            client
                .execute("SELECT pg_notify($1, '')", &[&channel])
                .await?;
        }
    }
    .await;
    drop(client);
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_an_identifier() {
        assert_eq!(channel_name("public"), "countersign_outbox.public");
        let long = "s".repeat(63);
        assert_eq!(channel_name(&long).len(), MAX_IDENTIFIER);
    }
}
