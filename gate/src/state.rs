//! What every request handler shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use countersign_store::Store;

use crate::approvals::channels::Channels;
use crate::approvals::tokens::TokenSecret;
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::receipts::ReceiptSigner;
use crate::workspace::Workspace;

/// Shared state of the gate, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The audit store.
    pub store: Arc<dyn Store>,
    /// Workspaces by name.
    pub workspaces: Arc<BTreeMap<String, Arc<Workspace>>>,
    /// Signs receipts.
    pub signer: Arc<ReceiptSigner>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Per-key rate limits.
    pub limiter: Arc<RateLimiter>,
    /// The approval transports.
    pub channels: Arc<Channels>,
    /// Derives approval tokens.
    pub token_secret: Arc<TokenSecret>,
    /// Limits how many dashboard sign-in emails an address receives.
    pub sign_in_limiter: Arc<SignInLimiter>,
}

/// Limits dashboard sign-in emails: a few per address per window, and a
/// ceiling for the whole gate, so the form cannot be used to flood inboxes.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    sent: std::sync::Mutex<std::collections::HashMap<String, Vec<std::time::Instant>>>,
}

impl SignInLimiter {
    /// Emails per address per window.
    pub const PER_ADDRESS: usize = 3;
    /// Emails per window for the whole gate.
    pub const TOTAL: usize = 200;
    /// The window.
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

    /// Takes one send for `address` if both limits allow it.
    pub fn allow(&self, address: &str) -> bool {
        let now = std::time::Instant::now();
        let mut sent = self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sent.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < Self::WINDOW);
            !times.is_empty()
        });
        let total: usize = sent.values().map(Vec::len).sum();
        let mine = sent.get(address).map_or(0, Vec::len);
        if total >= Self::TOTAL || mine >= Self::PER_ADDRESS {
            return false;
        }
        sent.entry(address.to_owned()).or_default().push(now);
        true
    }
}
