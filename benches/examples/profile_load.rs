//! Loads the generated scale set in a loop, for `perf record`:
//! `cargo run --release --example profile_load -- [actions] [repeats]`.

use std::hint::black_box;
use std::time::Instant;

use countersign_benches::scale;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let sources = scale::yaml_sources(n);
    let bytes: usize = sources.iter().map(|(_, t)| t.len()).sum();
    let start = Instant::now();
    for _ in 0..repeats {
        black_box(scale::load_ours(&sources));
    }
    let per = start.elapsed() / repeats as u32;
    println!("{n} actions ({bytes} bytes of YAML): {per:?} per load");
}
