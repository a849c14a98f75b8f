//! WAL checkpoints off the writer's commit path.
//!
//! In WAL mode every commit appends pages to the `-wal` file; a checkpoint
//! copies them back into the database file so the WAL can start over. By
//! default SQLite runs one inside whichever COMMIT crosses 1,000 WAL pages,
//! which stalls the writer thread and every caller waiting on that batch.
//!
//! Instead the writer connection has `wal_autocheckpoint=0`, and:
//!
//! - this thread, with its own connection, runs a PASSIVE checkpoint after
//!   commits, at most once per [`INTERVAL`]. It does the bulk of the copying
//!   (and the database file's fsync) on another core, never waiting for the
//!   writer or the readers, and never delaying an acknowledgement.
//! - A background checkpoint alone rarely lets the WAL start over: SQLite
//!   restarts the WAL only when a write transaction begins while every frame
//!   has been copied, and under load the writer has appended new frames by
//!   the time a background checkpoint ends. So every 16 commits the
//!   writer, between batches (its callers already answered, the next batch
//!   not yet begun), runs [`top_up`]: a PASSIVE checkpoint of the few frames
//!   the background one has not copied yet. When it completes, the writer's
//!   next transaction restarts the WAL.
//! - If the WAL still passes [`RESTART_FRAMES`] (readers holding old
//!   snapshots for a long time), this thread runs a RESTART checkpoint,
//!   which waits for those readers and briefly holds the writer off: a hard
//!   bound on the WAL's size, rarely if ever reached.
//!
//! Durability does not depend on checkpoints: a commit is durable once its
//! WAL frames are synced, which the writer does before answering.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Shortest time between two checkpoints while commits keep coming.
const INTERVAL: Duration = Duration::from_millis(100);

/// WAL size (in frames, one page each) above which the checkpointer stops
/// being polite and waits for readers and the writer (about 200 MiB with
/// 4 KiB pages).
const RESTART_FRAMES: i64 = 50_000;

/// How long a RESTART checkpoint may wait for readers and the writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer's handle on the checkpointer thread. Dropping it stops the
/// thread (after one last checkpoint).
pub(crate) struct Checkpointer {
    tx: mpsc::SyncSender<()>,
}

impl Checkpointer {
    /// Tells the checkpointer that a transaction committed. Never blocks.
    pub(crate) fn committed(&self) {
        // A full channel already holds a wake-up; nothing is lost.
        let _ = self.tx.try_send(());
    }
}

/// Starts the checkpointer of the database at `path`, or returns `None` if
/// it cannot (then the writer must keep SQLite's automatic checkpoints).
pub(crate) fn start(path: &Path) -> Option<Checkpointer> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.busy_timeout(BUSY_TIMEOUT).ok()?;
    conn.pragma_update(None, "wal_autocheckpoint", 0).ok()?;
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".to_owned())
        .spawn(move || run(&conn, &rx))
        .ok()?;
    Some(Checkpointer { tx })
}

fn run(conn: &Connection, rx: &mpsc::Receiver<()>) {
    while rx.recv().is_ok() {
        checkpoint(conn);
        // Let commits accumulate: one checkpoint (and its two fsyncs) then
        // covers many transactions.
        std::thread::sleep(INTERVAL);
    }
    checkpoint(conn);
}

/// One PASSIVE checkpoint, followed by a RESTART one if the WAL is too big.
/// Failures are left for the next round: the data is safe in the WAL.
fn checkpoint(conn: &Connection) {
    let Ok(frames) = wal_checkpoint(conn, "PASSIVE") else {
        return;
    };
    if frames > RESTART_FRAMES {
        let _ = wal_checkpoint(conn, "RESTART");
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`; returns the WAL's size in frames.
fn wal_checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        row.get::<_, i64>(1)
    })
}

/// The writer's own PASSIVE checkpoint, run between batches; returns
/// whether it copied every frame (then the next write transaction restarts
/// the WAL). Returns `false` when the background checkpoint holds the
/// checkpoint lock or readers still need old frames: the writer tries again
/// after its next batch.
pub(crate) fn top_up(conn: &Connection) -> bool {
    conn.prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")
        .and_then(|mut stmt| {
            stmt.query_row([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
        })
        .is_ok_and(|(busy, log, copied)| busy == 0 && log == copied)
}
