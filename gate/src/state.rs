//! What every request handler shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use countersign_store::Store;

use crate::approvals::channels::Channels;
use crate::approvals::tokens::TokenSecret;
use crate::approvals::wake::OutboxBell;
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::KeyCache;
use crate::metrics::Metrics;
use crate::ratelimit::{RateLimiter, SignInLimiter};
use crate::receipts::ReceiptSigner;
use crate::shutdown::Shutdown;
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
    /// Signs the audit log's checkpoints (with the receipt key).
    pub checkpoints: Arc<crate::checkpoints::Checkpointer>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Recently verified API keys.
    pub keys: Arc<KeyCache>,
    /// Per-key rate limits.
    pub limiter: Arc<RateLimiter>,
    /// The approval transports.
    pub channels: Arc<Channels>,
    /// Derives approval tokens.
    pub token_secret: Arc<TokenSecret>,
    /// Limits how many dashboard sign-in emails an address receives.
    pub sign_in_limiter: Arc<SignInLimiter>,
    /// Bounds the dashboard's concurrent live streams.
    pub live_streams: Arc<tokio::sync::Semaphore>,
    /// Wakes the delivery worker when deliveries are queued.
    pub outbox: Arc<OutboxBell>,
    /// Asked when the gate is stopping: long-lived tasks and streams end.
    pub shutdown: Shutdown,
}

/// Most dashboard live streams open at once on one gate.
pub const MAX_LIVE_STREAMS: usize = 256;
