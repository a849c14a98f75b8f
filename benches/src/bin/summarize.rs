//! Prints the Markdown tables of BENCHMARKS.md from criterion's results in
//! `target/criterion/` (run after `cargo bench`).
//!
//! Times are criterion's median per iteration divided by the group's
//! throughput (the number of decisions per iteration), so every figure is a
//! time per decision (or per load). They are in whatever clock the benches
//! ran with: the thread's CPU time by default (see `src/clock.rs`).
//!
//! `cargo run --release --bin summarize`

use std::fs;
use std::path::{Path, PathBuf};

use countersign_benches::finance::{ACTIONS, Finance};
use countersign_benches::scale::RULES_PER_ACTION;
use serde_json::Value as J;

const PEERS: &[&str] = &["cel", "cedar", "regorus"];

fn criterion_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion")
}

fn read_json(p: &Path) -> Option<J> {
    serde_json::from_str(&fs::read_to_string(p).ok()?).ok()
}

/// Median time per element, in nanoseconds.
fn median(group: &str, bench: &str) -> Option<f64> {
    let dir = criterion_dir().join(group).join(bench).join("new");
    let est = read_json(&dir.join("estimates.json"))?;
    let ns = est["median"]["point_estimate"].as_f64()?;
    let elements = read_json(&dir.join("benchmark.json"))
        .and_then(|b| b["throughput"]["Elements"].as_f64())
        .unwrap_or(1.0);
    Some(ns / elements)
}

fn fmt_time(ns: Option<f64>) -> String {
    match ns {
        None => "—".to_owned(),
        Some(ns) if ns < 1_000.0 => format!("{ns:.0} ns"),
        Some(ns) if ns < 1_000_000.0 => format!("{:.2} µs", ns / 1e3),
        Some(ns) if ns < 1_000_000_000.0 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.2} s", ns / 1e9),
    }
}

fn ratio(peer: Option<f64>, ours: Option<f64>) -> String {
    match (peer, ours) {
        (Some(p), Some(o)) if o > 0.0 => format!("{:.1}×", p / o),
        _ => "—".to_owned(),
    }
}

fn engines_row(group: &str) -> (Vec<Option<f64>>, String) {
    let ours = median(group, "countersign");
    let peers: Vec<Option<f64>> = PEERS.iter().map(|p| median(group, p)).collect();
    let mut cells = vec![fmt_time(ours)];
    cells.extend(peers.iter().map(|&p| fmt_time(p)));
    cells.extend(peers.iter().map(|&p| ratio(p, ours)));
    let mut all = vec![ours];
    all.extend(peers);
    (all, cells.join(" | "))
}

fn main() {
    let fin = Finance::load();
    println!("### Finance set, representative cases (median per decision)\n");
    println!(
        "| # | case | action | verdict | Countersign | CEL | Cedar | Rego (regorus) | CEL ÷ ours | Cedar ÷ ours | Rego ÷ ours |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, case) in fin.representative().iter().enumerate() {
        let (_, cells) = engines_row(&format!("case{i:02}"));
        println!(
            "| {i} | {} | {} | {} | {cells} |",
            case.test.name,
            case.test.action,
            case.expected.as_str()
        );
    }

    println!("\n### Finance set, every test case, by action (median per decision)\n");
    println!(
        "| action | cases | Countersign | CEL | Cedar | Rego (regorus) | CEL ÷ ours | Cedar ÷ ours | Rego ÷ ours |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (action, _, _) in ACTIONS {
        let n = fin
            .cases
            .iter()
            .filter(|c| c.test.action == *action)
            .count();
        let (_, cells) = engines_row(&format!("suite_{action}"));
        println!("| {action} | {n} | {cells} |");
    }
    let (_, cells) = engines_row("suite_all");
    println!("| **all cases** | {} | {cells} |", fin.cases.len());
    let (_, cells) = engines_row("e2e_all");
    println!(
        "| **all cases, from JSON text** | {} | {cells} |",
        fin.cases.len()
    );

    println!("\n### Scale: decision latency (median per decision, 3 actions × 3 payloads)\n");
    println!("| actions | rules | Countersign | Cedar | Cedar ÷ ours |");
    println!("|---|---|---|---|---|");
    for n in [100usize, 1_000, 10_000] {
        let g = format!("scale_decide_{n}");
        let (o, c) = (median(&g, "countersign"), median(&g, "cedar"));
        println!(
            "| {n} | {} | {} | {} | {} |",
            n * RULES_PER_ACTION,
            fmt_time(o),
            fmt_time(c),
            ratio(c, o)
        );
    }

    println!("\n### Scale: load and compile the whole set (median)\n");
    println!(
        "| actions | rules | Countersign `from_sources` | Cedar `PolicySet::from_str` | Cedar ÷ ours |"
    );
    println!("|---|---|---|---|---|");
    for n in [100usize, 1_000, 10_000] {
        let g = format!("scale_load_{n}");
        let (o, c) = (median(&g, "countersign"), median(&g, "cedar"));
        println!(
            "| {n} | {} | {} | {} | {} |",
            n * RULES_PER_ACTION,
            fmt_time(o),
            fmt_time(c),
            ratio(c, o)
        );
    }
}
