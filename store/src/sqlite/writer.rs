//! The SQLite writer thread: group commit.
//!
//! One thread owns the only write connection. Callers send commands over a
//! channel; the thread takes everything queued (up to [`MAX_BATCH`]), runs
//! the commands in one transaction, COMMITs (one fsync for the whole batch),
//! and only then answers each caller. An `Ok` therefore always means
//! committed and synced.
//!
//! A failing command must not take the others down with it, nor leave half
//! of its own writes behind. The common failures (a conflict, a rule refused)
//! are detected before the command writes anything; those cost nothing
//! extra: the connection's change counter tells that the failed command left
//! no trace, and the batch goes on. Only when a command fails (or panics)
//! after it wrote something is the whole transaction rolled back, and the
//! batch run again with a SAVEPOINT around each command, so the failing one
//! is undone alone. Commands are therefore written to be run more than once
//! (`Fn`, not `FnOnce`); the results of an abandoned attempt are discarded.
//!
//! WAL checkpoints are not run inside COMMIT: the writer connection has
//! `wal_autocheckpoint` off and a companion thread (see [`checkpoint`])
//! copies pages back into the database from its own connection. Every
//! [`TOP_UP_EVERY`] commits, after answering its callers, the writer runs a
//! short checkpoint of its own so the WAL can start over (see there).

use super::checkpoint::{self, Checkpointer};
use super::log::{LogState, WriteConn};
use crate::error::StoreError;
use crate::model::BatchStats;
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most commands committed in one transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// Commits between the writer's own checkpoint top-ups (see [`checkpoint`]).
const TOP_UP_EVERY: u32 = 16;

/// Upper bounds of the batch-size histogram buckets.
const BUCKETS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// A unit of work for the writer.
pub(crate) trait Command: Send {
    /// Runs the command inside the batch's transaction; returns whether it
    /// succeeded. It may be run again after a rollback: each run replaces
    /// the result of the previous one.
    fn run(&mut self, conn: &WriteConn<'_>) -> bool;
    /// Answers the caller once the batch's fate (`commit`) is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

/// A command built from a closure, answering through a oneshot.
struct Job<T, F> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Command for Job<T, F>
where
    T: Send,
    F: Fn(&WriteConn<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &WriteConn<'_>) -> bool {
        // A previous attempt's result belongs to a rolled-back transaction.
        self.result = None;
        let result = (self.work)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let Self {
            work,
            result,
            reply,
        } = *self;
        // The work (and whatever it shares with the caller) goes before the
        // answer, so the caller finds itself the only owner of what it shared.
        drop(work);
        let outcome = match (commit, result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Unavailable {
                message: "the command failed unexpectedly (it panicked); nothing of it was kept"
                    .to_owned(),
            }),
        };
        // The caller may have gone away (cancelled future); nothing to do then.
        let _ = reply.send(outcome);
    }
}

