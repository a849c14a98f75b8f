//! Loading the deployment secrets (approval-token secret, receipt signing
//! key, audit log key) from where the configuration says, and `countersign secrets
//! generate`, which makes them once for every gate of a deployment.
//!
//! Several gates on one PostgreSQL must hold the same bytes: a delivery
//! claimed by one gate carries a link every other gate has to accept, a
//! dashboard session started on one gate is checked by whichever gate the
//! load balancer picks next, and every gate publishes the key receipts are
//! verified with. A gate without a `secrets:` section keeps its own secrets
//! in its data directory, generated on first start.

use std::path::{Path, PathBuf};

use crate::config::{SecretSource, Secrets};

/// File name of the approval-token secret, in a data directory or a
/// directory made by [`generate`].
pub const APPROVAL_TOKEN_FILE: &str = crate::approvals::tokens::SECRET_FILE;
/// File name of the receipt signing key.
pub const RECEIPT_KEY_FILE: &str = crate::receipts::KEY_FILE;
/// File name of the audit log key.
pub const LOG_KEY_FILE: &str = "audit-log-key";

/// Why a secret cannot be had.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{what}: {message}")]
pub struct SecretError {
    /// Which secret, and from where.
    pub what: String,
    /// What is wrong.
    pub message: String,
}

/// The secrets, loaded.
pub struct LoadedSecrets {
    /// The approval-token secret.
    pub approval_token: [u8; 32],
    /// The receipt signing key's seed.
    pub receipt_key: [u8; 32],
}

/// Loads every secret: from the configured file or variable, or from the
/// data directory (created there on first use).
pub fn load(secrets: &Secrets, data_dir: &Path) -> Result<LoadedSecrets, SecretError> {
    Ok(LoadedSecrets {
        approval_token: load_one(&secrets.approval_token, data_dir, APPROVAL_TOKEN_FILE)?,
        receipt_key: load_one(&secrets.receipt_key, data_dir, RECEIPT_KEY_FILE)?,
    })
}

/// Loads one secret of 32 bytes written as 64 hex digits.
pub fn load_one(
    source: &SecretSource,
    data_dir: &Path,
    file_name: &str,
) -> Result<[u8; 32], SecretError> {
    match source {
        SecretSource::DataDir => {
            let path = data_dir.join(file_name);
            if path.exists() {
                read_file(&path)
            } else {
                create_in(data_dir, file_name)
            }
        }
        // A configured file must exist: creating it would give each gate
        // its own secret, the very thing the setting is there to prevent.
        SecretSource::File(path) => read_file(path),
        SecretSource::Env(var) => {
            let what = format!("environment variable `{var}`");
            let text = std::env::var(var).map_err(|_| SecretError {
                what: what.clone(),
                message: "is not set".to_owned(),
            })?;
            parse_hex(&text).ok_or(SecretError {
                what,
                message: "expected 64 hex digits".to_owned(),
            })
        }
    }
}

/// Whether the secret comes from somewhere that exists now (without
/// creating anything).
pub fn is_present(source: &SecretSource, data_dir: &Path, file_name: &str) -> bool {
    match source {
        SecretSource::DataDir => data_dir.join(file_name).exists(),
        SecretSource::File(p) => p.exists(),
        SecretSource::Env(v) => std::env::var_os(v).is_some(),
    }
}

fn read_file(path: &Path) -> Result<[u8; 32], SecretError> {
    let what = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SecretError {
        what: what.clone(),
        message: e.to_string(),
    })?;
    parse_hex(&text).ok_or(SecretError {
        what,
        message: "expected 64 hex digits".to_owned(),
    })
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

fn create_in(dir: &Path, file_name: &str) -> Result<[u8; 32], SecretError> {
    let path = dir.join(file_name);
    let err = |message: String| SecretError {
        what: path.display().to_string(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let mut bytes = [0u8; 32];
    crate::keys::random_bytes(&mut bytes).map_err(err)?;
    crate::receipts::write_private_file(&path, &hex::encode(bytes))
        .map_err(|e| err(e.to_string()))?;
    Ok(bytes)
}

/// `countersign secrets generate --dir DIR`: writes a fresh approval-token
/// secret and receipt signing key into `dir` (mode 0600, the directory
/// 0700 when created), and returns their paths. Refuses if either file
/// exists: overwriting a deployment's secret would void every link and
/// receipt key in use.
pub fn generate(dir: &Path) -> Result<Vec<PathBuf>, SecretError> {
    let names = [APPROVAL_TOKEN_FILE, RECEIPT_KEY_FILE, LOG_KEY_FILE];
    for name in names {
        let path = dir.join(name);
        if path.exists() {
            return Err(SecretError {
                what: path.display().to_string(),
                message: "exists already; secrets are never overwritten (remove it first if you mean to replace it on every gate)".to_owned(),
            });
        }
    }
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SecretError {
                what: dir.display().to_string(),
                message: e.to_string(),
            })?;
    }
    let mut written = Vec::new();
    for name in names {
        create_in(dir, name)?;
        written.push(dir.join(name));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failing test")]

    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn generated_secrets_are_private_never_overwritten_and_load_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("secrets");
        let written = generate(&out).unwrap();
        assert_eq!(written.len(), 3);
        for p in &written {
            let mode = std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", p.display());
        }
        let before = std::fs::read(&written[0]).unwrap();
        let again = generate(&out).unwrap_err();
        assert!(again.message.contains("never overwritten"), "{again}");
        assert_eq!(std::fs::read(&written[0]).unwrap(), before);

        let secrets = Secrets {
            approval_token: SecretSource::File(out.join(APPROVAL_TOKEN_FILE)),
            receipt_key: SecretSource::File(out.join(RECEIPT_KEY_FILE)),
            log_key: SecretSource::File(out.join(LOG_KEY_FILE)),
        };
        // Two gates with their own data directories read the same bytes.
        let a = load(&secrets, &dir.path().join("a")).unwrap();
        let b = load(&secrets, &dir.path().join("b")).unwrap();
        assert_eq!(a.approval_token, b.approval_token);
        assert_eq!(a.receipt_key, b.receipt_key);
        assert_ne!(a.approval_token, a.receipt_key);
        assert!(
            !dir.path().join("a").exists(),
            "nothing written to the data dir"
        );
    }

    #[test]
    fn a_configured_file_that_is_missing_or_malformed_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = SecretSource::File(dir.path().join("nope"));
        assert!(load_one(&missing, dir.path(), "x").is_err());
        assert!(!dir.path().join("x").exists());
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "not hex").unwrap();
        let e = load_one(&SecretSource::File(bad), dir.path(), "x").unwrap_err();
        assert!(e.message.contains("64 hex digits"), "{e}");
    }

    #[test]
    fn without_a_setting_the_data_dir_keeps_its_own_secret() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(&Secrets::default(), dir.path()).unwrap();
        let second = load(&Secrets::default(), dir.path()).unwrap();
        assert_eq!(first.approval_token, second.approval_token);
        assert!(dir.path().join(APPROVAL_TOKEN_FILE).exists());
        assert!(dir.path().join(RECEIPT_KEY_FILE).exists());
    }
}
