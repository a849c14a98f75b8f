//! Decides finance cases in a loop, for `perf record`:
//! `cargo run --release --example profile -- [case-name-substring] [seconds]`
//! (no substring: every case). Prints the mean time per decision.

use std::hint::black_box;
use std::time::{Duration, Instant};

use countersign_benches::finance::Finance;
use countersign_engine::Request;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let filter = args.get(1).cloned().unwrap_or_default();
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let fin = Finance::load();
    let requests: Vec<Request<'_>> = fin
        .cases
        .iter()
        .filter(|c| c.test.name.contains(&filter))
        .map(|c| c.test.request())
        .collect();
    assert!(!requests.is_empty(), "no case matches {filter:?}");
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        for _ in 0..1000 {
            for r in &requests {
                black_box(fin.set.decide(black_box(r)));
            }
        }
        n += 1000 * requests.len() as u64;
    }
    let per = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{} case(s), {n} decisions, {per:.0} ns per decision",
        requests.len()
    );
}
