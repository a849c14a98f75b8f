//! C2SP `tlog-checkpoint` (<https://c2sp.org/tlog-checkpoint>): a tree head
//! as the text of a signed note.
//!
//! # Format
//! The body is at least three non-empty lines, each ending in `"\n"`:
//!
//! ```text
//! <origin>                      the log's identity, e.g. `countersign.example/ws/acme`
//! <tree size>                   ASCII decimal, no leading zeroes ("0" for the empty tree)
//! <root hash>                   standard padded base64 of the 32-byte RFC 9162 root
//! [<extension line>...]         optional, opaque, each non-empty
//! ```
//!
//! Parsing is strict: a missing final newline, an empty line, a control
//! character, a size with a sign, a leading zero, or too large for `u64`,
//! and a root hash that is not canonical base64 of exactly 32 bytes are all
//! rejected. The signed form is this body signed as a note (see
//! [`super::sign_note`]); the log's key name should equal the origin.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::err::CheckpointError;
use super::hash::Hash;
use super::note::{Note, SignerKey, VerifierKey, open_note, sign_note};

/// A tree head: the log's origin, its size and its root hash, plus optional
/// extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (first line). Non-empty, no control character.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root hash of the tree of `size` leaves.
    pub root_hash: Hash,
    /// Opaque extension lines, each non-empty, without control characters.
    pub extensions: Vec<String>,
}

fn check_line(line: &str) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(CheckpointError::Malformed {
            reason: "empty line",
        });
    }
    if line.chars().any(|c| c < ' ') {
        return Err(CheckpointError::Malformed {
            reason: "control character in a line",
        });
    }
    Ok(())
}

fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    canonical
        .then(|| line.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| CheckpointError::InvalidSize {
            line: line.to_owned(),
        })
}

fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    BASE64
        .decode(line)
        .ok()
        .and_then(|bytes| Hash::try_from(bytes).ok())
        .filter(|hash| BASE64.encode(hash) == line)
        .ok_or_else(|| CheckpointError::InvalidRootHash {
            line: line.to_owned(),
        })
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root_hash: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root_hash,
            extensions: Vec::new(),
        }
    }

    /// The note text of this checkpoint (see the module docs). Fails if the
    /// origin or an extension line is empty or has a control character.
    pub fn to_body(&self) -> Result<String, CheckpointError> {
        check_line(&self.origin)?;
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root_hash)
        );
        for line in &self.extensions {
            check_line(line)?;
            body.push_str(line);
            body.push('\n');
        }
        Ok(body)
    }

    /// Parses a checkpoint body, strictly (see the module docs).
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let lines = body.strip_suffix('\n').ok_or(CheckpointError::Malformed {
            reason: "the body must end with a newline",
        })?;
        let mut lines = lines.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed {
                reason: "fewer than three lines",
            });
        };
        check_line(origin)?;
        check_line(size)?;
        check_line(root)?;
        let extensions = lines
            .map(|line| check_line(line).map(|()| line.to_owned()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            origin: origin.to_owned(),
            size: parse_size(size)?,
            root_hash: parse_root(root)?,
            extensions,
        })
    }
}

/// The checkpoint as a signed note, signed by every signer in order.
pub fn sign_checkpoint(
    checkpoint: &Checkpoint,
    signers: &[&SignerKey],
) -> Result<String, CheckpointError> {
    Ok(sign_note(&checkpoint.to_body()?, signers)?)
}

