//! API keys: random secrets shown once, stored only as SHA-256 hashes.
//!
//! A key reads `csk_<key id>_<secret>`: the key id (8 hex digits) names the
//! key in listings and revocations, the secret is 256 random bits. Lookup is
//! by the hash of the whole key, so comparing secrets never happens in
//! variable time.

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
