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
/// - each source (a client IPv4 address, or IPv6 /64) may ask
///   [`SignInLimiter::PER_CLIENT`] times per window (known address or not);
/// - each (address, source) pair gets [`SignInLimiter::PER_PAIR`] emails;
/// - each address has a shared pool of [`SignInLimiter::PER_ADDRESS`]
///   emails, and the gate one of [`SignInLimiter::TOTAL`];
/// - and a reserve that strangers cannot spend: a source's first email for
///   an address in the window is sent even when the pools are spent.
///
/// Why the reserve: with pools alone, a few sources asking for someone
/// else's address used up that address's emails and locked its owner out
/// of the dashboard for the window. Now the owner's own request (from a
/// source that has not asked for them yet) always gets a link, whatever
/// others asked. The price is that a stranger with many source addresses
/// can send one email per source and address beyond the pools; each source
/// is still capped at [`SignInLimiter::PER_CLIENT`] requests.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    seen: std::sync::Mutex<std::collections::HashMap<String, Vec<std::time::Instant>>>,
}

/// The key a client address is limited under: an IPv4 address as is, an
/// IPv6 address by its /64 (one site's or host's usual allocation, so
/// hopping through its addresses gains nothing).
fn source(client: &str) -> String {
    match client.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(a)) if a.to_ipv4_mapped().is_none() => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(a)) => a
            .to_ipv4_mapped()
            .map_or_else(|| client.to_owned(), |v4| v4.to_string()),
        _ => client.to_owned(),
    }
}

impl SignInLimiter {
    /// Requests per source per window.
    pub const PER_CLIENT: usize = 10;
    /// Emails per (address, source) per window.
    pub const PER_PAIR: usize = 3;
    /// The shared pool of emails per address per window.
    pub const PER_ADDRESS: usize = 10;
    /// The shared pool of emails per window for the whole gate.
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
        let client = source(client);
        self.with(|seen, now| {
            let times = seen.entry(format!("client {client}")).or_default();
            if times.len() >= Self::PER_CLIENT {
                return false;
            }
            times.push(now);
            true
        })
    }

    /// Takes one email to `address` asked by `client` if the limits allow
    /// it: the pair's own cap always; the shared pools, unless this is the
    /// pair's first email of the window (the reserve).
    pub fn allow_email(&self, address: &str, client: &str) -> bool {
        let client = source(client);
        self.with(|seen, now| {
            let count = |k: &str| seen.get(k).map_or(0, Vec::len);
            let (pair, addr, total) = (
                format!("pair {address} {client}"),
                format!("address {address}"),
                "total".to_owned(),
            );
            let asked = count(&pair);
            if asked >= Self::PER_PAIR {
                return false;
            }
            let pooled = count(&addr) < Self::PER_ADDRESS && count(&total) < Self::TOTAL;
            if !pooled && asked > 0 {
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
        // Ten sources asking twice each: the first round fills the
        // address's pool, the second finds it spent.
        let sent = (0..2)
            .flat_map(|_| 0..10)
            .filter(|i| l.allow_email("bob@x", &format!("10.0.0.{i}")))
            .count();
        assert_eq!(sent, SignInLimiter::PER_ADDRESS);
        let asked = (0..50).filter(|_| l.allow_request("10.9.9.9")).count();
        assert_eq!(asked, SignInLimiter::PER_CLIENT);
        // An IPv6 client is one source per /64.
        let asked = (0..50)
            .filter(|i| l.allow_request(&format!("2001:db8:1:2::{i:x}")))
            .count();
        assert_eq!(asked, SignInLimiter::PER_CLIENT);
    }

    /// Regression: four sources asking three times each used up an
    /// address's ten links, and its owner could not sign in for 15 minutes.
    #[test]
    fn strangers_cannot_jam_an_approvers_sign_in() {
        let l = SignInLimiter::default();
        for i in 1..=4 {
            for _ in 0..3 {
                l.allow_email("alice@x", &format!("203.0.113.{i}"));
            }
        }
        assert!(
            !l.allow_email("alice@x", "203.0.113.4"),
            "the pool is spent for the strangers"
        );
        assert!(
            l.allow_email("alice@x", "198.51.100.7"),
            "alice's own first request still gets a link"
        );
        assert!(
            !l.allow_email("alice@x", "198.51.100.7"),
            "the reserve is one link per source"
        );
    }
}
