//! Checking a stretch of a workspace's log before a checkpoint covers it:
//! the events after the last signed size are authenticated and, appended
//! to the stored frontier, give the stored root. Shared by both backends.

use crate::audit::MAX_AUDIT_PROBLEMS;
use crate::chain::RawEvent;
use crate::error::StoreError;
use crate::log_key::LogKey;
use crate::model::{AuditProblem, AuditSubject, TreeExtension, TreeHead};
use crate::projection;
use crate::tree::Frontier;

/// Most events one [`crate::Store::verify_extension`] call reads: the
/// checkpoint signer catches up in steps of this size.
pub const MAX_EXTENSION: u64 = 100_000;

/// Walks the events after the frontier's size and collects every problem.
pub(crate) struct ExtensionCheck<'k> {
    workspace: String,
    key: &'k LogKey,
    from: TreeHead,
    frontier: Frontier,
    last_hash: Option<String>,
    problems: Vec<AuditProblem>,
}

impl<'k> ExtensionCheck<'k> {
    /// Starts from the stored frontier at the earlier size.
    pub(crate) fn new(workspace: &str, key: &'k LogKey, frontier: Frontier) -> Self {
        let from = TreeHead {
            size: frontier.size(),
            root: frontier.root(),
        };
        Self {
            workspace: workspace.to_owned(),
            key,
            from,
            frontier,
            last_hash: None,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, seq: u64, column: &str, message: String) {
        if self.problems.len() < MAX_AUDIT_PROBLEMS {
            self.problems.push(AuditProblem {
                subject: AuditSubject::Event { seq },
                column: Some(column.to_owned()),
                message,
            });
        }
    }

    /// The next event, in seq order.
    pub(crate) fn push(&mut self, raw: &RawEvent) -> Result<(), StoreError> {
        let expected = self.frontier.size() + 1;
        if raw.seq != expected {
            self.problem(
                expected,
                "events.seq",
                format!("expected seq {expected}, found {}", raw.seq),
            );
        }
        if let Some(last) = &self.last_hash
            && *last != raw.prev_hash
        {
            let message = format!("prev_hash {} does not link to {last}", raw.prev_hash);
            self.problem(raw.seq, "events.prev_hash", message);
        }
        // The signer needs the event authentic and its leaf, not its
        // decoded content: an authentic event is one the gate wrote.
        let body = match projection::authenticate(&self.workspace, self.key, raw) {
            Ok(authentic) => authentic.body,
            Err((column, message)) => {
                self.problem(raw.seq, &column, message);
                raw.body(&self.workspace)
                    .unwrap_or_else(|| raw.data.clone())
            }
        };
        self.frontier.append(body.as_bytes())?;
        self.last_hash = Some(raw.hash.clone());
        Ok(())
    }

    /// Compares with the stored root at the later size.
    pub(crate) fn finish(mut self, stored: TreeHead) -> Result<TreeExtension, StoreError> {
        let computed = TreeHead {
            size: self.frontier.size(),
            root: self.frontier.root(),
        };
        if computed.size != stored.size {
            self.problems.push(AuditProblem {
                subject: AuditSubject::Workspace,
                column: None,
                message: format!(
                    "{} events read but the tree has {} leaves",
                    computed.size, stored.size
                ),
            });
        } else if computed.root != stored.root {
            self.problems.push(AuditProblem {
                subject: AuditSubject::Workspace,
                column: None,
                message: format!(
                    "stored root {} at size {} is not the root of the events ({})",
                    hex::encode(stored.root),
                    stored.size,
                    hex::encode(computed.root)
                ),
            });
        }
        if !self.problems.is_empty() {
            return Err(StoreError::AuditFailed {
                workspace: self.workspace,
                problems: self.problems,
            });
        }
        Ok(TreeExtension {
            from: self.from,
            to: computed,
        })
    }
}
