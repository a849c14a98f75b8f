//! Proofs at a million leaves and the full audit of 100,000 events, on
//! SQLite (and PostgreSQL when LOG_BENCH_PG is set). See BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use countersign_log_bench::clock::{ProcessCpu, cpu_clock_requested};
use countersign_log_bench::{Rng, WORKSPACE, drop_pg_schema, fail, postgres_store, sqlite_store};
use countersign_store::Store;
use countersign_store::tlog::{consistency_proof_plan, inclusion_proof_plan, tree_hash_plan};
use criterion::Criterion;
use criterion::measurement::Measurement;
use tokio::runtime::Runtime;

fn events_from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()))
}

fn cache_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// Average number of stored hashes each kind of proof reads at `n` leaves.
fn report_plan_sizes(n: u64) {
    let mut rng = Rng::new(1);
    let (mut inc, mut cons, mut head) = (0usize, 0usize, 0usize);
    let samples = 10_000u64;
    for _ in 0..samples {
        let i = rng.below(n);
        inc += inclusion_proof_plan(i, n).map_or(0, |p| p.indexes().len());
        let from = 1 + rng.below(n - 1);
        cons += consistency_proof_plan(from, n).map_or(0, |p| p.indexes().len());
        let size = 1 + rng.below(n);
        head += tree_hash_plan(size).map_or(0, |p| p.indexes().len());
    }
    let avg = |x: usize| x as f64 / samples as f64;
    eprintln!(
        "stored hashes read per call at {n} leaves (mean of {samples} random): \
         inclusion {:.1}, consistency {:.1}, tree_head_at {:.1}",
        avg(inc),
        avg(cons),
        avg(head)
    );
}

fn proofs<M: Measurement>(
    c: &mut Criterion<M>,
    label: &str,
    rt: &Runtime,
    store: Arc<dyn Store>,
    n: u64,
) {
    report_plan_sizes(n);
    let mut g = c.benchmark_group(format!("proofs/{label}"));
    g.measurement_time(Duration::from_secs(8));

    let mut rng = Rng::new(11);
    g.bench_function("inclusion_proof", |b| {
        b.iter(|| {
            let index = rng.below(n);
            let proof = rt.block_on(store.inclusion_proof(WORKSPACE, index, n));
            black_box(proof.unwrap_or_else(|e| fail(&e.to_string())))
        })
    });
    let mut rng = Rng::new(12);
    g.bench_function("consistency_proof", |b| {
        b.iter(|| {
            let from = 1 + rng.below(n - 1);
            let proof = rt.block_on(store.consistency_proof(WORKSPACE, from, n));
            black_box(proof.unwrap_or_else(|e| fail(&e.to_string())))
        })
    });
    let mut rng = Rng::new(13);
    g.bench_function("tree_head_at", |b| {
        b.iter(|| {
            let size = 1 + rng.below(n);
            let head = rt.block_on(store.tree_head_at(WORKSPACE, size));
            black_box(head.unwrap_or_else(|e| fail(&e.to_string())))
        })
    });
    // Floors: a read of the newest checkpoint (one indexed query, no
    // rows here) through the same read path, and the bare thread hop.
    g.bench_function("floor_latest_checkpoint", |b| {
        b.iter(|| {
            let c = rt.block_on(store.latest_checkpoint(WORKSPACE));
            black_box(c.unwrap_or_else(|e| fail(&e.to_string())))
        })
    });
    g.bench_function("floor_spawn_blocking", |b| {
        b.iter(|| rt.block_on(async { tokio::task::spawn_blocking(|| 1u8).await.ok() }))
    });
    let mut rng = Rng::new(14);
    g.bench_function("plan_only_inclusion", |b| {
        b.iter(|| black_box(inclusion_proof_plan(rng.below(n), n).ok()))
    });
    g.finish();
}

fn audit<M: Measurement>(
    c: &mut Criterion<M>,
    label: &str,
    rt: &Runtime,
    store: Arc<dyn Store>,
    n: u64,
) {
    let mut g = c.benchmark_group(format!("audit/{label}"));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("audit", |b| {
        b.iter(|| {
            let report = rt
                .block_on(store.audit(WORKSPACE))
                .unwrap_or_else(|e| fail(&e.to_string()));
            if report.events != n || !report.problems.is_empty() {
                fail(&format!(
                    "audit read {} events with problems {:?}",
                    report.events, report.problems
                ));
            }
            black_box(report)
        })
    });
    g.finish();
}

fn wants(name: &str) -> bool {
    // criterion's own filter runs after setup; skip the setup of groups
    // the filter (LOG_BENCH) leaves out.
    std::env::var("LOG_BENCH").map_or(true, |v| v.split(',').any(|p| p == name))
}

fn sqlite<M: Measurement>(c: &mut Criterion<M>) {
    let rt = runtime();
    if wants("proofs") {
        let n = events_from_env("LOG_BENCH_PROOF_EVENTS", 1_000_000);
        let store = sqlite_store(&rt, cache_dir(), n);
        proofs(c, &format!("sqlite_{n}"), &rt, store, n);
    }
    if wants("audit") {
        let n = events_from_env("LOG_BENCH_AUDIT_EVENTS", 100_000);
        let store = sqlite_store(&rt, cache_dir(), n);
        audit(c, &format!("sqlite_{n}"), &rt, store, n);
    }
}

/// The same on PostgreSQL when LOG_BENCH_PG holds a URL; the schemas are
/// dropped afterwards unless LOG_BENCH_PG_KEEP=1.
fn postgres<M: Measurement>(c: &mut Criterion<M>) {
    let Ok(url) = std::env::var("LOG_BENCH_PG") else {
        return;
    };
    let keep = std::env::var("LOG_BENCH_PG_KEEP").is_ok_and(|v| v == "1");
    let rt = runtime();
    if wants("proofs") {
        let n = events_from_env("LOG_BENCH_PG_PROOF_EVENTS", 1_000_000);
        let store = postgres_store(&rt, &url, n);
        proofs(c, &format!("postgres_{n}"), &rt, store, n);
        if !keep {
            drop_pg_schema(&rt, &url, n);
        }
    }
    if wants("audit") {
        let n = events_from_env("LOG_BENCH_AUDIT_EVENTS", 100_000);
        let store = postgres_store(&rt, &url, n);
        audit(c, &format!("postgres_{n}"), &rt, store, n);
        if !keep {
            drop_pg_schema(&rt, &url, n);
        }
    }
}

fn main() {
    if cpu_clock_requested() {
        let mut c = Criterion::default()
            .with_measurement(ProcessCpu)
            .configure_from_args();
        sqlite(&mut c);
        postgres(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        sqlite(&mut c);
        postgres(&mut c);
        c.final_summary();
    }
}
