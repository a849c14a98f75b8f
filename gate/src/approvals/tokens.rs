//! Approval tokens: 256 bits, derived from a server secret and the delivery
//! id, stored only as a SHA-256 hash.
//!
//! Deriving the token (HMAC-SHA256 of the delivery id) lets the delivery
//! worker rebuild a link after a restart without the database ever holding a
//! usable token: reading the database gives hashes only.
//!
//! A token reads `DELIVERY_ID.MAC`: the delivery id in clear, then the 43
//! URL-safe characters of the MAC. The store looks tokens up by
//! `DELIVERY_ID.SHA256(token)` ([`approval_token_key`]): the SQLite store
//! keeps such a key in the delivery's own row and finds it through the
//! delivery id, so a token costs no index entry of its own (with random
//! keys, token index inserts were once more than half the pages written
//! under load). The delivery id is not a secret; the MAC is. Tokens of the
//! first format (the MAC alone) are still accepted, looked up by their bare
//! hash.

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

    /// The token of a delivery: its id, a dot, and the URL-safe base64 of
    /// the 32-byte MAC of the id.
    pub fn token_for(&self, delivery_id: &str) -> String {
        format!("{delivery_id}.{}", self.delivery_mac(delivery_id))
    }

    /// The token to put in a delivery's links, given the key the store
    /// holds for it (`stored_key`): a delivery planned before tokens carried
    /// their delivery id is stored under the bare hash of the MAC, so its
    /// links (retries, escalations sent after an upgrade) keep the MAC
    /// alone; every other delivery gets [`Self::token_for`].
    pub fn token_for_stored(&self, delivery_id: &str, stored_key: Option<&str>) -> String {
        match stored_key {
            Some(key) if !key.contains('.') => self.delivery_mac(delivery_id),
            _ => self.token_for(delivery_id),
        }
    }

    /// The MAC part of a delivery's token (the whole token of the first
    /// format).
    fn delivery_mac(&self, delivery_id: &str) -> String {
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

/// The delivery id of a `DELIVERY_ID.MAC` approval token, if it has that
/// shape (an id of 1–64 letters, digits and `_`, then a well-formed MAC).
fn delivery_part(token: &str) -> Option<&str> {
    let (id, mac) = token.split_once('.')?;
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (id_ok && well_formed(mac)).then_some(id)
}

/// Whether a presented approval token has either accepted shape, checked
/// before any lookup.
pub fn approval_token_well_formed(token: &str) -> bool {
    well_formed(token) || delivery_part(token).is_some()
}

/// What the store keeps of an approval token, and looks it up by:
/// `DELIVERY_ID.SHA256(token)`, or the bare hash for a token of the first
/// format.
pub fn approval_token_key(token: &str) -> String {
    match delivery_part(token) {
        Some(id) => format!("{id}.{}", token_hash(token)),
        None => token_hash(token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_tokens_carry_their_delivery_id_and_are_keyed_by_it() {
        let a = TokenSecret::from_bytes([1; 32]);
        let t = a.token_for("dlv_0193ab");
        let (id, mac) = t.split_once('.').unwrap();
        assert_eq!(id, "dlv_0193ab");
        assert!(well_formed(mac));
        assert!(approval_token_well_formed(&t));
        let key = approval_token_key(&t);
        assert_eq!(key, format!("dlv_0193ab.{}", token_hash(&t)));
        // Keys of later deliveries sort after earlier ones.
        assert!(approval_token_key(&a.token_for("dlv_0193ac")) > key);
        // A token of the first format (the MAC alone) keeps its bare hash.
        assert!(approval_token_well_formed(mac));
        assert_eq!(approval_token_key(mac), token_hash(mac));
        // Links of a delivery stored under a first-format key keep that
        // format, so they still find it; other deliveries get the new one.
        let legacy = a.token_for_stored("dlv_0193ab", Some(&token_hash(mac)));
        assert_eq!(legacy, mac);
        assert_eq!(approval_token_key(&legacy), token_hash(mac));
        assert_eq!(a.token_for_stored("dlv_0193ab", Some(&key)), t);
        assert_eq!(a.token_for_stored("dlv_0193ab", None), t);
        // Anything else is refused before a lookup.
        for bad in [
            "",
            ".",
            "dlv.short",
            &format!(".{mac}"),
            &format!("dlv-x.{mac}"),
            &format!("{}.{mac}", "d".repeat(65)),
            &format!("dlv.{mac}x"),
        ] {
            assert!(!approval_token_well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_are_derived_per_delivery_and_unguessable_without_the_secret() {
        let a = TokenSecret::from_bytes([1; 32]);
        let b = TokenSecret::from_bytes([2; 32]);
        let t = a.token_for("d1");
        assert!(approval_token_well_formed(&t), "{t}");
        assert_eq!(t, a.token_for("d1"), "stable across restarts");
        let mac = |t: String| t.split_once('.').map(|(_, m)| m.to_owned()).unwrap();
        assert_ne!(mac(t.clone()), mac(a.token_for("d2")), "a MAC per delivery");
        assert_ne!(mac(t.clone()), mac(b.token_for("d1")), "a MAC per secret");
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
