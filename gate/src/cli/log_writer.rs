//! The gate's log writer: request threads append each formatted line to a
//! shared buffer and go on; one thread writes what has gathered to stderr,
//! many lines a `write`. So a log line per intercept costs the request a
//! copy into memory, not a system call under the stderr lock.
//!
//! After each write the thread waits [`GATHER`] before it looks again, so
//! under load it wakes at most about 50 times a second whatever the rate of
//! lines (waking once per line, it took CPU from the request threads and
//! the store's writer on a 2-core machine). The first line after a quiet
//! spell is written at once.
//!
//! If stderr stops taking data (a pipe nobody reads), the buffer stops
//! growing at [`MAX_BUFFERED`] and further lines are dropped and counted,
//! rather than stalling requests: the audit record is the store, not this
//! log. Lines still buffered are written when the [`Flusher`] is dropped.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// The most bytes held for the writer thread; beyond it, lines are dropped.
pub const MAX_BUFFERED: usize = 8 * 1024 * 1024;

/// How long the writer thread lets lines gather after each write.
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Default)]
struct Shared {
    buffer: Mutex<Vec<u8>>,
    filled: Condvar,
    closed: AtomicBool,
    dropped: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves bytes, not broken state.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer `tracing_subscriber` gets: cloned per event, cheap.
#[derive(Clone)]
pub struct BufferedWriter {
    shared: Arc<Shared>,
}

/// Owns the writer thread; dropping it writes what is left and joins it.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer that hands lines to a thread writing them to `out`.
pub fn spawn(out: impl Write + Send + 'static) -> std::io::Result<(BufferedWriter, Flusher)> {
    let shared = Arc::new(Shared::default());
    let worker = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("countersign-log".to_owned())
        .spawn(move || write_loop(&worker, out))?;
    Ok((
        BufferedWriter {
            shared: Arc::clone(&shared),
        },
        Flusher {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_loop(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        {
            let mut buffer = shared.lock();
            while buffer.is_empty() && !shared.closed.load(Ordering::Acquire) {
                buffer = shared
                    .filled
                    .wait(buffer)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            std::mem::swap(&mut *buffer, &mut batch);
        }
        let dropped = shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            batch.extend_from_slice(
                format!("countersign: {dropped} log lines dropped (stderr was not keeping up)\n")
                    .as_bytes(),
            );
        }
        if batch.is_empty() {
            // Closed, and nothing left.
            let _ = out.flush();
            return;
        }
        // Nothing to do about a failing stderr but go on; lines are lost.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        // Keep a batch buffer of a sensible size after a burst.
        batch.shrink_to(1024 * 1024);
        if !shared.closed.load(Ordering::Acquire) {
            std::thread::sleep(GATHER);
        }
    }
}

impl Write for BufferedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let was_empty = {
            let mut buffer = self.shared.lock();
            if buffer.len() + bytes.len() > MAX_BUFFERED {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(bytes.len());
            }
            let was_empty = buffer.is_empty();
            buffer.extend_from_slice(bytes);
            was_empty
        };
        // Only the first line of a batch wakes the writer; the others find
        // it busy or about to take them.
        if was_empty {
            self.shared.filled.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufferedWriter {
    type Writer = BufferedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        // Taking the lock orders the store before the writer's next check.
        drop(self.shared.lock());
        self.shared.filled.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` into a shared vector, to read what the thread wrote.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_from_every_thread_arrives_whole_by_the_time_the_flusher_is_dropped() {
        let sink = Sink::default();
        let (writer, flusher) = spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        w.write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(flusher);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20_000);
        for t in 0..4 {
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let want: Vec<String> = (0..5000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(mine, want, "thread {t}'s lines, whole and in order");
        }
    }

    /// A stderr that takes nothing until told to.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>, Sink);

    impl Write for Stuck {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.0;
            let mut g = open.lock().unwrap();
            while !*g {
                g = cv.wait(g).unwrap();
            }
            self.1.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stderr_drops_and_counts_lines_instead_of_blocking() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let (mut w, flusher) = spawn(Stuck(Arc::clone(&gate), sink.clone())).unwrap();
        let line = vec![b'x'; 1023];
        let started = std::time::Instant::now();
        // The writer thread takes at most one batch (no more than the
        // limit) and blocks on it; the buffer fills up to the limit again,
        // and of three limits' worth, the rest is dropped.
        for _ in 0..(3 * MAX_BUFFERED / 1024) {
            w.write_all(&line).unwrap();
            w.write_all(b"\n").unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        drop(flusher);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains(" log lines dropped (stderr was not keeping up)"),
            "no report"
        );
        assert!(text.len() <= 2 * MAX_BUFFERED + 200);
    }
}