/// Counts batch sizes for [`BatchStats`].
#[derive(Debug, Default)]
pub(crate) struct BatchCounter {
    buckets: [AtomicU64; 9],
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

impl BatchCounter {
    fn record(&self, size: usize) {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if size <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(size, Ordering::Relaxed);
        self.max.fetch_max(size, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BatchStats {
        BatchStats {
            buckets: BUCKETS
                .iter()
                .zip(&self.buckets)
                .map(|(bound, n)| (*bound, n.load(Ordering::Relaxed)))
                .collect(),
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// The callers' side of the writer. Dropping it closes the channel: the
/// thread finishes what is queued and exits.
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Command>>,
    pub(crate) stats: Arc<BatchCounter>,
}

impl Writer {
    /// Starts the writer thread on `conn`, the write connection to the
    /// database at `path`, and its checkpointer; `log` is the writer's
    /// view of the verifiable log (key and cached frontiers).
    pub(crate) fn start(conn: Connection, path: &Path, log: LogState) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Command>>();
        let stats = Arc::new(BatchCounter::default());
        let thread_stats = Arc::clone(&stats);
        // Without a checkpointer (it could not start), the writer keeps
        // SQLite's automatic checkpoints: slower, but the WAL stays bounded.
        let checkpointer = checkpoint::start(path);
        if checkpointer.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        std::thread::Builder::new()
            .name("countersign-sqlite-writer".to_owned())
            .spawn(move || {
                let conn = WriteConn {
                    conn: &conn,
                    log: &log,
                };
                run_writer(&conn, &rx, &thread_stats, checkpointer.as_ref());
            })
            .map_err(|e| StoreError::Unavailable {
                message: format!("cannot start the sqlite writer thread: {e}"),
            })?;
        Ok(Self { tx, stats })
    }

    /// Runs `work` in the next batch and waits until that batch committed.
    /// `work` may run more than once (see the module documentation); only
    /// the result of the run that was committed is returned.
    pub(crate) async fn submit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteConn<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Command> = Box::new(Job {
            work,
            result: None,
            reply,
        });
        self.tx.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable {
        message: "the sqlite writer thread has stopped".to_owned(),
    }
}

fn run_writer(
    conn: &WriteConn<'_>,
    rx: &mpsc::Receiver<Box<dyn Command>>,
    stats: &BatchCounter,
    checkpointer: Option<&Checkpointer>,
) {
    let mut since_complete: u32 = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        stats.record(batch.len());
        let commit = run_batch(conn, &mut batch);
        for cmd in batch {
            cmd.finish(commit.clone());
        }
        if let Some(c) = checkpointer {
            c.committed();
            since_complete += 1;
            // Between batches, callers already answered: finish what the
            // checkpointer copied so the next transaction restarts the WAL.
            if since_complete >= TOP_UP_EVERY && checkpoint::top_up(conn) {
                since_complete = 0;
            }
        }
    }
}

/// Runs one statement through the statement cache (no re-parse per use).
fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Ends the open transaction, if any, discarding its changes. Failing here
/// means there was no transaction left to roll back.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
}

/// How a batch's attempt without savepoints ended.
enum Attempt {
    /// Every command ran; failed ones left nothing behind.
    Clean,
    /// A command failed after writing (or panicked): the transaction was
    /// rolled back and the batch must run again, command by command.
    Dirty,
}

/// Runs a batch in one transaction; the result is the COMMIT's.
fn run_batch(conn: &WriteConn<'_>, batch: &mut [Box<dyn Command>]) -> Result<(), StoreError> {
    exec(conn, "BEGIN IMMEDIATE")?;
    match run_plain(conn, batch) {
        Attempt::Clean => {}
        Attempt::Dirty => {
            rollback(conn);
            // The cached frontiers may hold leaves that were rolled back.
            conn.log.forget_trees();
            exec(conn, "BEGIN IMMEDIATE")?;
            if let Err(e) = run_isolated(conn, batch) {
                // The savepoint machinery itself failed: the transaction can
                // no longer be trusted, so nothing of this batch is committed.
                rollback(conn);
                conn.log.forget_trees();
                return Err(e);
            }
        }
    }
    if let Err(e) = exec(conn, "COMMIT") {
        rollback(conn);
        conn.log.forget_trees();
        return Err(e);
    }
    Ok(())
}

/// The fast path: every command straight in the transaction.
fn run_plain(conn: &WriteConn<'_>, batch: &mut [Box<dyn Command>]) -> Attempt {
    for cmd in batch.iter_mut() {
        let before = conn.total_changes();
        // A bug that panics inside one command must not kill the writer
        // thread (and with it the store): treat it as that command failing.
        let ok = std::panic::catch_unwind(AssertUnwindSafe(|| cmd.run(conn)));
        match ok {
            Ok(true) if !conn.is_autocommit() => {}
            // Failed without changing a row: the transaction is as it was
            // before the command, which simply answers its error.
            Ok(false) if conn.total_changes() == before && !conn.is_autocommit() => {}
            // Failed after writing, panicked, or SQLite ended the
            // transaction on its own (I/O error, disk full...).
            Ok(_) | Err(_) => return Attempt::Dirty,
        }
    }
    Attempt::Clean
}

/// The slow path: each command inside its own savepoint, so a failing one
/// rolls back alone.
fn run_isolated(conn: &WriteConn<'_>, batch: &mut [Box<dyn Command>]) -> Result<(), StoreError> {
    for cmd in batch.iter_mut() {
        exec(conn, "SAVEPOINT cmd")?;
        let ok = std::panic::catch_unwind(AssertUnwindSafe(|| cmd.run(conn))).unwrap_or(false);
        if !ok {
            exec(conn, "ROLLBACK TO cmd")?;
            conn.log.forget_trees();
        }
        exec(conn, "RELEASE cmd")?;
    }
    Ok(())
}
