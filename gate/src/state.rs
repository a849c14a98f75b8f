//! What every request handler shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use countersign_store::Store;

use crate::approvals::channels::Channels;
use crate::approvals::tokens::TokenSecret;
use crate::auth::KeyCache;
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
}

/// Most dashboard live streams open at once on one gate.
pub const MAX_LIVE_STREAMS: usize = 256;

/// Limits dashboard sign-in requests and emails, so the form can be used
/// neither to flood an approver's inbox nor to lock them out:
/// - each client address may ask [`SignInLimiter::PER_CLIENT`] times per
///   window (known address or not);
/// - each (address, client) pair gets [`SignInLimiter::PER_PAIR`] emails,
///   so one stranger cannot use up an approver's own budget;
/// - each address gets at most [`SignInLimiter::PER_ADDRESS`] emails in all,
///   and the gate [`SignInLimiter::TOTAL`].
#[derive(Debug, Default)]
pub struct SignInLimiter {
    seen: std::sync::Mutex<std::collections::HashMap<String, Vec<std::time::Instant>>>,
}

impl SignInLimiter {
    /// Requests per client address per window.
    pub const PER_CLIENT: usize = 10;
    /// Emails per (address, client) per window.
    pub const PER_PAIR: usize = 3;
    /// Emails per address per window.
    pub const PER_ADDRESS: usize = 10;
    /// Emails per window for the whole gate.
    pub const TOTAL: usize = 200;
    /// The window.
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

    fn with<T>(
        &self,
        f: impl FnOnce(
            &mut std::collections::HashMap<String, Vec<std::time::Instant>>,
            std::time::Instant,
        ) -> T,
    ) -> T {
        let now = std::time::Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < Self::WINDOW);
            !times.is_empty()
        });
        f(&mut seen, now)
    }

    /// Counts one sign-in request from `client`; false once it asked too often.
    pub fn allow_request(&self, client: &str) -> bool {
        self.with(|seen, now| {
            let times = seen.entry(format!("client {client}")).or_default();
            if times.len() >= Self::PER_CLIENT {
                return false;
            }
            times.push(now);
            true
        })
    }

    /// Takes one email to `address` asked by `client` if every limit allows it.
    pub fn allow_email(&self, address: &str, client: &str) -> bool {
        self.with(|seen, now| {
            let count = |k: &str| seen.get(k).map_or(0, Vec::len);
            let (pair, addr, total) = (
                format!("pair {address} {client}"),
                format!("address {address}"),
                "total".to_owned(),
            );
            if count(&pair) >= Self::PER_PAIR
                || count(&addr) >= Self::PER_ADDRESS
                || count(&total) >= Self::TOTAL
            {
                return false;
            }
            for k in [pair, addr, total] {
                seen.entry(k).or_default().push(now);
            }
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stranger_cannot_use_up_an_approvers_budget() {
        let l = SignInLimiter::default();
        for _ in 0..SignInLimiter::PER_PAIR {
            assert!(l.allow_email("alice@x", "203.0.113.9"));
        }
        assert!(
            !l.allow_email("alice@x", "203.0.113.9"),
            "the stranger is cut off"
        );
        assert!(
            l.allow_email("alice@x", "198.51.100.1"),
            "alice still gets her link"
        );
    }

    #[test]
    fn an_address_and_a_client_are_capped() {
        let l = SignInLimiter::default();
        let sent = (0..50)
            .filter(|i| l.allow_email("bob@x", &format!("10.0.0.{i}")))
            .count();
        assert_eq!(sent, SignInLimiter::PER_ADDRESS);
        let asked = (0..50).filter(|_| l.allow_request("10.9.9.9")).count();
        assert_eq!(asked, SignInLimiter::PER_CLIENT);
    }
}
