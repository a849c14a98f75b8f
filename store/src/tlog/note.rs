//! C2SP `signed-note` (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! # Format
//! A signed note is UTF-8 text with no control character below U+0020 other
//! than newline (U+000A):
//!
//! ```text
//! <text: one or more lines, each ending in "\n">
//! "\n"                                   (one blank line)
//! "— " <key name> " " <base64(key id || signature)> "\n"   (one or more)
//! ```
//!
//! The dash is the em dash U+2014. The text ends at the *last* blank line
//! and includes its final newline; the signature is computed over exactly
//! those bytes. A key name is non-empty and contains no Unicode space and no
//! `+`. The key id is 4 bytes, big-endian `u32`:
//! `SHA-256(name || 0x0A || 0x01 || 32-byte Ed25519 public key)[0..4]`.
//! base64 is standard padded base64 (RFC 4648 §4); non-canonical encodings
//! are rejected.
//!
//! # Key strings
//! - verifier key: `<name>+<key id as 8 lower-case hex digits>+<base64(0x01 || public key)>`
//! - signer key: `PRIVATE+KEY+<name>+<key id as 8 lower-case hex digits>+<base64(0x01 || 32-byte Ed25519 seed)>`
//!
//! These are the strings of Go's `golang.org/x/mod/sumdb/note`, so keys move
//! between that tooling and ours.
//!
//! # Opening
//! A signature whose (name, key id) matches no verifier key is ignored. One
//! that matches must verify, or the whole note is rejected. At least one
//! signature must be from a known key. At most [`MAX_NOTE_SIGNATURES`]
//! signature lines are accepted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::err::{KeyError, NoteError};

/// Signature type byte of Ed25519 in signed notes and key strings.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;

/// Largest number of signature lines a note may have (the spec asks for at
/// least 16; Go's implementation allows 100).
pub const MAX_NOTE_SIGNATURES: usize = 100;

const SIGNATURE_PREFIX: &str = "\u{2014} ";
const SIGNER_PREFIX: &str = "PRIVATE+KEY+";

/// The key id of an Ed25519 key named `name`:
/// `SHA-256(name || 0x0A || 0x01 || public key)[0..4]` read as big-endian.
pub fn key_id(name: &str, public_key: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519_SIGNATURE_TYPE]);
    h.update(public_key.as_bytes());
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < ' ')
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(KeyError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Splits `<name>+<8 hex>+<base64(0x01 || 32 bytes)>` and checks its shape.
fn split_key(s: &str) -> Result<(&str, u32, [u8; 32]), KeyError> {
    // The key data is base64, which may itself contain `+`: split twice only.
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyError::Malformed {
            reason: "expected `<name>+<key id>+<key data>`",
        });
    };
    check_name(name)?;
    if id.len() != 8 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(KeyError::Malformed {
            reason: "the key id is not 8 lower-case hex digits",
        });
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| KeyError::Malformed {
        reason: "the key id is not 8 lower-case hex digits",
    })?;
    let data = BASE64.decode(data).map_err(|_| KeyError::Malformed {
        reason: "the key data is not base64",
    })?;
    match data.split_first() {
        Some((&ED25519_SIGNATURE_TYPE, key)) => {
            let key: [u8; 32] = key.try_into().map_err(|_| KeyError::Malformed {
                reason: "an Ed25519 key has 32 bytes",
            })?;
            Ok((name, id, key))
        }
        Some((&other, _)) => Err(KeyError::UnsupportedAlgorithm(other)),
        None => Err(KeyError::Malformed {
            reason: "the key data is empty",
        }),
    }
}

fn check_id(stated: u32, computed: u32) -> Result<(), KeyError> {
    if stated != computed {
        return Err(KeyError::KeyIdMismatch {
            stated: format!("{stated:08x}"),
            computed: format!("{computed:08x}"),
        });
    }
    Ok(())
}

/// A public key that verifies note signatures: a name, its key id and an
/// Ed25519 public key. Its string form is
/// `<name>+<8 hex key id>+<base64(0x01 || public key)>` (see [`Self::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// The verifier key for `key` under `name`, with the recommended key id.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, KeyError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, &key),
            key,
        })
    }

    /// Parses `<name>+<8 lower-case hex key id>+<base64(0x01 || 32-byte public key)>`.
    ///
    /// Rejects anything else: other separators or field counts, upper-case or
    /// short hex, non-canonical base64, another signature type, a key that is
    /// not a valid Ed25519 point, or a key id other than [`key_id`]'s.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let (name, id, bytes) = split_key(s)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)?;
        check_id(id, key_id(name, &key))?;
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id (see [`key_id`]).
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    fn verifies(&self, text: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        // Strict verification: no malleable signatures, no weak keys.
        self.key.verify_strict(text, &signature).is_ok()
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut data = vec![ED25519_SIGNATURE_TYPE];
        data.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, BASE64.encode(data))
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::parse(s)
    }
}

/// A private key that signs notes: a name, its key id and an Ed25519 key.
/// Its string form (secret) is
/// `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>`.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    id: u32,
    key: SigningKey,
}

