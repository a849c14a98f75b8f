//! Where a gate's deployment secrets come from: the `secrets:` section.
//!
//! Every secret follows one scheme, `NAME_file: PATH` or `NAME_env: VAR`
//! (64 hex digits either way), so a new secret is one more name, not a new
//! syntax. With no entry a secret lives in the
//! data directory, generated on first start: right for a single gate, wrong
//! for several gates of one deployment, which must all hold the same bytes.

use std::path::PathBuf;

use serde::Deserialize;

use super::error::ConfigError;

/// Where one secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The gate's data directory, created there on first use (one gate).
    DataDir,
    /// A file holding 64 hex digits.
    File(PathBuf),
    /// An environment variable holding 64 hex digits.
    Env(String),
}

/// The secrets every gate of a deployment must share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// Approval links, dashboard sessions and CSRF tokens are MACs under it.
    pub approval_token: SecretSource,
    /// The Ed25519 seed receipts are signed with.
    pub receipt_key: SecretSource,
    /// The audit log key every event's MAC is made with (the store's
    /// `LogKey`).
    pub log_key: SecretSource,
}

impl Default for Secrets {
    fn default() -> Self {
        Self {
            approval_token: SecretSource::DataDir,
            receipt_key: SecretSource::DataDir,
            log_key: SecretSource::DataDir,
        }
    }
}

/// The `secrets:` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecrets {
    approval_token_file: Option<PathBuf>,
    approval_token_env: Option<String>,
    receipt_key_file: Option<PathBuf>,
    receipt_key_env: Option<String>,
    log_key_file: Option<PathBuf>,
    log_key_env: Option<String>,
}

impl RawSecrets {
    /// Checks the section; `rel` resolves a relative file against the
    /// config file's directory.
    pub(super) fn resolve(self, rel: impl Fn(PathBuf) -> PathBuf) -> Result<Secrets, ConfigError> {
        let one = |name: &str, file: Option<PathBuf>, env: Option<String>| match (file, env) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid(format!(
                "secrets: give `{name}_file` or `{name}_env`, not both"
            ))),
            (Some(f), None) => Ok(SecretSource::File(rel(f))),
            (None, Some(v)) if !v.is_empty() => Ok(SecretSource::Env(v)),
            // A `secrets:` section is there so that gates share their
            // secrets: one left in each data directory would silently break
            // links (or receipts) across gates.
            _ => Err(ConfigError::Invalid(format!(
                "secrets: `{name}_file` or `{name}_env` is missing; every gate of a deployment needs the same {name} (make one with `countersign secrets generate --dir DIR`)"
            ))),
        };
        Ok(Secrets {
            approval_token: one(
                "approval_token",
                self.approval_token_file,
                self.approval_token_env,
            )?,
            receipt_key: one("receipt_key", self.receipt_key_file, self.receipt_key_env)?,
            log_key: one("log_key", self.log_key_file, self.log_key_env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failing test")]

    use std::path::Path;

    use super::super::Config;
    use super::*;

    fn parse(yaml: &str) -> Result<Config, ConfigError> {
        Config::parse(yaml, Path::new("/etc/cs"))
    }

    #[test]
    fn secrets_come_from_files_or_variables_and_both_are_needed() {
        let c =
            parse("secrets:\n  approval_token_file: s/token\n  receipt_key_env: CS_RECEIPT_KEY\n  log_key_file: /k/log\n")
                .unwrap();
        assert_eq!(
            c.secrets,
            Secrets {
                approval_token: SecretSource::File(PathBuf::from("/etc/cs/s/token")),
                receipt_key: SecretSource::Env("CS_RECEIPT_KEY".to_owned()),
                log_key: SecretSource::File(PathBuf::from("/k/log")),
            }
        );
        assert_eq!(parse("{}").unwrap().secrets, Secrets::default());
        let e = parse("secrets:\n  approval_token_file: a\n").unwrap_err();
        assert!(e.to_string().contains("receipt_key_file"), "{e}");
        let e = parse(
            "secrets:\n  approval_token_file: a\n  approval_token_env: B\n  receipt_key_env: C\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        assert!(
            parse("secrets:\n  audit_key_file: x\n").is_err(),
            "unknown names refused"
        );
    }

    #[test]
    fn the_readme_sample_for_several_gates_is_a_valid_config() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("# gate-1.yaml").unwrap();
        let block = &readme[start..];
        let block = &block[..block.find("```").unwrap()];
        let c = parse(block).unwrap();
        assert!(matches!(c.secrets.approval_token, SecretSource::File(_)));
        assert!(
            matches!(c.store, super::super::StoreUrl::Postgres(ref u) if u.contains("sslmode=verify-full"))
        );
        assert_eq!(c.delivery.lease, std::time::Duration::from_secs(120));
    }
}
