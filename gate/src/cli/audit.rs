//! `countersign audit verify` (the full audit of the store, run by whoever
//! holds the database and the keys) and `countersign audit witness` (run
//! by anyone else, with only the public key and the gate's URL).

use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_gate::checkpoints::Checkpointer;
use countersign_gate::config::Config;
use countersign_gate::receipts::{self, ReceiptSigner};
use countersign_store::Store;
use countersign_store::tlog::{Checkpoint, Hash, VerifierKey, open_checkpoint, verify_consistency};

use super::admin::{load_config, open_existing, runtime, store_error};

/// `countersign audit verify`: every workspace named in the configuration
/// and every workspace in the store, audited in full (MACs, chain, tree,
/// checkpoints and their signatures, projection rows). Exits non-zero
/// naming each problem.
pub fn audit_verify(config_path: Option<&Path>, only: Option<String>) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let store = match open_existing(&config).await {
            Ok(s) => s,
            Err(code) => return code,
        };
        eprintln!("checking {}", config.store.describe());
        let names = match only {
            Some(w) => vec![w],
            None => {
                let mut names: Vec<String> =
                    config.workspaces.iter().map(|w| w.name.clone()).collect();
                match store.workspaces().await {
                    Ok(w) => names.extend(w),
                    Err(e) => return store_error(&e),
                }
                names.sort();
                names.dedup();
                names
            }
        };
        let checkpointer = checkpoint_key(&config);
        let mut problems = 0usize;
        for w in names {
            match verify_workspace(store.as_ref(), &config, checkpointer.as_ref(), &w).await {
                Ok(0) => {}
                Ok(n) => problems += n,
                Err(e) => return store_error(&e),
            }
        }
        if problems > 0 {
            outln!("{problems} problem(s) found");
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// The deployment's checkpoint key, from the data directory's receipt key
/// (`None`, with a warning, when this machine does not hold it).
fn checkpoint_key(config: &Config) -> Option<Checkpointer> {
    if !config.data_dir.join(receipts::KEY_FILE).exists() {
        eprintln!(
            "warning: no receipt key in `{}`: checkpoint signatures are not checked",
            config.data_dir.display()
        );
        return None;
    }
    let signer = match ReceiptSigner::load_or_create(&config.data_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: {e}: checkpoint signatures are not checked");
            return None;
        }
    };
    match Checkpointer::new(&config.audit.log_name, signer.seed()) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("warning: audit.log_name: {e}: checkpoint signatures are not checked");
            None
        }
    }
}

/// Audits one workspace, prints its line(s), returns the problem count.
async fn verify_workspace(
    store: &dyn Store,
    config: &Config,
    checkpointer: Option<&Checkpointer>,
    w: &str,
) -> Result<usize, countersign_store::StoreError> {
    let report = store.audit(w).await?;
    let mut found: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    if report.more_problems > 0 {
        found.push(format!("{} more problems not listed", report.more_problems));
    }
    // Every stored checkpoint: its note must open with the deployment's
    // key and say what its row says.
    let mut checkpoints = 0u64;
    let mut next = store.latest_checkpoint(w).await?;
    let had_checkpoints = next.as_ref().is_some_and(|c| c.size > 0);
    while let Some(c) = next {
        checkpoints += 1;
        if let Some(cp) = checkpointer {
            let key = *cp.verifier().public_key();
            match countersign_gate::receipt_proof::open_log_checkpoint(&c.note, w, &key) {
                Ok(body) => {
                    if body.size != c.size || body.root_hash != c.root {
                        found.push(format!(
                            "checkpoint at size {}: the signed note says size {}, which is not the stored row",
                            c.size, body.size
                        ));
                    }
                }
                Err(e) => found.push(format!(
                    "checkpoint at size {}: not signed by the deployment's key: {e}",
                    c.size
                )),
            }
        }
        next = match c.size {
            0 => None,
            size => store.checkpoint_at_or_before(w, size - 1).await?,
        };
    }
    let configured = config.workspace(w).is_some();
    if report.events == 0 && had_checkpoints {
        found.push(format!(
            "the log is missing or empty but checkpoints up to size {} were signed: its events were deleted",
            report.checkpoints.max(1)
        ));
    } else if report.events == 0 && configured {
        eprintln!("note: {w}: configured but has no events yet");
    }
    if found.is_empty() {
        outln!(
            "{w}: ok, {} events, tree root {}, {checkpoints} checkpoints, {} runs, {} keys",
            report.events,
            hex::encode(report.tree.root),
            report.runs,
            report.keys
        );
    } else {
        // The first broken link of the hash chain, in the words `audit
        // verify` has always used for it.
        if let Err(countersign_store::StoreError::ChainBroken { seq, reason, .. }) =
            store.verify_chain(w).await
        {
            outln!("{w}: BROKEN at seq {seq}: {reason}");
        }
        outln!("{w}: FAILED, {} problem(s):", found.len());
        for p in &found {
            outln!("  {w}: {p}");
        }
    }
    Ok(found.len())
}

/// Why the witness stops.
#[derive(Debug)]
enum WitnessError {
    Unreachable(String),
    WrongKey(String),
    Rewritten(String),
    Truncated(String),
    Other(String),
}

impl std::fmt::Display for WitnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) => write!(f, "gate unreachable: {m}"),
            Self::WrongKey(m) => write!(f, "wrong key: {m}"),
            Self::Rewritten(m) => write!(f, "rewritten history: {m}"),
            Self::Truncated(m) => write!(f, "truncated log: {m}"),
            Self::Other(m) => f.write_str(m),
        }
    }
}