impl SignerKey {
    /// The signer for the Ed25519 key with this 32-byte seed (RFC 8032 private key).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, &key.verifying_key()),
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<8 lower-case hex key id>+<base64(0x01 || 32-byte seed)>`,
    /// checking the key id against the seed's public key.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let rest = s.strip_prefix(SIGNER_PREFIX).ok_or(KeyError::Malformed {
            reason: "a signer key starts with `PRIVATE+KEY+`",
        })?;
        let (name, id, seed) = split_key(rest)?;
        let signer = Self::from_seed(name, seed)?;
        check_id(id, signer.id)?;
        Ok(signer)
    }

    /// The secret key string (see [`Self::parse`]). Keep it out of logs.
    pub fn to_key_string(&self) -> String {
        let mut data = vec![ED25519_SIGNATURE_TYPE];
        data.extend_from_slice(self.key.as_bytes());
        format!(
            "{SIGNER_PREFIX}{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64.encode(data)
        )
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id (see [`key_id`]).
    pub fn key_id(&self) -> u32 {
        self.id
    }
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name on the line.
    pub name: String,
    /// The key id: the first 4 decoded bytes, big-endian.
    pub key_id: u32,
    /// The signature proper: the decoded bytes after the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line as it appears in a note, with its final newline.
    pub fn to_line(&self) -> String {
        let mut data = self.key_id.to_be_bytes().to_vec();
        data.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, BASE64.encode(data))
    }
}

/// A note whose signatures were checked by [`open_note`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// Signatures by known keys, all verified; never empty. Each key once.
    pub verified: Vec<NoteSignature>,
    /// Signatures by keys not given to [`open_note`], not checked; duplicates dropped.
    pub unverified: Vec<NoteSignature>,
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed {
            reason: "control character other than newline",
        });
    }
    Ok(())
}

/// Signs `text` with every signer, in order, and returns the signed note:
/// `text`, a blank line, one signature line per signer.
///
/// `text` must be non-empty, end with a newline and contain no control
/// character other than newline.
pub fn sign_note(text: &str, signers: &[&SignerKey]) -> Result<String, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed {
            reason: "the text must end with a newline",
        });
    }
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::NoSigner);
    }
    if signers.len() > MAX_NOTE_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            max: MAX_NOTE_SIGNATURES,
        });
    }
    let mut note = format!("{text}\n");
    for signer in signers {
        let line = NoteSignature {
            name: signer.name.clone(),
            key_id: signer.id,
            signature: signer.key.sign(text.as_bytes()).to_bytes().to_vec(),
        };
        note.push_str(&line.to_line());
    }
    Ok(note)
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, NoteError> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(NoteError::Malformed {
            reason: "a signature line starts with an em dash and a space",
        })?;
    let (name, data) = rest.split_once(' ').ok_or(NoteError::Malformed {
        reason: "a signature line has a key name, a space and a signature",
    })?;
    if !is_valid_name(name) {
        return Err(NoteError::Malformed {
            reason: "invalid key name in a signature line",
        });
    }
    let data = BASE64.decode(data).map_err(|_| NoteError::Malformed {
        reason: "a signature is not base64",
    })?;
    match data.split_first_chunk::<4>() {
        Some((id, signature)) if !signature.is_empty() => Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*id),
            signature: signature.to_vec(),
        }),
        _ => Err(NoteError::Malformed {
            reason: "a signature is shorter than a key id and one byte",
        }),
    }
}

/// Parses a signed note and checks its signatures against `verifiers`
/// (see the module docs for the rules). Returns the text and which
/// signatures were verified.
pub fn open_note(msg: &[u8], verifiers: &[VerifierKey]) -> Result<Note, NoteError> {
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed {
        reason: "not valid UTF-8",
    })?;
    check_text(msg)?;
    let split = msg.rfind("\n\n").ok_or(NoteError::Malformed {
        reason: "no blank line before the signatures",
    })?;
    let (text, signatures) = (&msg[..split + 1], &msg[split + 2..]);
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(NoteError::Malformed {
            reason: "the signature block is empty or does not end with a newline",
        });
    };
    let lines: Vec<&str> = signatures.split('\n').collect();
    if lines.len() > MAX_NOTE_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            max: MAX_NOTE_SIGNATURES,
        });
    }
    let mut verified: Vec<NoteSignature> = Vec::new();
    let mut unverified: Vec<NoteSignature> = Vec::new();
    for line in lines {
        let sig = parse_signature_line(line)?;
        let mut known = verifiers
            .iter()
            .filter(|v| v.name == sig.name && v.id == sig.key_id);
        let Some(verifier) = known.next() else {
            if !unverified.contains(&sig) {
                unverified.push(sig);
            }
            continue;
        };
        if known.any(|other| other.key != verifier.key) {
            return Err(NoteError::AmbiguousKey {
                name: sig.name,
                key_id: sig.key_id,
            });
        }
        if !verifier.verifies(text.as_bytes(), &sig.signature) {
            return Err(NoteError::InvalidSignature {
                name: sig.name,
                key_id: sig.key_id,
            });
        }
        if !verified
            .iter()
            .any(|v| v.name == sig.name && v.key_id == sig.key_id)
        {
            verified.push(sig);
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(Note {
        text: text.to_owned(),
        verified,
        unverified,
    })
}

#[cfg(test)]
mod tests;
