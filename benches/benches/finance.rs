//! The finance example set, decided by Countersign and by CEL, Cedar and
//! Rego (regorus) translations of the same rules, in one run.
//!
//! Groups (read back by `cargo run --release --bin summarize`):
//! - `case<NN>`: one representative test case (`finance::REPRESENTATIVE`);
//! - `suite_<action>` and `suite_all`: every test case of an action, or of
//!   the whole set, decided back to back (throughput = number of cases);
//! - `e2e_all`: the whole set again, each engine starting from the payload's
//!   JSON text (parse + build its input + decide).
//!
//! Times are the benchmark thread's CPU time unless
//! `COUNTERSIGN_BENCH_CLOCK=wall` (see `src/clock.rs`). Inputs are prepared
//! outside the timed loop except in `e2e_all`. Before
//! anything is timed, every peer's verdict is checked against Countersign's
//! on every case.

use std::hint::black_box;
use std::time::Duration;

use countersign_benches::cedar_peer::{CedarFinance, CedarInput};
use countersign_benches::cel_peer::CelFinance;
use countersign_benches::clock::{ThreadCpu, wall_clock_requested};
use countersign_benches::finance::{ACTIONS, Case, Finance};
use countersign_benches::rego_peer::{self, RegoFinance};
use countersign_benches::{Verdict, check_finance_equivalence};
use countersign_engine::{Request, Value, parse_json};
use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, Throughput};

struct Engines {
    fin: Finance,
    cel: CelFinance,
    cedar: CedarFinance,
    rego: RegoFinance,
}

fn configure<M: Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_millis(1200));
    g.sample_size(40);
}

/// Times the four engines on `cases` (each iteration decides all of them).
fn bench_cases<M: Measurement>(
    c: &mut Criterion<M>,
    e: &mut Engines,
    group: &str,
    cases: &[&Case],
) {
    let requests: Vec<Request<'_>> = cases.iter().map(|c| c.test.request()).collect();
    let cel_inputs: Vec<_> = cases
        .iter()
        .map(|c| (c.test.action.as_str(), e.cel.input(&c.test)))
        .collect();
    let cedar_inputs: Vec<CedarInput> = cases.iter().map(|c| e.cedar.input(&c.test)).collect();
    let rego_inputs: Vec<regorus::Value> =
        cases.iter().map(|c| RegoFinance::input(&c.test)).collect();

    let mut g = c.benchmark_group(group);
    configure(&mut g);
    g.throughput(Throughput::Elements(cases.len() as u64));
    let set = &e.fin.set;
    g.bench_function("countersign", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(set.decide(black_box(r)));
            }
        })
    });
    let cel = &e.cel;
    g.bench_function("cel", |b| {
        b.iter(|| {
            for (action, ctx) in &cel_inputs {
                black_box(cel.decide(black_box(action), black_box(ctx)));
            }
        })
    });
    let cedar = &e.cedar;
    g.bench_function("cedar", |b| {
        b.iter(|| {
            for input in &cedar_inputs {
                black_box(cedar.decide(black_box(input)));
            }
        })
    });
    let rego = &mut e.rego;
    g.bench_function("regorus", |b| {
        b.iter(|| {
            for input in &rego_inputs {
                black_box(rego.decide(black_box(input)));
            }
        })
    });
    g.finish();
}

fn finance<M: Measurement>(c: &mut Criterion<M>) {
    let problems = check_finance_equivalence();
    assert!(
        problems.is_empty(),
        "peer translations disagree with Countersign:\n{}",
        problems.join("\n")
    );
    let mut e = Engines {
        fin: Finance::load(),
        cel: CelFinance::new(),
        cedar: CedarFinance::new(),
        rego: RegoFinance::new(),
    };
    // The cases are cloned out so `e` can be borrowed mutably (regorus
    // evaluates through `&mut Engine`).
    let all: Vec<Case> = e
        .fin
        .cases
        .iter()
        .map(|c| Case {
            test: c.test.clone(),
            expected: c.expected,
        })
        .collect();
    let seen: std::collections::HashSet<Verdict> = all.iter().map(|c| c.expected).collect();
    assert_eq!(seen.len(), 3, "the finance cases cover every verdict");

    let representative: Vec<String> = e
        .fin
        .representative()
        .iter()
        .map(|c| c.test.name.clone())
        .collect();
    for (i, name) in representative.iter().enumerate() {
        let case = all
            .iter()
            .find(|c| &c.test.name == name)
            .into_iter()
            .collect::<Vec<_>>();
        bench_cases(c, &mut e, &format!("case{i:02}"), &case);
    }
    for (action, _, _) in ACTIONS {
        let cases: Vec<&Case> = all.iter().filter(|c| c.test.action == *action).collect();
        bench_cases(c, &mut e, &format!("suite_{action}"), &cases);
    }
    let every: Vec<&Case> = all.iter().collect();
    bench_cases(c, &mut e, "suite_all", &every);
    end_to_end(c, &mut e, &every);
}

