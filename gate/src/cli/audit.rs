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
use countersign_store::tlog::{Checkpoint, VerifierKey, open_checkpoint, verify_consistency};

use super::admin::{load_config, open_existing, runtime, store_error};
use super::fetch::{WitnessError, decode_hashes, get_text};

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
