//! Statistics: run counts for the dashboard, batch sizes for metrics.

use super::runs::{ExecutionStatus, GovernanceStatus};
use serde::{Deserialize, Serialize};

/// One group of [`crate::Store::run_stats`]: how many runs created on `day`
/// (UTC) are now in these states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRow {
    /// The UTC day the runs were created, `YYYY-MM-DD`.
    pub day: String,
    /// Their governance status now.
    pub governance_status: GovernanceStatus,
    /// Their execution status now.
    pub execution_status: ExecutionStatus,
    /// How many.
    pub count: u64,
}

/// Batch-size statistics of a group-committing writer, for metrics export.
///
/// `buckets` are cumulative like a Prometheus histogram: `count` of the
/// bucket with bound `le` is the number of batches of at most `le` commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Cumulative (le, count) buckets.
    pub buckets: Vec<(u64, u64)>,
    /// Number of batches committed (or attempted).
    pub count: u64,
    /// Total commands over all batches.
    pub sum: u64,
    /// Largest batch seen.
    pub max: u64,
}
