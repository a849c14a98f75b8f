//! Approval tokens: 256 bits, derived from a server secret and the delivery
//! id, stored only as a SHA-256 hash.
//!
//! Deriving the token (HMAC-SHA256 of the delivery id) lets the delivery
//! worker rebuild a link after a restart without the database ever holding a
//! usable token: reading the `approval_tokens` table gives hashes only.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// File name of the secret inside the data directory.
pub const SECRET_FILE: &str = "approval-token-secret";

/// The server secret tokens are derived from.
pub struct TokenSecret([u8; 32]);

impl TokenSecret {
    /// Loads the secret from `data_dir`, creating it (mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, String> {
        let path = data_dir.join(SECRET_FILE);
        if path.exists() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let bytes: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("{}: expected 64 hex digits", path.display()))?;
            return Ok(Self(bytes));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let mut bytes = [0u8; 32];
        crate::keys::random_bytes(&mut bytes)?;
        crate::receipts::write_private_file(&path, &hex::encode(bytes))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self(bytes))
    }

    /// A secret from bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The token of a delivery: URL-safe base64 of 32 bytes.
    pub fn token_for(&self, delivery_id: &str) -> String {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            // INVARIANT: HMAC accepts keys of any length.
            Err(_) => return String::new(),
        };
        mac.update(b"countersign approval token v1\0");
        mac.update(delivery_id.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

impl TokenSecret {
    /// A keyed MAC of `input` for one `purpose` (dashboard CSRF tokens),
    /// URL-safe base64. Different purposes never give the same value.
    pub fn mac(&self, purpose: &str, input: &str) -> String {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            // INVARIANT: HMAC accepts keys of any length.
            Err(_) => return String::new(),
        };
        mac.update(b"countersign mac v1\0");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(input.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a presented token has the right shape (43 URL-safe characters),
/// checked before any lookup.
pub fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_derived_per_delivery_and_unguessable_without_the_secret() {
        let a = TokenSecret::from_bytes([1; 32]);
        let b = TokenSecret::from_bytes([2; 32]);
        let t = a.token_for("d1");
        assert!(well_formed(&t), "{t}");
        assert_eq!(t, a.token_for("d1"), "stable across restarts");
        assert_ne!(t, a.token_for("d2"));
        assert_ne!(t, b.token_for("d1"));
        assert_eq!(token_hash(&t).len(), 64);
        assert!(!well_formed("short"));
        assert!(!well_formed(
            &"x".repeat(42)
                .replace('x', "/")
                .chars()
                .chain(['a'])
                .collect::<String>()
        ));
    }
}
