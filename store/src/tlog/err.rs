//! Errors of the audit log's core: one enum per concern, each variant naming
//! what was wrong and where.

use miette::Diagnostic;
use thiserror::Error;

/// Why a stored-hash computation (append, tree hash, proof) failed.
#[derive(Debug, Error, Diagnostic)]
pub enum TreeError {
    /// An inclusion proof was asked for a leaf the tree does not contain.
    #[error("leaf index {index} is not in a tree of size {size}")]
    #[diagnostic(code(countersign::tlog::index_out_of_range))]
    IndexOutOfRange {
        /// The 0-based leaf index asked for.
        index: u64,
        /// The tree size it was asked against.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("cannot prove consistency from size {old} to the smaller size {new}")]
    #[diagnostic(code(countersign::tlog::sizes_out_of_order))]
    SizesOutOfOrder {
        /// The older (first) size.
        old: u64,
        /// The newer (second) size.
        new: u64,
    },
    /// The tree size or leaf index is beyond what the stored-hash numbering covers.
    #[error("tree size {size} is above the supported maximum of 2^62 leaves")]
    #[diagnostic(code(countersign::tlog::tree_too_large))]
    TreeTooLarge {
        /// The size (or leaf number) that is too large.
        size: u64,
    },
    /// A stored-hash index that no subtree of a supported tree has.
    #[error("stored hash index {index} does not name a subtree of a supported tree")]
    #[diagnostic(code(countersign::tlog::bad_stored_index))]
    BadStoredIndex {
        /// The index given.
        index: u64,
    },
    /// The backend returned a different number of hashes than it was asked for.
    #[error("asked for {expected} stored hashes but {got} were returned")]
    #[diagnostic(
        code(countersign::tlog::hash_count),
        help("a reader must return exactly one hash per requested index, in order")
    )]
    HashCount {
        /// How many indexes were requested.
        expected: usize,
        /// How many hashes came back.
        got: usize,
    },
    /// The backend could not read the stored hashes.
    #[error("reading stored hashes failed")]
    #[diagnostic(code(countersign::tlog::read))]
    Read(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Why an inclusion or consistency proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
pub enum VerifyError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    #[diagnostic(code(countersign::tlog::verify::index_out_of_range))]
    IndexOutOfRange {
        /// The leaf index claimed.
        index: u64,
        /// The tree size claimed.
        size: u64,
    },
    /// The first size of a consistency proof is larger than the second.
    #[error("the first tree size {old} is larger than the second {new}")]
    #[diagnostic(code(countersign::tlog::verify::sizes_out_of_order))]
    SizesOutOfOrder {
        /// The older (first) size.
        old: u64,
        /// The newer (second) size.
        new: u64,
    },
    /// The proof has more hashes than the tree shape allows.
    #[error("the proof has more hashes than a tree of this size needs")]
    #[diagnostic(code(countersign::tlog::verify::proof_too_long))]
    ProofTooLong,
    /// The proof has fewer hashes than the tree shape needs.
    #[error("the proof has fewer hashes than a tree of this size needs")]
    #[diagnostic(code(countersign::tlog::verify::proof_too_short))]
    ProofTooShort,
    /// A trivial consistency proof (equal sizes, or from the empty tree) must be empty.
    #[error("a consistency proof from size {old} to size {new} must be empty")]
    #[diagnostic(code(countersign::tlog::verify::proof_not_empty))]
    ProofNotEmpty {
        /// The older (first) size.
        old: u64,
        /// The newer (second) size.
        new: u64,
    },
    /// The root recomputed from the proof is not the claimed root.
    #[error("the proof leads to a different root hash than the one claimed")]
    #[diagnostic(
        code(countersign::tlog::verify::root_mismatch),
        help("the leaf, the index, the size, the proof or the root was changed")
    )]
    RootMismatch,
    /// The old root recomputed from a consistency proof is not the claimed old root.
    #[error("the proof leads to a different old root hash than the one claimed")]
    #[diagnostic(
        code(countersign::tlog::verify::old_root_mismatch),
        help("the log's history before the old size was rewritten, or the proof is wrong")
    )]
    OldRootMismatch,
}