/// Each engine from the payload's JSON text: what a gate does per request.
fn end_to_end<M: Measurement>(c: &mut Criterion<M>, e: &mut Engines, cases: &[&Case]) {
    let texts: Vec<String> = cases.iter().map(|c| c.test.payload.to_json()).collect();
    let set = &e.fin.set;
    let ours = |case: &Case, text: &str| {
        let payload = parse_json(text.as_bytes()).unwrap_or(Value::Null);
        let t = &case.test;
        let req = Request {
            action: &t.action,
            actor: &t.actor,
            payload: &payload,
            source: &t.source,
            context: &countersign_engine::Value::Null,
            now: &t.now,
        };
        set.decide(&req).verdict
    };
    let cel = &e.cel;
    let cel_e2e = |case: &Case, text: &str| {
        let t = &case.test;
        // CEL has no JSON reader of its own: the gate's reader, then CEL's
        // values.
        let payload = parse_json(text.as_bytes()).unwrap_or(Value::Null);
        let ctx = cel.input_parts(&t.actor, &payload, &t.source, &t.now);
        cel.decide(&t.action, &ctx)
    };
    let cedar = &e.cedar;
    let cedar_e2e = |case: &Case, text: &str| {
        let t = &case.test;
        cedar.decide(&cedar.input_from_json(&t.action, &t.actor, text, &t.source, &t.now))
    };
    // The same checks as for the prepared inputs, on these paths.
    for (case, text) in cases.iter().zip(&texts) {
        let rego_verdict = {
            let t = &case.test;
            e.rego.decide(&rego_peer::input_from_json(
                &t.action, &t.actor, text, &t.source, &t.now,
            ))
        };
        for (name, v) in [
            ("countersign", ours(case, text)),
            ("cel", cel_e2e(case, text)),
            ("cedar", cedar_e2e(case, text)),
            ("regorus", rego_verdict),
        ] {
            assert_eq!(
                v, case.expected,
                "{name} from JSON text disagrees on {:?}",
                case.test.name
            );
        }
    }

    let mut g = c.benchmark_group("e2e_all");
    configure(&mut g);
    g.throughput(Throughput::Elements(cases.len() as u64));
    g.bench_function("countersign", |b| {
        b.iter(|| {
            for (case, text) in cases.iter().zip(&texts) {
                black_box(ours(case, black_box(text)));
            }
        })
    });
    g.bench_function("cel", |b| {
        b.iter(|| {
            for (case, text) in cases.iter().zip(&texts) {
                black_box(cel_e2e(case, black_box(text)));
            }
        })
    });
    g.bench_function("cedar", |b| {
        b.iter(|| {
            for (case, text) in cases.iter().zip(&texts) {
                black_box(cedar_e2e(case, black_box(text)));
            }
        })
    });
    let rego = &mut e.rego;
    g.bench_function("regorus", |b| {
        b.iter(|| {
            for (case, text) in cases.iter().zip(&texts) {
                let t = &case.test;
                let input = rego_peer::input_from_json(
                    &t.action,
                    &t.actor,
                    black_box(text),
                    &t.source,
                    &t.now,
                );
                black_box(rego.decide(&input));
            }
        })
    });
    g.finish();
}

fn main() {
    if wall_clock_requested() {
        let mut c = Criterion::default().configure_from_args();
        finance(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpu)
            .configure_from_args();
        finance(&mut c);
        c.final_summary();
    }
}
