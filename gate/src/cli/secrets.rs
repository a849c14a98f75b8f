//! `countersign secrets generate`: the secrets several gates share, made
//! once and copied to every gate (or into a secret manager).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use countersign_gate::secrets;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Write a new approval-token secret and receipt signing key into DIR
    /// (mode 0600); never overwrites. Name them in every gate's config under
    /// `secrets:` (`approval_token_file`, `receipt_key_file`, `log_key_file`).
    Generate {
        /// Directory to write into (created with mode 0700 if missing).
        #[arg(long)]
        dir: PathBuf,
    },
}

pub fn run(cmd: SecretsCommand) -> ExitCode {
    match cmd {
        SecretsCommand::Generate { dir } => match secrets::generate(&dir) {
            Ok(_) => {
                let at = |name: &str| dir.join(name).display().to_string();
                outln!(
                    "wrote {} and {}",
                    at(secrets::APPROVAL_TOKEN_FILE),
                    at(secrets::RECEIPT_KEY_FILE)
                );
                outln!("put the same files on every gate and add to each gate's config:");
                outln!("secrets:");
                outln!(
                    "  approval_token_file: {}",
                    at(secrets::APPROVAL_TOKEN_FILE)
                );
                outln!("  receipt_key_file: {}", at(secrets::RECEIPT_KEY_FILE));
                outln!("  log_key_file: {}", at(secrets::LOG_KEY_FILE));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