/// Why a signed-note key string (verifier or signer) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
pub enum KeyError {
    /// The key string does not have the `name+keyid+keydata` shape.
    #[error("malformed key string: {reason}")]
    #[diagnostic(
        code(countersign::tlog::key::malformed),
        help("a verifier key reads `<name>+<8 lower-case hex>+<base64(0x01 || 32-byte key)>`")
    )]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key name is empty or has a space, a `+` or a control character.
    #[error("invalid key name `{name}`")]
    #[diagnostic(
        code(countersign::tlog::key::name),
        help("key names are non-empty and contain no Unicode space, `+` or control character")
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The key data names a signature type other than Ed25519 (`0x01`).
    #[error("unsupported signature type 0x{0:02x}")]
    #[diagnostic(code(countersign::tlog::key::algorithm))]
    UnsupportedAlgorithm(u8),
    /// The 32 key bytes are not a valid Ed25519 public key.
    #[error("the key bytes are not a valid Ed25519 public key")]
    #[diagnostic(code(countersign::tlog::key::invalid_public_key))]
    InvalidPublicKey,
    /// The key id in the string is not the one computed from the name and key.
    #[error("key id {stated} does not match {computed} computed from the name and key")]
    #[diagnostic(code(countersign::tlog::key::id_mismatch))]
    KeyIdMismatch {
        /// Key id written in the string (8 hex digits).
        stated: String,
        /// Key id computed from the name and key (8 hex digits).
        computed: String,
    },
}

/// Why a signed note could not be signed or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
pub enum NoteError {
    /// The note breaks the signed-note format.
    #[error("malformed note: {reason}")]
    #[diagnostic(code(countersign::tlog::note::malformed))]
    Malformed {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The note has more signature lines than [`crate::tlog::MAX_NOTE_SIGNATURES`].
    #[error("the note has more than {max} signatures")]
    #[diagnostic(code(countersign::tlog::note::too_many_signatures))]
    TooManySignatures {
        /// The limit.
        max: usize,
    },
    /// A signature from a known key (name and key id match) does not verify.
    #[error("invalid signature by key `{name}+{key_id:08x}`")]
    #[diagnostic(
        code(countersign::tlog::note::invalid_signature),
        help(
            "the note was changed after signing, or signed by another key with the same name and id"
        )
    )]
    InvalidSignature {
        /// The key's name.
        name: String,
        /// The key's id.
        key_id: u32,
    },
    /// Two different verifier keys share a name and key id, so a signature is ambiguous.
    #[error("ambiguous key `{name}+{key_id:08x}`: two verifier keys share this name and id")]
    #[diagnostic(code(countersign::tlog::note::ambiguous_key))]
    AmbiguousKey {
        /// The shared name.
        name: String,
        /// The shared key id.
        key_id: u32,
    },
    /// No signature of the note is from a known key.
    #[error("the note has no signature from a known key")]
    #[diagnostic(
        code(countersign::tlog::note::unverified),
        help("check that the verifier key is the log's current public key")
    )]
    NoKnownSignature,
    /// Signing was asked with no signer.
    #[error("no signer given")]
    #[diagnostic(code(countersign::tlog::note::no_signer))]
    NoSigner,
}

/// Why a checkpoint could not be formatted, parsed or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
pub enum CheckpointError {
    /// The checkpoint body breaks the tlog-checkpoint format.
    #[error("malformed checkpoint: {reason}")]
    #[diagnostic(code(countersign::tlog::checkpoint::malformed))]
    Malformed {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The tree size line is not a canonical decimal `u64`.
    #[error("invalid checkpoint tree size `{line}`")]
    #[diagnostic(
        code(countersign::tlog::checkpoint::size),
        help("the size is ASCII decimal without leading zeroes (`0` for the empty tree)")
    )]
    InvalidSize {
        /// The rejected line.
        line: String,
    },
    /// The root hash line is not canonical base64 of exactly 32 bytes.
    #[error("invalid checkpoint root hash `{line}`")]
    #[diagnostic(
        code(countersign::tlog::checkpoint::root_hash),
        help("the root hash is standard padded base64 of 32 bytes")
    )]
    InvalidRootHash {
        /// The rejected line.
        line: String,
    },
    /// The note around the checkpoint did not open.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Note(#[from] NoteError),
}
