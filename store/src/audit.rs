//! The full audit of a workspace, shared by both backends: the backend
//! streams what it stores (events in seq order, tree hashes in index order,
//! checkpoints, run and key rows) into an [`Auditor`], which recomputes
//! everything from the events and lists every difference.
//!
//! Checked: every event's MAC (with the log key the store was opened with),
//! the linear hash chain and the recorded head (kept as an extra check: a
//! rewrite with recomputed hashes passes it but not the MACs), every stored
//! tree hash against the tree recomputed from the events, every stored
//! checkpoint's root against the tree at its size (a checkpoint larger than
//! the log means events were deleted), and every run, approval and API key
//! row against its projection (see [`crate::projection`]).

use crate::chain::{GENESIS_HASH, RawEvent, chain_hash, event_body};
use crate::error::{ChainBreak, StoreError};
use crate::log_key::LogKey;
use crate::model::{
    ApiKeyRecord, AuditProblem, AuditReport, AuditSubject, Event, Run, StoredCheckpoint, TreeHead,
};
use crate::projection::{self, DeliveryFact, ProjectedKey};
use crate::tlog::Hash;
use crate::tree::Frontier;
use std::collections::{BTreeMap, HashSet};

/// Most problems one report lists; the rest are counted.
pub const MAX_AUDIT_PROBLEMS: usize = 1000;

/// Events (and tree hashes) a backend reads per query while auditing.
pub(crate) const AUDIT_PAGE: u32 = 2000;

pub(crate) struct Auditor<'k> {
    workspace: String,
    key: &'k LogKey,
    expected_seq: u64,
    last_hash: String,
    first_break: Option<(u64, ChainBreak)>,
    frontier: Frontier,
    tree_hashes: Vec<Hash>,
    tree_checked: u64,
    checkpoints: Vec<StoredCheckpoint>,
    next_checkpoint: usize,
    run_events: BTreeMap<String, Vec<Event>>,
    keys: BTreeMap<String, ProjectedKey>,
    problems: Vec<AuditProblem>,
    more_problems: u64,
    runs_checked: u64,
    keys_checked: u64,
}

impl<'k> Auditor<'k> {
    pub(crate) fn new(
        workspace: &str,
        key: &'k LogKey,
        mut checkpoints: Vec<StoredCheckpoint>,
    ) -> Self {
        checkpoints.sort_by_key(|c| c.size);
        let mut auditor = Self {
            workspace: workspace.to_owned(),
            key,
            expected_seq: 1,
            last_hash: GENESIS_HASH.to_owned(),
            first_break: None,
            frontier: Frontier::empty(),
            tree_hashes: Vec::new(),
            tree_checked: 0,
            checkpoints,
            next_checkpoint: 0,
            run_events: BTreeMap::new(),
            keys: BTreeMap::new(),
            problems: Vec::new(),
            more_problems: 0,
            runs_checked: 0,
            keys_checked: 0,
        };
        auditor.check_checkpoints_at_size();
        auditor
    }

    fn problem(&mut self, subject: AuditSubject, column: Option<String>, message: String) {
        if self.problems.len() < MAX_AUDIT_PROBLEMS {
            self.problems.push(AuditProblem {
                subject,
                column,
                message,
            });
        } else {
            self.more_problems += 1;
        }
    }

    fn chain_break(&mut self, seq: u64, reason: ChainBreak) {
        self.problem(AuditSubject::Event { seq }, None, reason.to_string());
        if self.first_break.is_none() {
            self.first_break = Some((seq, reason));
        }
    }

