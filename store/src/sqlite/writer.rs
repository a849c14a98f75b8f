//! The SQLite writer thread: group commit with a savepoint per command.
//!
//! One thread owns the only write connection. Callers send commands over a
//! channel; the thread takes everything queued (up to [`MAX_BATCH`]), runs
//! the commands in one transaction, each inside its own SAVEPOINT so a
//! failing command rolls back alone, COMMITs (one fsync for the whole
//! batch), and only then answers each caller. An `Ok` therefore always
//! means committed and synced.

use crate::StoreError;
use crate::model::BatchStats;
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most commands committed in one transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// Upper bounds of the batch-size histogram buckets.
const BUCKETS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// A unit of work for the writer.
pub(crate) trait Command: Send {
    /// Runs inside the command's savepoint; returns whether it succeeded
    /// (on failure the savepoint is rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's fate (`commit`) is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

/// A command built from a closure, answering through a oneshot.
struct Job<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Command for Job<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = match self.work.take() {
            Some(work) => work(conn),
            None => Err(StoreError::Unavailable {
                message: "command ran twice".to_owned(),
            }),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let outcome = match (commit, self.result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Unavailable {
                message: "the command failed unexpectedly (it panicked); nothing of it was kept"
                    .to_owned(),
            }),
        };
        // The caller may have gone away (cancelled future); nothing to do then.
        let _ = self.reply.send(outcome);
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
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Command>>();
        let stats = Arc::new(BatchCounter::default());
        let thread_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("countersign-sqlite-writer".to_owned())
            .spawn(move || run_writer(&conn, &rx, &thread_stats))
            .map_err(|e| StoreError::Unavailable {
                message: format!("cannot start the sqlite writer thread: {e}"),
            })?;
        Ok(Self { tx, stats })
    }

    /// Runs `work` in the next batch and waits until that batch committed.
    pub(crate) async fn submit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Command> = Box::new(Job {
            work: Some(work),
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

fn run_writer(conn: &Connection, rx: &mpsc::Receiver<Box<dyn Command>>, stats: &BatchCounter) {
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
    }
}

/// Runs a batch in one transaction; the result is the COMMIT's.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Command>]) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for cmd in batch.iter_mut() {
        if let Err(e) = run_one(conn, cmd.as_mut()) {
            // The savepoint machinery itself failed: the transaction can no
            // longer be trusted, so nothing of this batch is committed.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    Ok(())
}

fn run_one(conn: &Connection, cmd: &mut dyn Command) -> Result<(), StoreError> {
    conn.execute_batch("SAVEPOINT cmd")?;
    // A bug that panics inside one command must not kill the writer thread
    // (and with it the store): treat it as that command failing.
    let ok = std::panic::catch_unwind(AssertUnwindSafe(|| cmd.run(conn))).unwrap_or(false);
    if ok {
        conn.execute_batch("RELEASE cmd")?;
    } else {
        conn.execute_batch("ROLLBACK TO cmd; RELEASE cmd")?;
    }
    Ok(())
}