/// Reads `--key`: a verifier key string, or a file holding one or the
/// JSON `GET /v1/receipt-keys` serves (its `note_verifier`).
fn read_key(key: &str) -> Result<VerifierKey, WitnessError> {
    if let Ok(k) = VerifierKey::parse(key.trim()) {
        return Ok(k);
    }
    let text = std::fs::read_to_string(key).map_err(|e| {
        WitnessError::Other(format!(
            "--key is neither a verifier key (`name+id+base64`) nor a readable file: {e}"
        ))
    })?;
    let candidate = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(doc) => doc
            .get("note_verifier")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                WitnessError::Other(format!(
                    "`{key}` has no `note_verifier`: save it from GET /v1/receipt-keys"
                ))
            })?,
        Err(_) => text.trim().to_owned(),
    };
    VerifierKey::parse(&candidate)
        .map_err(|e| WitnessError::Other(format!("`{key}`: not a verifier key: {e}")))
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, WitnessError> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| WitnessError::Unreachable(format!("{url}: {e}")))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| WitnessError::Unreachable(format!("{url}: {e}")))?;
    if !status.is_success() {
        return Err(WitnessError::Unreachable(format!(
            "{url} answered {status}: {}",
            body.chars().take(300).collect::<String>()
        )));
    }
    Ok(body)
}

fn decode_hashes(doc: &serde_json::Value) -> Result<Vec<Hash>, WitnessError> {
    doc.get("hashes")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| WitnessError::Other("the proof has no `hashes`".to_owned()))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| B64.decode(s).ok())
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| {
                    WitnessError::Other("a proof hash is not base64 of 32 bytes".to_owned())
                })
        })
        .collect()
}

/// The file in the state directory holding the last verified checkpoint.
fn state_file(dir: &Path, workspace: &str) -> std::path::PathBuf {
    dir.join(format!("{workspace}.checkpoint"))
}

async fn witness_once(
    gate: &str,
    key: &VerifierKey,
    state_dir: &Path,
    workspace: &str,
) -> Result<String, WitnessError> {
    let base = gate.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| WitnessError::Other(e.to_string()))?;
    let note = get_text(&client, &format!("{base}/v1/audit/{workspace}/checkpoint")).await?;
    let (new, _) = open_checkpoint(note.as_bytes(), std::slice::from_ref(key)).map_err(|e| {
        WitnessError::WrongKey(format!(
            "the checkpoint the gate serves does not verify with key `{}`: {e}",
            key.name()
        ))
    })?;
    let path = state_file(state_dir, workspace);
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            open_checkpoint(text.as_bytes(), std::slice::from_ref(key))
                .map(|(c, _)| c)
                .map_err(|e| {
                    WitnessError::WrongKey(format!(
                        "the saved checkpoint `{}` does not verify with this key: {e}",
                        path.display()
                    ))
                })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(WitnessError::Other(format!("{}: {e}", path.display()))),
    };
    if let Some(old) = &old {
        check_growth(&client, base, workspace, old, &new).await?;
    }
    std::fs::create_dir_all(state_dir)
        .map_err(|e| WitnessError::Other(format!("{}: {e}", state_dir.display())))?;
    let tmp = path.with_extension("checkpoint.tmp");
    std::fs::write(&tmp, &note)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| WitnessError::Other(format!("{}: {e}", path.display())))?;
    Ok(match old {
        Some(old) if old.size == new.size => format!("{workspace}: unchanged at size {}", new.size),
        Some(old) => format!(
            "{workspace}: consistent, size {} -> {}, root {}",
            old.size,
            new.size,
            B64.encode(new.root_hash)
        ),
        None => format!(
            "{workspace}: first checkpoint saved, size {}, root {}",
            new.size,
            B64.encode(new.root_hash)
        ),
    })
}

async fn check_growth(
    client: &reqwest::Client,
    base: &str,
    workspace: &str,
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<(), WitnessError> {
    if old.origin != new.origin {
        return Err(WitnessError::Other(format!(
            "the log's origin changed from `{}` to `{}`",
            old.origin, new.origin
        )));
    }
    if new.size < old.size {
        return Err(WitnessError::Truncated(format!(
            "the gate now signs size {} but size {} was seen before",
            new.size, old.size
        )));
    }
    if new.size == old.size {
        if new.root_hash != old.root_hash {
            return Err(WitnessError::Rewritten(format!(
                "two different roots signed for size {}",
                new.size
            )));
        }
        return Ok(());
    }
    let url = format!(
        "{base}/v1/audit/{workspace}/proofs/consistency?from={}&to={}",
        old.size, new.size
    );
    let doc: serde_json::Value = serde_json::from_str(&get_text(client, &url).await?)
        .map_err(|e| WitnessError::Other(format!("{url}: not JSON: {e}")))?;
    let proof = decode_hashes(&doc)?;
    verify_consistency(old.size, new.size, &old.root_hash, &new.root_hash, &proof).map_err(|e| {
        WitnessError::Rewritten(format!(
            "the tree of size {} (root {}) is not a prefix of the tree of size {} (root {}): {e}",
            old.size,
            B64.encode(old.root_hash),
            new.size,
            B64.encode(new.root_hash)
        ))
    })
}

/// `countersign audit witness --gate URL --key K --state DIR [--workspace W]`
pub fn witness(gate: &str, key: &str, state_dir: &Path, workspace: &str) -> ExitCode {
    let key = match read_key(key) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(witness_once(gate, &key, state_dir, workspace)) {
        Ok(line) => {
            outln!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {workspace}: {e}");
            ExitCode::FAILURE
        }
    }
}

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
        let rt = runtime().map_err(|_| "no async runtime".to_owned())?;
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