    /// Checks the next stored event (in seq order).
    pub(crate) fn push_event(&mut self, raw: &RawEvent) -> Result<(), StoreError> {
        if raw.seq != self.expected_seq {
            self.chain_break(
                self.expected_seq,
                ChainBreak::SeqGap {
                    expected: self.expected_seq,
                    found: raw.seq,
                },
            );
        }
        if raw.prev_hash != self.last_hash {
            self.chain_break(
                raw.seq,
                ChainBreak::PrevHashMismatch {
                    expected: self.last_hash.clone(),
                    found: raw.prev_hash.clone(),
                },
            );
        }
        // An unreadable event still gets a leaf (of its stored text), so
        // the rest of the tree is still compared.
        let body = match projection::check_event(&self.workspace, self.key, raw) {
            Ok((event, body)) => {
                self.project(event);
                body
            }
            Err((column, message)) => {
                let body = raw.body(&self.workspace).unwrap_or_else(|| {
                    event_body(
                        &self.workspace,
                        raw.seq,
                        &raw.kind,
                        raw.run_id.as_deref(),
                        &raw.at,
                        &raw.data,
                        &raw.prev_hash,
                    )
                });
                // A hash mismatch is reported as a chain break below.
                if column != "events.hash" {
                    self.problem(AuditSubject::Event { seq: raw.seq }, Some(column), message);
                }
                body
            }
        };
        let computed = chain_hash(&raw.prev_hash, &body);
        if computed != raw.hash {
            self.chain_break(
                raw.seq,
                ChainBreak::HashMismatch {
                    computed,
                    stored: raw.hash.clone(),
                },
            );
        }
        self.expected_seq = raw.seq + 1;
        self.last_hash.clone_from(&raw.hash);
        let new = self.frontier.append(body.as_bytes())?;
        self.tree_hashes.extend(new.hashes);
        self.check_checkpoints_at_size();
        Ok(())
    }

    fn project(&mut self, event: Event) {
        if let Some(run_id) = event.run_id.clone() {
            self.run_events.entry(run_id).or_default().push(event);
        } else if let Err(message) = projection::apply_key_event(&mut self.keys, &event) {
            self.problem(AuditSubject::Event { seq: event.seq }, None, message);
        }
    }

    fn check_checkpoints_at_size(&mut self) {
        while let Some(c) = self.checkpoints.get(self.next_checkpoint) {
            if c.size != self.frontier.size() {
                break;
            }
            let (size, stored) = (c.size, c.root);
            let root = self.frontier.root();
            if stored != root {
                self.problem(
                    AuditSubject::Checkpoint { size },
                    None,
                    format!(
                        "signed root {} but the log's tree at size {size} has root {}",
                        hex::encode(stored),
                        hex::encode(root)
                    ),
                );
            }
            self.next_checkpoint += 1;
        }
    }

    /// After the last event: compares with the recorded head (`None` when
    /// the workspace has none) and reports checkpoints beyond the log.
    pub(crate) fn finish_events(&mut self, head: Option<(u64, String)>) {
        let last_seq = self.expected_seq - 1;
        match head {
            Some((head_seq, _)) if head_seq > last_seq => self.chain_break(
                last_seq + 1,
                ChainBreak::Truncated { head_seq, last_seq },
            ),
            Some((head_seq, head_hash)) if head_seq == last_seq && head_hash != self.last_hash => {
                let last_hash = self.last_hash.clone();
                self.chain_break(
                    last_seq,
                    ChainBreak::HeadMismatch {
                        head_hash,
                        last_hash,
                    },
                );
            }
            Some((head_seq, _)) if head_seq < last_seq => self.chain_break(
                head_seq + 1,
                ChainBreak::Unreadable {
                    message: format!(
                        "events after the recorded head (seq {head_seq}) were added outside the store"
                    ),
                },
            ),
            None if last_seq > 0 => self.chain_break(
                1,
                ChainBreak::Unreadable {
                    message: "events exist but no head was recorded".to_owned(),
                },
            ),
            _ => {}
        }
        let beyond: Vec<u64> = self.checkpoints[self.next_checkpoint..]
            .iter()
            .map(|c| c.size)
            .collect();
        for size in beyond {
            self.problem(
                AuditSubject::Checkpoint { size },
                None,
                format!(
                    "a checkpoint was signed at size {size} but the log has only {last_seq} events: events were deleted or truncated"
                ),
            );
        }
        self.next_checkpoint = self.checkpoints.len();
    }

