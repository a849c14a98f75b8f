//! What the witness and `receipt verify` fetch from a gate, with no key:
//! checkpoints and proofs over HTTP, and why a fetch failed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use countersign_store::tlog::Hash;

/// Why the witness stops.
#[derive(Debug)]
pub(super) enum WitnessError {
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

pub(super) async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, WitnessError> {
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

pub(super) fn decode_hashes(doc: &serde_json::Value) -> Result<Vec<Hash>, WitnessError> {
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
