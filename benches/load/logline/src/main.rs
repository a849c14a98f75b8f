//! The CPU cost of one intercept log line, as the gate writes it: the same
//! `tracing-subscriber` settings and fields, from 2 threads, with stderr
//! going wherever the caller sends it (a file, to compare with the gate).
//!
//!   cargo run --release -- off|direct|buffered 2>/tmp/lines.log; grep RESULT /tmp/lines.log
//!
//! `off` filters the line out (`countersign::intercept=off`), `direct`
//! writes each line to stderr, `buffered` goes through the gate's own log
//! writer (gate/src/cli/log_writer.rs, compiled in here as it is).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a benchmark that cannot run should stop loudly"
)]

#[path = "../../../../gate/src/cli/log_writer.rs"]
#[allow(dead_code)]
mod log_writer;

use std::time::Instant;

use tracing_subscriber::fmt::writer::BoxMakeWriter;

const LINES: u64 = 400_000;

/// utime + stime of the whole process (every thread), in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let (writer, flusher) = match mode.as_str() {
        "off" | "direct" => (BoxMakeWriter::new(std::io::stderr), None),
        "buffered" => {
            let (w, f) = log_writer::spawn(std::io::stderr()).unwrap();
            (BoxMakeWriter::new(w), Some(f))
        }
        _ => panic!("usage: countersign-logline off|direct|buffered"),
    };
    let filter = if mode == "off" {
        "info,countersign::intercept=off"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    let started = Instant::now();
    let before = cpu_ticks();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                for i in 0..LINES / 2 {
                    tracing::info!(
                        target: "countersign::intercept",
                        run = %"run_01a2379847627491ac92eed32e52e547",
                        workspace = %"default",
                        action = %"issue_refund",
                        decision = %"pending_approval",
                        rule = %"medium-refund",
                        replay = i == u64::MAX,
                        "intercept"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(flusher);
    let ticks = cpu_ticks() - before;
    let hz = 100.0; // USER_HZ on Linux
    eprintln!(
        "RESULT {mode}: {:.2} us CPU per line (all threads), {:.2} us wall per line",
        ticks as f64 / hz * 1e6 / LINES as f64,
        started.elapsed().as_secs_f64() * 1e6 / LINES as f64
    );
}
