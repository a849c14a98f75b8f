//! `countersign bench`: what a policy set's decisions cost.
//!
//! Each test case's request is decided in batches sized to take about
//! 20 µs, so timer overhead stays small; per-decision times are the batch
//! time divided by its size. Samples are pooled per action.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use countersign_engine::PolicySet;
use countersign_engine::testing::load_tests;

pub fn run(dirs: &[PathBuf], samples: usize) -> ExitCode {
    let set = match PolicySet::load(dirs) {
        Ok(set) => set,
        Err(err) => {
            super::render::print_policy_error(&err);
            return ExitCode::FAILURE;
        }
    };
    let cases = match load_tests(dirs) {
        Ok(cases) => cases,
        Err(err) => {
            super::render::print_policy_error(&err);
            return ExitCode::FAILURE;
        }
    };
    if cases.is_empty() {
        eprintln!("error: no *_test.yaml cases to take requests from");
        return ExitCode::FAILURE;
    }
    let samples = samples.max(10);
    let mut per_action: BTreeMap<&str, (usize, Vec<f64>)> = BTreeMap::new();
    for case in &cases {
        let req = case.request();
        // Warm up and size the batch.
        let mut batch = 1usize;
        loop {
            let start = Instant::now();
            for _ in 0..batch {
                black_box(set.decide(black_box(&req)));
            }
            if start.elapsed() >= Duration::from_micros(20) || batch >= 1 << 20 {
                break;
            }
            batch *= 2;
        }
        let entry = per_action.entry(case.action.as_str()).or_default();
        entry.0 += 1;
        for _ in 0..samples {
            let start = Instant::now();
            for _ in 0..batch {
                black_box(set.decide(black_box(&req)));
            }
            entry
                .1
                .push(start.elapsed().as_nanos() as f64 / batch as f64);
        }
    }
    outln!(
        "{:<32} {:>6} {:>12} {:>12}",
        "action",
        "cases",
        "median",
        "p99"
    );
    for (action, (count, mut times)) in per_action {
        times.sort_by(f64::total_cmp);
        let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        outln!(
            "{:<32} {:>6} {:>12} {:>12}",
            action,
            count,
            format_ns(pick(0.5)),
            format_ns(pick(0.99))
        );
    }
    outln!(
        "policy version {}; {samples} samples per case",
        set.version()
    );
    ExitCode::SUCCESS
}

fn format_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}
