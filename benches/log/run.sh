#!/usr/bin/env bash
# The verifiable log's benchmarks (BENCHMARKS.md, issue 15): inclusion and
# consistency proofs and tree_head_at on a SQLite workspace of 1,000,000
# events, and the full audit (Store::audit) of 100,000 events.
#
# The first run builds the two databases (allowed runs, 2 events each,
# 512 in flight so the writer's group commit batches them) under
# target/tmp/ and keeps them; later runs reuse them. Each benchmark runs
# twice: wall time, then process CPU time (every thread of the bench),
# which other work on a shared machine inflates less. Usage:
#   benches/log/run.sh                 # everything
#   LOG_BENCH=audit benches/log/run.sh # one group (proofs | audit)
#   benches/log/run.sh inclusion       # criterion's own name filter
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
uptime
cargo bench --bench log -- "$@"
uptime
LOG_BENCH_CLOCK=cpu cargo bench --bench log -- "$@"
uptime
