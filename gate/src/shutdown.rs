//! Stopping the gate: one signal every long-lived task watches.
//!
//! The first SIGTERM or Ctrl-C asks everything to stop: the accept loop
//! stops taking connections, open connections finish the request in hand
//! and close, dashboard live streams end, the delivery worker stops between
//! sends. What is still running after the grace period is dropped. A second
//! Ctrl-C (or SIGTERM) ends the process at once.

use tokio::sync::watch;

/// A stop request, shared by every task that must end when the gate stops.
/// Cheap to clone; every clone sees the same request.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    /// Asks every watcher to stop. Asking twice changes nothing.
    pub fn request(&self) {
        self.tx.send_replace(true);
    }

    /// Whether a stop was asked for.
    #[must_use]
    pub fn is_requested(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once a stop is asked for (at once if it already was).
    pub async fn requested(&self) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which cannot happen while
        // `self` holds it; either way there is nothing left to wait for.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Exit status of a gate stopped by a second signal: 128 + SIGINT, as a
/// shell reports a process ended by Ctrl-C.
pub const FORCED_EXIT_STATUS: i32 = 130;

/// Waits for SIGTERM or Ctrl-C, asks `shutdown` to stop, then waits for a
/// second signal and ends the process at once (the operator insists).
pub async fn watch_signals(shutdown: Shutdown) {
    let mut signals = Signals::new();
    signals.next().await;
    tracing::info!("shutting down: finishing requests in hand (press Ctrl-C again to stop now)");
    shutdown.request();
    signals.next().await;
    tracing::warn!("second stop signal: exiting now");
    std::process::exit(FORCED_EXIT_STATUS);
}

/// SIGINT and SIGTERM, listened to from the start so a second signal that
/// follows the first closely is not missed.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .map_err(|e| tracing::warn!(error = %e, "cannot listen for stop signals"))
                .ok();
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next SIGINT or SIGTERM; never, if they cannot be listened to.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.streams {
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            return;
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_ok() {
            return;
        }
        std::future::pending::<()>().await;
    }
}
