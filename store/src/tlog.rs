//! The verifiable audit log's pure core: RFC 9162 Merkle tree hashing,
//! stored subtree hashes, inclusion and consistency proofs and their
//! verifiers, and the C2SP `signed-note` / `tlog-checkpoint` text formats
//! with Ed25519.
//!
//! What it is for: everything a backend, the gate, a witness or an auditor
//! needs to compute or check a tree head, a proof or a checkpoint, with the
//! formats spelled out so that an independent implementation (another
//! language, another team) gets the same bytes.
//!
//! What it must not do: touch a database, the network, the clock or a source
//! of randomness. Storage is reached only through [`HashReader`] (one batched
//! read per operation) or, for async backends, through the two-step plans
//! ([`AppendPlan`], [`HashPlan`]): ask the plan for its stored-hash indexes,
//! read them however the backend likes, hand them back to `finish`.
//!
//! # The tree
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`; the tree over `n` leaves splits at the
//! largest power of two smaller than `n` (RFC 9162 §2.1.1). The empty tree's
//! hash is `SHA-256("")`.
//!
//! # Stored hashes
//! When leaf `n` (0-based) is appended, the backend stores the leaf hash and
//! the hash of every complete subtree that leaf completes, in one table keyed
//! by a single integer (see [`Subtree::stored_index`]). Appending reads at most
//! `log2(n)` earlier hashes; a tree hash or any proof at any size reads
//! `O(log n)` hashes and never scans the leaves.

mod checkpoint;
mod err;
mod hash;
mod note;
mod proof;
mod stored;
mod verify;

pub use checkpoint::{Checkpoint, open_checkpoint, sign_checkpoint};
pub use err::{CheckpointError, KeyError, NoteError, TreeError, VerifyError};
pub use hash::{EMPTY_TREE_HASH, HASH_SIZE, Hash, leaf_hash, node_hash};
pub use note::{
    ED25519_SIGNATURE_TYPE, MAX_NOTE_SIGNATURES, Note, NoteSignature, SignerKey, VerifierKey,
    key_id, open_note, sign_note,
};
pub use proof::{consistency_proof_plan, inclusion_proof_plan, prove_consistency, prove_inclusion};
pub use stored::{
    AppendPlan, HashPlan, HashReader, MAX_TREE_SIZE, Subtree, hashes_to_store,
    hashes_to_store_plan, stored_hash_count, tree_hash, tree_hash_plan,
};
pub use verify::{verify_consistency, verify_inclusion};
