//! Signed checkpoints of every workspace's audit log: the gate's side of
//! the verifiable log.
//!
//! A checkpoint is a C2SP `tlog-checkpoint` body (origin, tree size, root
//! hash) in a C2SP `signed-note`, signed with the deployment's Ed25519
//! receipt key under the note key name `audit.log_name` (so every gate of
//! a deployment signs with the same key name and id). Each workspace is
//! its own log, with the origin `<log_name>/<workspace>`.
//!
//! Before it signs, the gate checks the events the new checkpoint adds
//! ([`Store::verify_extension`]: their MACs, links and the stored root)
//! and that the stored tree still starts with what it signed last (the
//! last saved note opens with the deployment's key and its root is the
//! stored tree's at that size). It never signs a tree that fails either
//! check: it logs an ERROR and signs nothing.
//!
//! What it must not do: sign a size the store has not reported durable
//! (only `tree_head`, read after commit, is signed), or push a checkpoint
//! before it is saved.

use chrono::{DateTime, Utc};
use countersign_store::tlog::{
    Checkpoint, CheckpointError, KeyError, SignerKey, VerifierKey, sign_checkpoint,
};
use countersign_store::{MAX_EXTENSION, Store, StoreError, StoredCheckpoint};
use tokio::sync::Mutex;

pub mod worker;

/// The webhook event type of a pushed checkpoint.
pub const CHECKPOINT_EVENT: &str = "audit.checkpoint";

/// Why no checkpoint was signed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CheckpointFailure {
    /// The store failed or found the log tampered with.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored tree does not extend what the gate signed before.
    #[error("workspace `{workspace}`: {message}")]
    Rewritten {
        /// The workspace.
        workspace: String,
        /// What differs.
        message: String,
    },
    /// Signing failed (an invalid origin).
    #[error("cannot sign a checkpoint: {0}")]
    Sign(#[from] CheckpointError),
}

impl CheckpointFailure {
    /// Whether the log itself failed a check (an ERROR, a security matter),
    /// as opposed to the store being unreachable.
    pub fn is_tampering(&self) -> bool {
        matches!(
            self,
            Self::Rewritten { .. }
                | Self::Store(
                    StoreError::AuditFailed { .. }
                        | StoreError::AuditMismatch { .. }
                        | StoreError::ChainBroken { .. }
                        | StoreError::Corrupt { .. }
                )
        )
    }
}

/// Signs, checks and saves checkpoints; one per gate.
pub struct Checkpointer {
    log_name: String,
    signer: SignerKey,
    /// One signer at a time, so the background loop and a receipt asking
    /// for a fresh checkpoint do not sign the same size twice.
    lock: Mutex<()>,
}

impl Checkpointer {
    /// The checkpointer of log `log_name`, signing with the receipt key's seed.
    pub fn new(log_name: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        Ok(Self {
            log_name: log_name.to_owned(),
            signer: SignerKey::from_seed(log_name, seed)?,
            lock: Mutex::new(()),
        })
    }

    /// The origin line of a workspace's log: `<log_name>/<workspace>`.
    pub fn origin(&self, workspace: &str) -> String {
        format!("{}/{workspace}", self.log_name)
    }

    /// The signed-note verifier key of the deployment
    /// (`<log_name>+<key id>+<base64(0x01 || public key)>`).
    pub fn verifier(&self) -> VerifierKey {
        self.signer.verifier()
    }

    /// The latest saved checkpoint, after signing a new one when the tree
    /// grew past it (at most [`MAX_EXTENSION`] events further per call; a
    /// caller that needs more calls again). `None` for a workspace with no
    /// events and no checkpoint.
    pub async fn advance(
        &self,
        store: &dyn Store,
        workspace: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredCheckpoint>, CheckpointFailure> {
        let _guard = self.lock.lock().await;
        let latest = store.latest_checkpoint(workspace).await?;
        let head = store.tree_head(workspace).await?;
        let from = latest.as_ref().map_or(0, |c| c.size);
        if head.size < from {
            return Err(CheckpointFailure::Rewritten {
                workspace: workspace.to_owned(),
                message: format!(
                    "the log has {} events but a checkpoint was signed at size {from}: events were deleted",
                    head.size
                ),
            });
        }
        if head.size == from {
            return Ok(latest);
        }
        let to = head.size.min(from + MAX_EXTENSION);
        let ext = store.verify_extension(workspace, from, to).await?;
        if let Some(last) = &latest {
            self.check_signed(workspace, last, &ext.from.root)?;
        }
        let checkpoint = Checkpoint::new(self.origin(workspace), ext.to.size, ext.to.root);
        let note = sign_checkpoint(&checkpoint, &[&self.signer])?;
        let stored = StoredCheckpoint {
            workspace: workspace.to_owned(),
            size: ext.to.size,
            root: ext.to.root,
            note,
            created_at: now,
        };
        store.save_checkpoint(stored.clone()).await?;
        Ok(Some(stored))
    }

    /// A saved checkpoint must open with the deployment's key, say what its
    /// row says, and match the stored tree at its size.
    fn check_signed(
        &self,
        workspace: &str,
        saved: &StoredCheckpoint,
        stored_root: &countersign_store::tlog::Hash,
    ) -> Result<(), CheckpointFailure> {
        let rewritten = |message: String| CheckpointFailure::Rewritten {
            workspace: workspace.to_owned(),
            message,
        };
        // Opened with the key under the name the note was signed with: a
        // renamed log (a new public URL) keeps its earlier checkpoints.
        let verifying = *self.signer.verifier().public_key();
        let cp = crate::receipt_proof::open_log_checkpoint(&saved.note, workspace, &verifying)
            .map_err(|e| {
                rewritten(format!(
                    "the saved checkpoint at size {} does not verify with the deployment's key: {e}",
                    saved.size
                ))
            })?;
        if cp.size != saved.size || cp.root_hash != saved.root {
            return Err(rewritten(format!(
                "the saved checkpoint row at size {} differs from its signed note",
                saved.size
            )));
        }
        if cp.root_hash != *stored_root {
            return Err(rewritten(format!(
                "the stored tree at size {} no longer has the root signed there: history was rewritten",
                saved.size
            )));
        }
        Ok(())
    }

    /// A saved checkpoint covering at least `size` events: the latest when
    /// it does, else one signed now.
    pub async fn covering(
        &self,
        store: &dyn Store,
        workspace: &str,
        size: u64,
        now: DateTime<Utc>,
    ) -> Result<StoredCheckpoint, CheckpointFailure> {
        loop {
            let latest = self.advance(store, workspace, now).await?;
            match latest {
                Some(c) if c.size >= size => return Ok(c),
                Some(c) if store.tree_head(workspace).await?.size > c.size => {}
                _ => {
                    return Err(CheckpointFailure::Store(StoreError::TreeRange {
                        message: format!("no checkpoint can cover {size} events yet"),
                    }));
                }
            }
        }
    }
}
