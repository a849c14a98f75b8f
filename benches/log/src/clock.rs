//! Process CPU time as a criterion measurement (`LOG_BENCH_CLOCK=cpu`):
//! the CPU every thread of the bench spent (the caller, tokio's workers and
//! the blocking pool that runs SQLite), which other builds on a shared
//! machine inflate far less than wall time.

use std::time::Duration;

use cpu_time::ProcessTime;
use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};

/// Whether `LOG_BENCH_CLOCK=cpu` asks for process CPU time.
pub fn cpu_clock_requested() -> bool {
    std::env::var("LOG_BENCH_CLOCK").is_ok_and(|v| v == "cpu")
}

/// CPU time of the whole process between start and end.
pub struct ProcessCpu;

impl Measurement for ProcessCpu {
    type Intermediate = ProcessTime;
    type Value = Duration;

    fn start(&self) -> ProcessTime {
        ProcessTime::now()
    }
    fn end(&self, start: ProcessTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuNanos
    }
}

struct CpuNanos;

fn unit(ns: f64) -> (f64, &'static str) {
    match ns {
        x if x < 1e3 => (1.0, "ns cpu"),
        x if x < 1e6 => (1e3, "µs cpu"),
        x if x < 1e9 => (1e6, "ms cpu"),
        _ => (1e9, "s cpu"),
    }
}

impl ValueFormatter for CpuNanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, name) = unit(typical);
        for v in values.iter_mut() {
            *v /= div;
        }
        name
    }
    fn scale_throughputs(&self, _: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => *n,
            _ => 1,
        } as f64;
        for v in values.iter_mut() {
            *v = n * 1e9 / *v;
        }
        "/s cpu"
    }
    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}