    /// Compares the stored tree hashes, given in index order, page by page.
    pub(crate) fn push_tree_hashes(&mut self, stored: &[(u64, Hash)]) {
        for (index, hash) in stored {
            let expected = usize::try_from(*index)
                .ok()
                .and_then(|i| self.tree_hashes.get(i));
            match expected {
                Some(e) if e == hash => {}
                Some(e) => {
                    let message = format!(
                        "stored {} but the events give {}",
                        hex::encode(hash),
                        hex::encode(e)
                    );
                    self.problem(AuditSubject::TreeHash { index: *index }, None, message);
                }
                None => self.problem(
                    AuditSubject::TreeHash { index: *index },
                    None,
                    "stored beyond the tree the events make".to_owned(),
                ),
            }
            self.tree_checked += 1;
        }
    }

    /// After the last tree hash: reports missing ones.
    pub(crate) fn finish_tree(&mut self) {
        let expected = self.tree_hashes.len() as u64;
        if self.tree_checked < expected {
            self.problem(
                AuditSubject::Workspace,
                None,
                format!(
                    "{} of the {expected} tree hashes the events make are not stored",
                    expected - self.tree_checked
                ),
            );
        }
    }

    /// Compares every stored run (with its approvals) with its projection.
    pub(crate) fn check_runs(&mut self, stored: Vec<Run>) {
        let mut seen = HashSet::new();
        for run in stored {
            self.runs_checked += 1;
            let run_id = run.proposal.run_id.clone();
            seen.insert(run_id.clone());
            let Some(events) = self.run_events.get(&run_id) else {
                self.problem(
                    AuditSubject::Run { run_id },
                    None,
                    "the row has no authenticated events in the log".to_owned(),
                );
                continue;
            };
            match projection::project_run(events) {
                Err(message) => self.problem(AuditSubject::Run { run_id }, None, message),
                Ok(projected) => {
                    for (column, message) in projection::run_differences(&run, &projected) {
                        let subject = approval_subject(&run_id, &column).unwrap_or_else(|| {
                            AuditSubject::Run {
                                run_id: run_id.clone(),
                            }
                        });
                        self.problem(subject, Some(column), message);
                    }
                }
            }
        }
        let missing: Vec<String> = self
            .run_events
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for run_id in missing {
            self.problem(
                AuditSubject::Run { run_id },
                None,
                "the log records this run but its row is missing".to_owned(),
            );
        }
    }

    /// Compares every stored delivery row (run id and its deciding
    /// columns) with the list in its run's `approval_requested` event:
    /// an edited, added or deleted delivery is named. Runs whose event
    /// predates the list are skipped (nothing to compare with).
    pub(crate) fn check_deliveries(&mut self, stored: Vec<(String, DeliveryFact)>) {
        let mut by_run: BTreeMap<String, Vec<DeliveryFact>> = BTreeMap::new();
        for (run_id, row) in stored {
            by_run.entry(run_id).or_default().push(row);
        }
        let mut logged_runs = Vec::new();
        for (run_id, events) in &self.run_events {
            match projection::project_deliveries(events) {
                Ok(Some(list)) => logged_runs.push((run_id.clone(), list)),
                Ok(None) => {}
                // project_run already names an unreadable approval_requested.
                Err(_) => {}
            }
        }
        for (run_id, logged) in logged_runs {
            let rows = by_run.remove(&run_id).unwrap_or_default();
            for row in &rows {
                let subject = AuditSubject::Delivery {
                    run_id: run_id.clone(),
                    delivery_id: row.delivery_id.clone(),
                };
                match logged.iter().find(|d| d.delivery_id == row.delivery_id) {
                    None => self.problem(
                        subject,
                        None,
                        "the row is not among the run's deliveries in the log".to_owned(),
                    ),
                    Some(entry) => {
                        for (column, message) in projection::delivery_differences(row, entry) {
                            self.problem(subject.clone(), Some(column), message);
                        }
                    }
                }
            }
            for entry in logged
                .iter()
                .filter(|d| !rows.iter().any(|r| r.delivery_id == d.delivery_id))
            {
                self.problem(
                    AuditSubject::Delivery {
                        run_id: run_id.clone(),
                        delivery_id: entry.delivery_id.clone(),
                    },
                    None,
                    "the log lists this delivery but its row is missing".to_owned(),
                );
            }
        }
        // Rows of runs the log lists no deliveries for: a run from before
        // the list (fine) or rows a database writer added to a run that
        // has a list (caught above) or to no run at all.
        for (run_id, rows) in by_run {
            if self.run_events.contains_key(&run_id) {
                continue;
            }
            for row in rows {
                self.problem(
                    AuditSubject::Delivery {
                        run_id: run_id.clone(),
                        delivery_id: row.delivery_id,
                    },
                    None,
                    "the row belongs to a run the log does not record".to_owned(),
                );
            }
        }
    }

