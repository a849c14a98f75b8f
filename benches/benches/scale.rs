//! Large generated sets: 100, 1,000 and 10,000 actions of 10 rules each
//! (up to 100,000 rules), for Countersign and Cedar.
//!
//! - `scale_decide_<n>`: deciding 9 requests (the first, a middle and the
//!   last action, each with 3 payloads) against the set of `n` actions;
//! - `scale_load_<n>`: loading and compiling the whole set from text
//!   (`PolicySet::from_sources` for Countersign, `PolicySet::from_str` for
//!   Cedar). Generating the text is not timed.
//!
//! Times are the benchmark thread's CPU time unless
//! `COUNTERSIGN_BENCH_CLOCK=wall` (see `src/clock.rs`).

use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

use countersign_benches::clock::{ThreadCpu, wall_clock_requested};
use countersign_benches::scale::{self, CedarScale};
use countersign_engine::{Request, Value};
use criterion::measurement::Measurement;
use criterion::{Criterion, SamplingMode, Throughput};

const SIZES: &[usize] = &[100, 1_000, 10_000];

fn decide<M: Measurement>(c: &mut Criterion<M>) {
    let null = Value::Null;
    for &n in SIZES {
        let ours = scale::load_ours(&scale::yaml_sources(n));
        assert_eq!(ours.rule_count(), n * scale::RULES_PER_ACTION);
        let cedar = CedarScale::parse(&scale::cedar_source(n));
        let requests = scale::requests(n);
        // Same verdicts before timing anything.
        for r in &requests {
            let req = Request {
                action: &r.action,
                actor: &r.actor,
                payload: &r.payload,
                source: &null,
            context: &null,
                now: &null,
            };
            assert_eq!(
                ours.decide(&req).verdict,
                cedar.decide(&r.cedar),
                "{} disagrees at n = {n}",
                r.action
            );
        }
        let ours_requests: Vec<Request<'_>> = requests
            .iter()
            .map(|r| Request {
                action: &r.action,
                actor: &r.actor,
                payload: &r.payload,
                source: &null,
            context: &null,
                now: &null,
            })
            .collect();

        let mut g = c.benchmark_group(format!("scale_decide_{n}"));
        g.throughput(Throughput::Elements(requests.len() as u64));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        g.sample_size(30);
        g.bench_function("countersign", |b| {
            b.iter(|| {
                for r in &ours_requests {
                    black_box(ours.decide(black_box(r)));
                }
            })
        });
        // Cedar scans every policy per request: at 100,000 policies one
        // iteration (9 requests) takes seconds, so take 10 flat samples.
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(1));
        g.measurement_time(Duration::from_secs(if n <= 100 {
            2
        } else if n <= 1_000 {
            4
        } else {
            10
        }));
        g.bench_function("cedar", |b| {
            b.iter(|| {
                for r in &requests {
                    black_box(cedar.decide(black_box(&r.cedar)));
                }
            })
        });
        g.finish();
    }
}

fn load<M: Measurement>(c: &mut Criterion<M>) {
    for &n in SIZES {
        let yaml = scale::yaml_sources(n);
        let cedar_text = scale::cedar_source(n);
        let mut g = c.benchmark_group(format!("scale_load_{n}"));
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(1));
        // At 10,000 actions one load takes seconds: 10 samples of one load.
        g.measurement_time(Duration::from_secs(if n <= 100 {
            3
        } else if n <= 1_000 {
            5
        } else {
            10
        }));
        g.bench_function("countersign", |b| {
            b.iter(|| black_box(scale::load_ours(black_box(&yaml))))
        });
        g.bench_function("cedar", |b| {
            b.iter(|| {
                black_box(
                    cedar_policy::PolicySet::from_str(black_box(&cedar_text))
                        .unwrap_or_else(|e| panic!("generated Cedar does not parse: {e:?}")),
                )
            })
        });
        g.finish();
    }
}

fn main() {
    if wall_clock_requested() {
        let mut c = Criterion::default().configure_from_args();
        decide(&mut c);
        load(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpu)
            .configure_from_args();
        decide(&mut c);
        load(&mut c);
        c.final_summary();
    }
}
