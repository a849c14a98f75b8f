//! Signed receipts: a client-ready record of one run, signed with Ed25519
//! over its canonical JSON (RFC 8785 with exact numbers, `docs/CANONICAL.md`),
//! verifiable offline with the gate's public key.
//!
//! ```json
//! {
//!   "receipt": { "version": 1, "workspace": "default", "run_id": "…", … },
//!   "signature": { "alg": "Ed25519", "key_id": "3f2a…", "value": "<base64>" }
//! }
//! ```
//! The signature covers exactly `to_canonical_json(receipt)`.
//!
//! Verification is strict ([`verify_text`]): the file is read with numbers
//! exact and duplicate keys refused, and it may hold nothing the signature
//! does not cover: only `receipt` and `signature`, and in `signature` only
//! `alg`, `key_id` and `value`. A reader that kept the first of two equal
//! keys, or rounded a number, could otherwise be shown other content than
//! the signature vouches for.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_store::{
    ExecutionOutcome, Run, StrictJsonError, parse_strict_json, to_canonical_json,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The members a signed receipt document may have.
pub const DOCUMENT_MEMBERS: &[&str] = &["receipt", "signature"];

/// The members of a receipt's `signature` object.
pub const SIGNATURE_MEMBERS: &[&str] = &["alg", "key_id", "value"];

/// File name of the signing key inside the data directory.
pub const KEY_FILE: &str = "receipt-signing-key";

/// Why a receipt does not verify, or a key cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReceiptError {
    /// The document is not a signed receipt.
    #[error("not a signed receipt: {0}")]
    Malformed(String),
    /// The file is not strict JSON (duplicate key, trailing content…).
    #[error("not a strictly valid JSON document: {0}")]
    Json(#[from] StrictJsonError),
    /// The document holds a member the signature does not cover.
    #[error("`{0}` is not covered by the signature; a receipt holds only what is signed")]
    Uncovered(String),
    /// No known public key has the receipt's key id.
    #[error("no public key with id `{0}` is known")]
    UnknownKey(String),
    /// The signature does not match the receipt's content.
    #[error("the signature does not match: the receipt was changed or signed by another key")]
    BadSignature,
    /// The signing key could not be read or created.
    #[error("receipt signing key `{path}`: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// A public key as served by `GET /v1/receipt-keys`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublicKeyInfo {
    /// Short id: the first 16 hex digits of SHA-256(public key).
    pub key_id: String,
    /// Always `Ed25519`.
    pub alg: String,
    /// The 32-byte public key, base64.
    pub public_key: String,
}

impl PublicKeyInfo {
    fn verifying_key(&self) -> Result<VerifyingKey, ReceiptError> {
        let bytes = B64
            .decode(&self.public_key)
            .map_err(|_| ReceiptError::Malformed("public key is not base64".into()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ReceiptError::Malformed("public key is not 32 bytes".into()))?;
        VerifyingKey::from_bytes(&arr)
            .map_err(|_| ReceiptError::Malformed("invalid public key".into()))
    }
}

/// The gate's signing key.
pub struct ReceiptSigner {
    key: SigningKey,
    info: PublicKeyInfo,
}

fn key_id(public: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(public.as_bytes()))[..16].to_owned()
}

/// Describes a public key.
pub fn describe(public: &VerifyingKey) -> PublicKeyInfo {
    PublicKeyInfo {
        key_id: key_id(public),
        alg: "Ed25519".to_owned(),
        public_key: B64.encode(public.as_bytes()),
    }
}

impl ReceiptSigner {
    /// Loads the key from `data_dir`, creating it (mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, ReceiptError> {
        let path = data_dir.join(KEY_FILE);
        let err = |message: String| ReceiptError::Key {
            path: path.clone(),
            message,
        };
        let seed: [u8; 32] = if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
            hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| err("expected 64 hex digits".to_owned()))?
        } else {
            std::fs::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
            let mut seed = [0u8; 32];
            crate::keys::random_bytes(&mut seed).map_err(err)?;
            write_private_file(&path, &hex::encode(seed)).map_err(|e| err(e.to_string()))?;
            seed
        };
        Ok(Self::from_seed(seed))
    }

    /// A signer from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let info = describe(&key.verifying_key());
        Self { key, info }
    }

    /// The 32-byte seed, for the checkpoint signer (the same key signs
    /// receipts and checkpoints).
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> &PublicKeyInfo {
        &self.info
    }

    /// Signs a receipt body.
    pub fn sign(&self, receipt: Value) -> Value {
        let canonical = to_canonical_json(&receipt);
        let signature = self.key.sign(canonical.as_bytes());
        json!({
            "receipt": receipt,
            "signature": {
                "alg": "Ed25519",
                "key_id": self.info.key_id,
                "value": B64.encode(signature.to_bytes()),
            }
        })
    }
}

