//! The audit log's MAC key: 32 random bytes kept outside the database (the
//! gate's key file or environment), with which every event is authenticated.
//!
//! `mac = HMAC-SHA256(key, "countersign audit event v1\0" || body)`, where
//! `body` is the event's canonical bytes ([`crate::event_leaf_data`]: the
//! canonical JSON object the hash chain hashes, also the Merkle leaf data).
//! The prefix keeps this MAC from ever being taken for another use of the
//! same key. Stored as 64 lowercase hex characters in `events.mac`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use miette::Diagnostic;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Domain separation prefix of an event's MAC.
pub const EVENT_MAC_PREFIX: &[u8] = b"countersign audit event v1\0";

/// Length of a [`LogKey`] in bytes.
pub const LOG_KEY_LEN: usize = 32;

/// Why a log key could not be made.
#[derive(Debug, Clone, Error, Diagnostic)]
pub enum LogKeyError {
    /// The text is not 32 bytes in the expected encoding.
    #[error("audit log key: expected 32 bytes as {encoding}")]
    #[diagnostic(
        code(countersign::store::log_key_format),
        help("generate one with LogKey::generate and keep its to_hex() form")
    )]
    Format {
        /// "64 hex digits" or "base64".
        encoding: &'static str,
    },
    /// The system gave no randomness.
    #[error("audit log key: no randomness available: {message}")]
    #[diagnostic(code(countersign::store::log_key_random))]
    Random {
        /// The system's message.
        message: String,
    },
}

/// The key every event's MAC is made with. Never stored in the database;
/// the same for every gate of a deployment. Its `Debug` hides the bytes.
#[derive(Clone)]
pub struct LogKey([u8; LOG_KEY_LEN]);

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogKey(..)")
    }
}

impl PartialEq for LogKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for LogKey {}

impl LogKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, LogKeyError> {
        let mut bytes = [0u8; LOG_KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| LogKeyError::Random {
            message: e.to_string(),
        })?;
        Ok(Self(bytes))
    }

    /// A key from its bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; LOG_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; LOG_KEY_LEN] {
        &self.0
    }

    /// A key from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, LogKeyError> {
        hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; LOG_KEY_LEN]>::try_from(b).ok())
            .map(Self)
            .ok_or(LogKeyError::Format {
                encoding: "64 hex digits",
            })
    }

    /// The key as 64 lowercase hex digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A key from standard base64 with padding (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, LogKeyError> {
        STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| <[u8; LOG_KEY_LEN]>::try_from(b).ok())
            .map(Self)
            .ok_or(LogKeyError::Format { encoding: "base64" })
    }

    /// The key as standard base64 with padding.
    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The MAC of an event whose canonical bytes are `body`.
    #[must_use]
    pub fn event_mac(&self, body: &[u8]) -> [u8; 32] {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            // INVARIANT: HMAC accepts keys of any length.
            Err(_) => return [0; 32],
        };
        mac.update(EVENT_MAC_PREFIX);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The MAC of `body` as stored: 64 lowercase hex characters.
    #[must_use]
    pub fn event_mac_hex(&self, body: &[u8]) -> String {
        hex::encode(self.event_mac(body))
    }

    /// Whether `stored` (hex, as in `events.mac`) is the MAC of `body`,
    /// compared in constant time.
    #[must_use]
    pub fn check_event_mac(&self, body: &[u8], stored: &str) -> bool {
        let Ok(bytes) = hex::decode(stored) else {
            return false;
        };
        bytes.len() == 32 && bool::from(self.event_mac(body).as_slice().ct_eq(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip_and_reject_bad_lengths() {
        let key = LogKey::generate().unwrap();
        assert_eq!(LogKey::from_hex(&key.to_hex()).unwrap(), key);
        assert_eq!(LogKey::from_base64(&key.to_base64()).unwrap(), key);
        assert!(LogKey::from_hex("abcd").is_err());
        assert!(LogKey::from_base64("abcd").is_err());
        assert_eq!(format!("{key:?}"), "LogKey(..)");
    }

    #[test]
    fn mac_is_hmac_sha256_of_prefix_and_body() {
        let key = LogKey::from_bytes([7; 32]);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"countersign audit event v1\0{}");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(key.event_mac_hex(b"{}"), expected);
        assert!(key.check_event_mac(b"{}", &expected));
        assert!(!key.check_event_mac(b"{} ", &expected));
        assert!(!LogKey::from_bytes([8; 32]).check_event_mac(b"{}", &expected));
        assert!(!key.check_event_mac(b"{}", "zz"));
    }
}
