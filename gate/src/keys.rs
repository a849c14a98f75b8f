//! API keys: random secrets shown once, stored only as SHA-256 hashes.
//!
//! A key reads `csk_<key id>_<secret>`: the key id (8 hex digits) names the
//! key in listings and revocations, the secret is 256 random bits. Lookup is
//! by the hash of the whole key, so comparing secrets never happens in
//! variable time. [`KeyCache`] keeps recently verified keys for
//! [`KEY_CACHE_TTL`] (see `auth`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use countersign_store::ApiKeyRecord;
use sha2::{Digest, Sha256};

/// A newly generated key.
pub struct NewKey {
    /// Public identifier.
    pub key_id: String,
    /// The full key, to print once.
    pub secret: String,
    /// What the store keeps.
    pub hash: String,
}

/// Fills `buf` from the operating system's random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("no randomness available: {e}"))
}

/// Generates a new key.
pub fn generate() -> Result<NewKey, String> {
    let mut id = [0u8; 4];
    let mut secret = [0u8; 32];
    random_bytes(&mut id)?;
    random_bytes(&mut secret)?;
    let key_id = hex::encode(id);
    let secret = format!("csk_{key_id}_{}", hex::encode(secret));
    let hash = hash_key(&secret);
    Ok(NewKey {
        key_id,
        secret,
        hash,
    })
}

/// SHA-256 of a presented key, as stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// How long a verified key is accepted without asking the store again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Most keys cached at once; the cache is emptied when it is full.
const KEY_CACHE_MAX: usize = 4096;

/// Recently verified, unrevoked keys by the hash of their secret.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (ApiKeyRecord, Instant)>>,
}

impl KeyCache {
    /// The key with this hash if it was verified less than
    /// [`KEY_CACHE_TTL`] before `now`.
    pub(crate) fn get(&self, key_hash: &str, now: Instant) -> Option<ApiKeyRecord> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(key_hash) {
            Some((record, at)) if now.duration_since(*at) < KEY_CACHE_TTL => Some(record.clone()),
            Some(_) => {
                entries.remove(key_hash);
                None
            }
            None => None,
        }
    }

    /// Remembers a key just read from the store (unrevoked keys only).
    pub(crate) fn put(&self, key_hash: String, record: &ApiKeyRecord, now: Instant) {
        if record.revoked_at.is_some() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key_hash, (record.clone(), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_only_their_hash_is_kept() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(&format!("csk_{}_", a.key_id)));
        assert_eq!(a.secret.len(), 4 + 8 + 1 + 64);
        assert_eq!(a.hash, hash_key(&a.secret));
        assert!(!a.hash.contains(&a.secret[13..]));
    }
}