/// Creates a file readable only by its owner (0600) and writes `text`.
#[cfg(unix)]
pub fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Creates a file and writes `text`.
#[cfg(not(unix))]
pub fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Reads a receipt file strictly (see the module docs) and checks it
/// against the given public keys; returns the document.
pub fn verify_text(text: &str, keys: &[PublicKeyInfo]) -> Result<Value, ReceiptError> {
    let signed = parse_strict_json(text)?;
    verify(&signed, keys)?;
    Ok(signed)
}

/// Refuses members of `obj` outside `allowed`, naming the first one as
/// `path.member`.
fn only_members(obj: &Value, path: &str, allowed: &[&str]) -> Result<(), ReceiptError> {
    if let Some(extra) = obj
        .as_object()
        .and_then(|m| m.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(ReceiptError::Uncovered(format!("{path}{extra}")));
    }
    Ok(())
}

/// Checks a signed receipt document against the given public keys. Prefer
/// [`verify_text`] for a file: a `Value` parsed leniently may already have
/// dropped a duplicate key.
pub fn verify(signed: &Value, keys: &[PublicKeyInfo]) -> Result<(), ReceiptError> {
    if !signed.is_object() {
        return Err(ReceiptError::Malformed("not a JSON object".into()));
    }
    only_members(signed, "", DOCUMENT_MEMBERS)?;
    let receipt = signed
        .get("receipt")
        .ok_or_else(|| ReceiptError::Malformed("missing `receipt`".into()))?;
    let sig = signed
        .get("signature")
        .ok_or_else(|| ReceiptError::Malformed("missing `signature`".into()))?;
    if !receipt.is_object() || !sig.is_object() {
        return Err(ReceiptError::Malformed(
            "`receipt` and `signature` must be objects".into(),
        ));
    }
    only_members(sig, "signature.", SIGNATURE_MEMBERS)?;
    if sig.get("alg").and_then(Value::as_str) != Some("Ed25519") {
        return Err(ReceiptError::Malformed(
            "signature.alg must be Ed25519".into(),
        ));
    }
    let key_id = sig
        .get("key_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ReceiptError::Malformed("missing signature.key_id".into()))?;
    let value = sig
        .get("value")
        .and_then(Value::as_str)
        .and_then(|v| B64.decode(v).ok())
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or_else(|| {
            ReceiptError::Malformed("signature.value must be 64 bytes of base64".into())
        })?;
    let key = keys
        .iter()
        .find(|k| k.key_id == key_id)
        .ok_or_else(|| ReceiptError::UnknownKey(key_id.to_owned()))?
        .verifying_key()?;
    // verify_strict rejects malleable signatures and weak keys; the
    // comparison inside is constant-time.
    key.verify_strict(
        to_canonical_json(receipt).as_bytes(),
        &Signature::from_bytes(&value),
    )
    .map_err(|_| ReceiptError::BadSignature)?;
    Ok(())
}

/// Builds the receipt body of a run.
pub fn receipt_body(run: &Run) -> Value {
    let execution = run.execution.as_ref().map(|e| match &e.outcome {
        ExecutionOutcome::Executed { result } => {
            let canonical = to_canonical_json(result);
            json!({
                "status": "executed",
                "reported_at": countersign_store::format_ts(e.reported_at),
                "result_sha256": hex::encode(Sha256::digest(canonical.as_bytes())),
                "result_summary": crate::http::summarize_text(&canonical, 200),
            })
        }
        ExecutionOutcome::Failed { error } => json!({
            "status": "failed",
            "reported_at": countersign_store::format_ts(e.reported_at),
            "error": crate::http::summarize_text(error, 500),
        }),
    });
    let approvals: Vec<Value> = run
        .approvals
        .iter()
        .map(|a| {
            json!({
                "approver": a.approver_id,
                "decision": a.decision,
                "channel": a.channel,
                "at": countersign_store::format_ts(a.answered_at),
                "comment": a.comment,
                "counted": a.counted,
            })
        })
        .collect();
    json!({
        "version": 1,
        "workspace": run.proposal.workspace,
        "run_id": run.proposal.run_id,
        "action": run.proposal.action,
        "actor": run.proposal.actor,
        // True when the actor came from the agent's API key (`keys create
        // --actor`), false when the request named it unchecked.
        "actor_bound": run.proposal.decision.details.get("actor_bound") == Some(&Value::Bool(true)),
        "payload": { "sha256": run.proposal.payload_hash, "summary": run.proposal.payload_summary },
        "decision": {
            "governance_status": run.governance_status,
            "rule": run.proposal.decision.rule,
            "reason": run.proposal.decision.reason,
            "risk": run.proposal.decision.risk,
            "policy_version": run.proposal.decision.policy_version,
        },
        "approval": run.proposal.approval.as_ref().map(|a| json!({
            "group": a.group,
            "quorum": a.quorum,
            "expires_at": countersign_store::format_ts(a.expires_at),
        })),
        "approvals": approvals,
        "execution_status": run.execution_status,
        "execution": execution,
        "created_at": countersign_store::format_ts(run.proposal.created_at),
        "updated_at": countersign_store::format_ts(run.updated_at),
        "audit": { "seq": run.chain.seq, "hash": run.chain.hash },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_and_reject_tampering() {
        let signer = ReceiptSigner::from_seed([7; 32]);
        let signed = signer.sign(json!({"run_id": "r1", "decision": {"rule": "x"}, "n": 3}));
        let keys = vec![signer.public().clone()];
        verify(&signed, &keys).unwrap();

        let mut forged = signed.clone();
        forged["receipt"]["decision"]["rule"] = json!("y");
        assert!(matches!(
            verify(&forged, &keys),
            Err(ReceiptError::BadSignature)
        ));

        let other = ReceiptSigner::from_seed([8; 32]);
        assert!(matches!(
            verify(&signed, &[other.public().clone()]),
            Err(ReceiptError::UnknownKey(_))
        ));

        // Key order in the document does not matter: the signature covers
        // the canonical form.
        let reordered: Value = serde_json::from_str(
            &signed
                .to_string()
                .replace(r#""n":3,"run_id":"r1""#, r#""run_id":"r1","n":3"#),
        )
        .unwrap();
        verify(&reordered, &keys).unwrap();
    }

    #[test]
    fn files_are_read_strictly_and_hold_only_signed_content() {
        let signer = ReceiptSigner::from_seed([7; 32]);
        let keys = vec![signer.public().clone()];
        let body = json!({"decision": {"governance_status": "allowed"}, "n": 9007199254740993_u64});
        let signed = signer.sign(body);
        let pretty = serde_json::to_string_pretty(&signed).unwrap();
        verify_text(&pretty, &keys).unwrap();

        // A second `governance_status` after the signed one: refused, with
        // its position, whichever of the two a lenient reader would keep.
        let dup = pretty.replace(
            r#""governance_status": "allowed""#,
            r#""governance_status": "allowed", "governance_status": "approved""#,
        );
        let e = verify_text(&dup, &keys).unwrap_err().to_string();
        assert!(
            e.contains("duplicate key `governance_status` at line 4, column 39"),
            "{e}"
        );

        // The number keeps its digits: rounding it to 2^53 breaks the signature.
        let rounded = pretty.replace("9007199254740993", "9007199254740992");
        assert!(matches!(
            verify_text(&rounded, &keys),
            Err(ReceiptError::BadSignature)
        ));
        // An equal value written another way is the same content.
        let spelled = pretty.replace("9007199254740993", "9.007199254740993e15");
        verify_text(&spelled, &keys).unwrap();

        // Unsigned content is refused, at the top level and in `signature`.
        let mut extra = signed.clone();
        extra["note"] = json!("approved by the CFO");
        assert_eq!(
            verify_text(&extra.to_string(), &keys)
                .unwrap_err()
                .to_string(),
            "`note` is not covered by the signature; a receipt holds only what is signed"
        );
        let mut extra = signed.clone();
        extra["signature"]["comment"] = json!("x");
        assert!(matches!(
            verify(&extra, &keys),
            Err(ReceiptError::Uncovered(m)) if m == "signature.comment"
        ));

        // Trailing content is refused.
        assert!(matches!(
            verify_text(&format!("{pretty} {{}}"), &keys),
            Err(ReceiptError::Json(_))
        ));
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = ReceiptSigner::load_or_create(dir.path()).unwrap();
        let b = ReceiptSigner::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