/// Opens a signed checkpoint: the note must verify against `verifiers`
/// (see [`open_note`]) and its text must be a well-formed checkpoint body.
pub fn open_checkpoint(
    msg: &[u8],
    verifiers: &[VerifierKey],
) -> Result<(Checkpoint, Note), CheckpointError> {
    let note = open_note(msg, verifiers)?;
    let checkpoint = Checkpoint::parse_body(&note.text)?;
    Ok((checkpoint, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::{NoteError, leaf_hash};

    const ROOT_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    #[test]
    fn the_spec_example_body_parses_and_round_trips() {
        let body = format!("example.com/behind-the-sofa\n20852163\n{ROOT_B64}\n");
        let cp = Checkpoint::parse_body(&body).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20852163);
        assert_eq!(BASE64.encode(cp.root_hash), ROOT_B64);
        assert!(cp.extensions.is_empty());
        assert_eq!(cp.to_body().unwrap(), body);
    }

    #[test]
    fn extensions_and_origins_with_spaces_are_kept() {
        let body = format!("a log with spaces\n0\n{ROOT_B64}\nTimestamp: 1\nmore\n");
        let cp = Checkpoint::parse_body(&body).unwrap();
        assert_eq!(cp.size, 0);
        assert_eq!(cp.extensions, ["Timestamp: 1", "more"]);
        assert_eq!(cp.to_body().unwrap(), body);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let bad_size = |s: &str| format!("o\n{s}\n{ROOT_B64}\n");
        for size in [
            "",
            "01",
            "00",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1e3",
            "0x10",
            "18446744073709551616",
        ] {
            let err = Checkpoint::parse_body(&bad_size(size)).unwrap_err();
            assert!(
                matches!(
                    err,
                    CheckpointError::InvalidSize { .. } | CheckpointError::Malformed { .. }
                ),
                "size {size:?}: {err:?}"
            );
        }
        assert_eq!(
            Checkpoint::parse_body(&bad_size("18446744073709551615"))
                .unwrap()
                .size,
            u64::MAX
        );
        let bad_root = |r: &str| format!("o\n1\n{r}\n");
        for root in [
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I", // no padding
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=", // non-canonical last char
            "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=", // URL alphabet
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==", // 31 bytes
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA", // 33 bytes
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I= ", // trailing space
        ] {
            let err = Checkpoint::parse_body(&bad_root(root)).unwrap_err();
            assert!(
                matches!(err, CheckpointError::InvalidRootHash { .. }),
                "root {root:?}: {err:?}"
            );
        }
        for body in [
            format!("o\n1\n{ROOT_B64}"),
            "o\n1\n".to_owned(),
            format!("\n1\n{ROOT_B64}\n"),
            format!("o\n1\n{ROOT_B64}\n\n"),
            format!("o\n1\n{ROOT_B64}\n\next\n"),
            format!("o\t\n1\n{ROOT_B64}\n"),
            format!("o\r\n1\n{ROOT_B64}\n"),
        ] {
            assert!(
                matches!(
                    Checkpoint::parse_body(&body),
                    Err(CheckpointError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        let mut cp = Checkpoint::new("o", 1, [0; 32]);
        cp.extensions.push(String::new());
        assert!(cp.to_body().is_err());
        assert!(Checkpoint::new("", 1, [0; 32]).to_body().is_err());
        assert!(Checkpoint::new("a\nb", 1, [0; 32]).to_body().is_err());
    }

    #[test]
    fn signed_checkpoints_open_with_the_right_key_only() {
        let signer = SignerKey::from_seed("countersign.example/ws/acme", [3; 32]).unwrap();
        let cp = Checkpoint::new("countersign.example/ws/acme", 42, leaf_hash(b"x"));
        let signed = sign_checkpoint(&cp, &[&signer]).unwrap();
        let (opened, note) = open_checkpoint(signed.as_bytes(), &[signer.verifier()]).unwrap();
        assert_eq!(opened, cp);
        assert_eq!(note.verified[0].name, "countersign.example/ws/acme");

        let other = SignerKey::from_seed("countersign.example/ws/acme", [4; 32]).unwrap();
        assert_eq!(
            open_checkpoint(signed.as_bytes(), &[other.verifier()]),
            Err(CheckpointError::Note(NoteError::NoKnownSignature))
        );
        let grown = signed.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            open_checkpoint(grown.as_bytes(), &[signer.verifier()]),
            Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
        ));
        // A validly signed note whose text is not a checkpoint.
        let not_a_checkpoint = sign_note("hello\n", &[&signer]).unwrap();
        assert!(matches!(
            open_checkpoint(not_a_checkpoint.as_bytes(), &[signer.verifier()]),
            Err(CheckpointError::Malformed { .. })
        ));
    }
}