    /// Compares every stored key row (with its `key_hash`) with its
    /// projection.
    pub(crate) fn check_keys(&mut self, stored: Vec<(ApiKeyRecord, String)>) {
        let mut seen = HashSet::new();
        for (key, key_hash) in stored {
            self.keys_checked += 1;
            seen.insert(key.key_id.clone());
            let Some(projected) = self.keys.get(&key.key_id).cloned() else {
                self.problem(
                    AuditSubject::Key {
                        key_id: key.key_id.clone(),
                    },
                    None,
                    "the row has no key_created event in the log".to_owned(),
                );
                continue;
            };
            for (column, message) in projection::key_differences(&key, &key_hash, &projected) {
                self.problem(
                    AuditSubject::Key {
                        key_id: key.key_id.clone(),
                    },
                    Some(column),
                    message,
                );
            }
        }
        let missing: Vec<String> = self
            .keys
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for key_id in missing {
            self.problem(
                AuditSubject::Key { key_id },
                None,
                "the log records this key but its row is missing".to_owned(),
            );
        }
    }

    /// The first chain break, as [`Store::verify_chain`](crate::Store::verify_chain) reports it.
    pub(crate) fn first_break(&self) -> Option<StoreError> {
        self.first_break
            .as_ref()
            .map(|(seq, reason)| StoreError::ChainBroken {
                workspace: self.workspace.clone(),
                seq: *seq,
                reason: reason.clone(),
            })
    }

    pub(crate) fn report(self) -> AuditReport {
        AuditReport {
            tree: TreeHead {
                size: self.frontier.size(),
                root: self.frontier.root(),
            },
            events: self.expected_seq - 1,
            head_hash: self.last_hash,
            checkpoints: self.checkpoints.len() as u64,
            runs: self.runs_checked,
            keys: self.keys_checked,
            workspace: self.workspace,
            problems: self.problems,
            more_problems: self.more_problems,
        }
    }
}

/// `approvals[3].decision` is about approval row 3 of the run.
fn approval_subject(run_id: &str, column: &str) -> Option<AuditSubject> {
    let rest = column.strip_prefix("approvals[")?;
    let n = rest.split(']').next()?.parse().ok()?;
    Some(AuditSubject::Approval {
        run_id: run_id.to_owned(),
        answer_no: n,
    })
}

/// During an upgrade's backfill, the old chain is checked on the way (an
/// extra check): a break is
/// logged, and the events are authenticated as they stand all the same.
pub(crate) fn warn_broken(e: &StoreError) {
    tracing::warn!(
        error = %e,
        "audit log upgrade: the existing hash chain is broken; events are authenticated as they stand"
    );
}

/// What `verify_chain` returns for a finished audit: the first chain break,
/// else every other problem, else the chain's summary.
pub(crate) fn verdict(
    first_break: Option<StoreError>,
    report: AuditReport,
) -> Result<crate::model::ChainReport, StoreError> {
    if let Some(e) = first_break {
        return Err(e);
    }
    if !report.is_ok() {
        return Err(StoreError::AuditFailed {
            workspace: report.workspace,
            problems: report.problems,
        });
    }
    Ok(crate::model::ChainReport {
        events: report.events,
        head_hash: report.head_hash,
    })
}
