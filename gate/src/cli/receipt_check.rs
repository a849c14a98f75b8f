//! `receipt verify`'s audit part: the receipt's embedded proof, and its
//! consistency with a checkpoint the holder kept.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_gate::receipts;

use super::fetch::{decode_hashes, get_text};

/// After `receipt verify` checked the signature: the receipt's audit proof
/// and, with `--checkpoint`, its consistency with a checkpoint the holder
/// kept. Returns the line to print.
pub fn receipt_log_check(
    signed: &serde_json::Value,
    keys: &[receipts::PublicKeyInfo],
    checkpoint_file: Option<&Path>,
    gate: Option<&str>,
) -> Result<String, String> {
    use countersign_gate::receipt_proof::{
        ProofVerdict, check_consistency, open_log_checkpoint, verify_log,
    };
    let key_id = signed["signature"]["key_id"].as_str().unwrap_or_default();
    let info = keys
        .iter()
        .find(|k| k.key_id == key_id)
        .ok_or_else(|| format!("no public key with id `{key_id}`"))?;
    let key = B64
        .decode(&info.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|a| ed25519_dalek::VerifyingKey::from_bytes(&a).ok())
        .ok_or_else(|| "the public key is not 32 bytes of base64".to_owned())?;
    let receipt = &signed["receipt"];
    let (cp, events) = match verify_log(receipt, &key)? {
        ProofVerdict::NoProof => {
            if checkpoint_file.is_some() {
                return Err(
                    "the receipt has no audit proof, so --checkpoint cannot be checked against it"
                        .to_owned(),
                );
            }
            return Ok(
                "no audit proof (issued before the verifiable audit log): signature only"
                    .to_owned(),
            );
        }
        ProofVerdict::Included { checkpoint, events } => (checkpoint, events),
    };
    let mut line = format!(
        "audit proof: {events} event(s) included in `{}` at size {}",
        cp.origin, cp.size
    );
    let Some(path) = checkpoint_file else {
        return Ok(line);
    };
    let workspace = receipt["workspace"].as_str().unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The file is the note exactly as served, or JSON holding it and a
    // consistency proof: {"checkpoint": "...", "proof": {"hashes": [...]}}.
    let (note, embedded) = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(doc) if doc.is_object() => (
            doc["checkpoint"]
                .as_str()
                .ok_or_else(|| format!("{}: no `checkpoint` string", path.display()))?
                .to_owned(),
            doc.get("proof").cloned(),
        ),
        _ => (text, None),
    };
    let other = open_log_checkpoint(&note, workspace, &key)
        .map_err(|e| format!("--checkpoint {}: {e}", path.display()))?;
    let proof = if cp.size == other.size {
        Vec::new()
    } else if let Some(p) = embedded {
        decode_hashes(&p).map_err(|e| e.to_string())?
    } else if let Some(gate) = gate {
        let (from, to) = (cp.size.min(other.size), cp.size.max(other.size));
        let url = format!(
            "{}/v1/audit/{workspace}/proofs/consistency?from={from}&to={to}",
            gate.trim_end_matches('/')
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("no async runtime: {e}"))?;
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .map_err(|e| e.to_string())?;
            let body = get_text(&client, &url).await.map_err(|e| e.to_string())?;
            let doc: serde_json::Value =
                serde_json::from_str(&body).map_err(|e| format!("{url}: {e}"))?;
            decode_hashes(&doc).map_err(|e| e.to_string())
        })?
    } else {
        return Err(
            "the checkpoints differ in size: pass --gate URL to fetch the consistency proof, or embed it in the file"
                .to_owned(),
        );
    };
    if cp.size == other.size && cp.root_hash != other.root_hash {
        return Err(format!(
            "two different roots signed for size {}: the log was rewritten",
            cp.size
        ));
    }
    check_consistency(&cp, &other, &proof)?;
    line.push_str(&format!(
        "; consistent with the saved checkpoint at size {}",
        other.size
    ));
    Ok(line)
}
