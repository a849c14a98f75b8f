//! The audit proof a receipt carries, and its check.
//!
//! A receipt issued since the verifiable log (`"version": 2`) holds, inside
//! the signed body, a `log` member:
//!
//! ```json
//! "log": {
//!   "checkpoint": "<the C2SP signed note, exactly as signed>",
//!   "events": [
//!     { "index": 41, "event": "<the event's canonical bytes>",
//!       "proof": ["<base64 hash>", …] }
//!   ]
//! }
//! ```
//!
//! `events` lists every event of the run, in seq order: `index` is its leaf
//! index (seq − 1), `event` its canonical bytes (the leaf data, see
//! `countersign_store::event_leaf_data`), `proof` its RFC 9162 inclusion
//! proof in the tree the checkpoint signs. The checkpoint is signed with
//! the same Ed25519 key as the receipt, under the note key name
//! `<log name>` where the origin is `<log name>/<workspace>`.
//!
//! Checking: the note verifies with the receipt's key; its origin ends with
//! `/<workspace>`; each event's leaf hash `SHA-256(0x00 || event)` is
//! included at `index` in the tree of the checkpoint's size and root; each
//! event is of this run and workspace with `seq = index + 1`; the last
//! event's chain hash is the receipt's `audit.hash`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_store::tlog::{
    Checkpoint, Hash, VerifierKey, leaf_hash, open_checkpoint, verify_consistency, verify_inclusion,
};
use countersign_store::{Event, StoredCheckpoint, event_leaf_data};
use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The `log` member of a receipt for `events` (the run's, in seq order),
/// with their inclusion proofs in the tree `checkpoint` signs.
pub fn log_section(checkpoint: &StoredCheckpoint, events: &[(Event, Vec<Hash>)]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|(e, proof)| {
            json!({
                "index": e.seq.saturating_sub(1),
                "event": String::from_utf8_lossy(&event_leaf_data(e)),
                "proof": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "checkpoint": checkpoint.note, "events": events })
}

/// What the audit proof of a verified receipt established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofVerdict {
    /// The receipt predates the verifiable log: only its signature counts.
    NoProof,
    /// Every event of the run is in the signed tree.
    Included {
        /// The checkpoint, as parsed.
        checkpoint: Checkpoint,
        /// How many events were proven.
        events: usize,
    },
}

fn bad(m: impl Into<String>) -> String {
    m.into()
}

fn hash_list(v: &Value) -> Result<Vec<Hash>, String> {
    v.as_array()
        .ok_or_else(|| bad("a proof is not a list"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| B64.decode(s).ok())
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| bad("a proof hash is not base64 of 32 bytes"))
        })
        .collect()
}

/// The note verifier for a receipt key under the log name of `origin`.
pub fn note_verifier(
    origin: &str,
    workspace: &str,
    key: &VerifyingKey,
) -> Result<VerifierKey, String> {
    let name = origin
        .strip_suffix(&format!("/{workspace}"))
        .ok_or_else(|| {
            bad(format!(
                "checkpoint origin `{origin}` is not the log of workspace `{workspace}`"
            ))
        })?;
    VerifierKey::new(name, *key).map_err(|e| bad(format!("checkpoint key name `{name}`: {e}")))
}

/// Parses a checkpoint note without trusting it, to learn its origin.
fn origin_of(note: &str) -> Result<String, String> {
    let text = note.split("\n\n").next().unwrap_or("");
    Ok(Checkpoint::parse_body(&format!("{text}\n"))
        .map_err(|e| bad(format!("the embedded checkpoint is malformed: {e}")))?
        .origin)
}

/// Opens a checkpoint note of `workspace`'s log signed by `key`.
pub fn open_log_checkpoint(
    note: &str,
    workspace: &str,
    key: &VerifyingKey,
) -> Result<Checkpoint, String> {
    let origin = origin_of(note)?;
    let verifier = note_verifier(&origin, workspace, key)?;
    let (cp, _) = open_checkpoint(note.as_bytes(), &[verifier])
        .map_err(|e| bad(format!("the checkpoint's signature does not verify: {e}")))?;
    Ok(cp)
}

/// Checks the `log` member of a receipt whose signature verified with `key`.
pub fn verify_log(receipt: &Value, key: &VerifyingKey) -> Result<ProofVerdict, String> {
    let Some(log) = receipt.get("log") else {
        return Ok(ProofVerdict::NoProof);
    };
    let workspace = receipt["workspace"]
        .as_str()
        .ok_or_else(|| bad("no workspace"))?;
    let run_id = receipt["run_id"].as_str().ok_or_else(|| bad("no run_id"))?;
    let note = log["checkpoint"]
        .as_str()
        .ok_or_else(|| bad("log.checkpoint is not a string"))?;
    let cp = open_log_checkpoint(note, workspace, key)?;
    let events = log["events"]
        .as_array()
        .ok_or_else(|| bad("log.events is not a list"))?;
    if events.is_empty() {
        return Err(bad("log.events is empty"));
    }
    let mut last: Option<(String, String)> = None;
    for (k, e) in events.iter().enumerate() {
        let index = e["index"]
            .as_u64()
            .ok_or_else(|| bad(format!("log.events[{k}].index is not a number")))?;
        let bytes = e["event"]
            .as_str()
            .ok_or_else(|| bad(format!("log.events[{k}].event is not a string")))?;
        let proof = hash_list(&e["proof"])?;
        verify_inclusion(
            &leaf_hash(bytes.as_bytes()),
            index,
            cp.size,
            &proof,
            &cp.root_hash,
        )
        .map_err(|err| {
            bad(format!(
                "event at index {index} is not in the tree of size {} the checkpoint signs: {err}",
                cp.size
            ))
        })?;
        let ev: Value = serde_json::from_str(bytes)
            .map_err(|_| bad(format!("log.events[{k}].event is not JSON")))?;
        if ev["workspace"].as_str() != Some(workspace)
            || ev["run_id"].as_str() != Some(run_id)
            || ev["seq"].as_u64() != Some(index + 1)
        {
            return Err(bad(format!(
                "log.events[{k}] is not event seq {} of run `{run_id}` in workspace `{workspace}`",
                index + 1
            )));
        }
        let prev = ev["prev_hash"].as_str().unwrap_or_default().to_owned();
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(bytes.as_bytes());
        last = Some((hex::encode(h.finalize()), prev));
    }
    if let (Some((hash, _)), Some(stated)) = (&last, receipt["audit"]["hash"].as_str()) {
        if hash != stated {
            return Err(bad(
                "the run's last event is not the one the receipt's audit.hash names",
            ));
        }
    }
    Ok(ProofVerdict::Included {
        checkpoint: cp,
        events: events.len(),
    })
}

/// Checks that `older` and `newer` checkpoints of one log are consistent
/// with `proof` (RFC 9162 §2.1.4.2), in either order.
pub fn check_consistency(a: &Checkpoint, b: &Checkpoint, proof: &[Hash]) -> Result<(), String> {
    if a.origin != b.origin {
        return Err(bad(format!(
            "the checkpoints are of different logs (`{}`, `{}`)",
            a.origin, b.origin
        )));
    }
    let (old, new) = if a.size <= b.size { (a, b) } else { (b, a) };
    verify_consistency(old.size, new.size, &old.root_hash, &new.root_hash, proof).map_err(|e| {
        bad(format!(
            "the tree of size {} is not a prefix of the tree of size {}: the log was rewritten ({e})",
            old.size, new.size
        ))
    })
}
