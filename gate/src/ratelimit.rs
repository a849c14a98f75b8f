//! Rate limits, in memory (one gate process): a token bucket per API key (a
//! key that runs dry gets 429 with Retry-After), and [`SignInLimiter`], the
//! sliding-window caps on emailed sign-in links per client and address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimit;

/// Per-key token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Buckets refilled at `limit.per_second`, holding at most `limit.burst`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` to wait when there is none.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        // A poisoned lock still holds valid buckets: keep limiting.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let burst = f64::from(self.limit.burst);
        let rate = f64::from(self.limit.per_second);
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

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
    fn a_burst_then_refusal_per_key() {
        let l = RateLimiter::new(RateLimit {
            per_second: 1,
            burst: 3,
        });
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        assert_eq!(l.check("a"), Err(1));
        assert!(l.check("b").is_ok(), "keys have their own buckets");
    }

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
