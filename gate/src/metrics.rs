//! Prometheus metrics, rendered by hand in the text exposition format: a
//! handful of counters and one latency histogram do not need a library.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The gate's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions_allowed: AtomicU64,
    decisions_pending: AtomicU64,
    decisions_blocked: AtomicU64,
    idempotent_replays: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    policy_reloads_ok: AtomicU64,
    policy_reloads_failed: AtomicU64,
}

/// Which counter a new run increments.
#[derive(Debug, Clone, Copy)]
pub enum DecisionKind {
    /// allowed
    Allowed,
    /// pending_approval
    Pending,
    /// blocked
    Blocked,
}

impl Metrics {
    /// Counts a decided intercept and its latency.
    pub fn record_intercept(&self, kind: DecisionKind, replay: bool, seconds: f64) {
        let counter = match kind {
            DecisionKind::Allowed => &self.decisions_allowed,
            DecisionKind::Pending => &self.decisions_pending,
            DecisionKind::Blocked => &self.decisions_blocked,
        };
        if replay {
            self.idempotent_replays.fetch_add(1, Ordering::Relaxed);
        } else {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Counts a policy reload attempt.
    pub fn record_reload(&self, ok: bool) {
        if ok {
            self.policy_reloads_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.policy_reloads_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders every metric, plus the store's batch sizes when it batches.
    pub fn render(&self, batches: Option<countersign_store::BatchStats>) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP countersign_decisions_total Runs created, by governance decision."
        );
        let _ = writeln!(out, "# TYPE countersign_decisions_total counter");
        for (status, c) in [
            ("allowed", &self.decisions_allowed),
            ("pending_approval", &self.decisions_pending),
            ("blocked", &self.decisions_blocked),
        ] {
            let _ = writeln!(
                out,
                "countersign_decisions_total{{status=\"{status}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP countersign_idempotent_replays_total Intercepts answered with an existing run."
        );
        let _ = writeln!(out, "# TYPE countersign_idempotent_replays_total counter");
        let _ = writeln!(
            out,
            "countersign_idempotent_replays_total {}",
            get(&self.idempotent_replays)
        );
        let _ = writeln!(
            out,
            "# HELP countersign_intercept_duration_seconds Time to decide and durably record an intercept."
        );
        let _ = writeln!(
            out,
            "# TYPE countersign_intercept_duration_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "countersign_intercept_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                get(&self.latency_buckets[i])
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            out,
            "countersign_intercept_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "countersign_intercept_duration_seconds_sum {}",
            get(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "countersign_intercept_duration_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP countersign_policy_reloads_total Policy reload attempts, by outcome."
        );
        let _ = writeln!(out, "# TYPE countersign_policy_reloads_total counter");
        let _ = writeln!(
            out,
            "countersign_policy_reloads_total{{outcome=\"ok\"}} {}",
            get(&self.policy_reloads_ok)
        );
        let _ = writeln!(
            out,
            "countersign_policy_reloads_total{{outcome=\"failed\"}} {}",
            get(&self.policy_reloads_failed)
        );
        if let Some(b) = batches {
            let _ = writeln!(
                out,
                "# HELP countersign_store_batch_size Store commands committed per group-commit transaction."
            );
            let _ = writeln!(out, "# TYPE countersign_store_batch_size histogram");
            for (le, n) in &b.buckets {
                let _ = writeln!(
                    out,
                    "countersign_store_batch_size_bucket{{le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "countersign_store_batch_size_bucket{{le=\"+Inf\"}} {}",
                b.count
            );
            let _ = writeln!(out, "countersign_store_batch_size_sum {}", b.sum);
            let _ = writeln!(out, "countersign_store_batch_size_count {}", b.count);
        }
        out
    }
}
