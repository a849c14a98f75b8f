#!/usr/bin/env bash
# Load benchmark: the real gate (release build, durable SQLite audit with
# synchronous=FULL and group commit) against a bare axum server that answers
# the same JSON with no policy and no storage (benches/load/bare), driven by
# the same wrk script in the same run.
#
#   benches/load/run.sh                       # 64 and 8 connections, 25 s each
#   DURATION=10s CONNECTIONS="64" benches/load/run.sh
#
# Knobs (environment): DURATION (25s), WARMUP (5s), CONNECTIONS ("64 8"),
# THREADS (2), KEEP=1 keeps the temporary directory (database, logs, metrics),
# CASES=allow|pending|block sends only that decision's request (default: all
# three in turn), EXTRA_CONFIG adds lines to the gate's configuration (for
# example EXTRA_CONFIG="console: false" turns the console transport, and with
# it every approval delivery, off),
# PROFILE=profiling builds and runs the gate from Cargo's `profiling` profile
# (the release build with line tables and symbols, for `perf record`; the
# release profile itself is stripped),
# WAL_PAGES=1 copies the database and its WAL halfway through the first gate
# run and reports which tables and indexes the WAL's pages belong to
# (wal-pages.py).
#
# Everything listens on and targets 127.0.0.1 only; every wrk run is bounded
# by its duration; servers are killed on exit, whatever the exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-25s}
WARMUP=${WARMUP:-5s}
CONNECTIONS=${CONNECTIONS:-"64 8"}
THREADS=${THREADS:-2}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $2 (Debian package)"
    apt-get update -qq >/dev/null && apt-get install -y -qq "$2" >/dev/null
  fi
  command -v "$1" >/dev/null 2>&1 || die "$1 is required (apt-get install $2)"
}
need wrk wrk
need curl curl
need sqlite3 sqlite3
need /usr/bin/time time

# --- Build -------------------------------------------------------------------
PROFILE=${PROFILE:-release}
say "building the gate ($PROFILE)"
(cd "$REPO" && cargo build --profile "$PROFILE" -p countersign --quiet)
GATE_BIN=$TARGET_DIR/$PROFILE/countersign
say "building the bare ceiling (release)"
(cd "$HERE/bare" && cargo build --release --quiet)
BARE_BIN=${CARGO_TARGET_DIR:-$HERE/bare/target}/release/countersign-bare-ceiling
if [ ! -x "$GATE_BIN" ] || [ ! -x "$BARE_BIN" ]; then die "binaries missing"; fi

# --- Site --------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/countersign-load.XXXXXX")
GATE_PID=""
BARE_PID=""
cleanup() {
  local code=$?
  for pid in $GATE_PID $BARE_PID; do
    { kill -9 "$pid" && wait "$pid"; } 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}
GATE_PORT=$(free_port)
BARE_PORT=$(free_port)
[ "$GATE_PORT" != "$BARE_PORT" ] || BARE_PORT=$((GATE_PORT + 1))

cp -r "$REPO/policies" "$WORK/policies"
cat >"$WORK/countersign.yaml" <<EOF
listen: 127.0.0.1:$GATE_PORT
data_dir: ./countersign-data
store: sqlite://./countersign-data/countersign.db
rate_limit: { per_second: 10000000, burst: 10000000 }
${EXTRA_CONFIG:-}
workspaces:
  default: { policies: ./policies }
EOF
CONFIG=$WORK/countersign.yaml
DB=$WORK/countersign-data/countersign.db
COUNTERSIGN_KEY=$("$GATE_BIN" keys create --workspace default --role agent --label load --config "$CONFIG" 2>/dev/null)
export COUNTERSIGN_KEY

# --- Servers -----------------------------------------------------------------
RUST_LOG=warn "$GATE_BIN" serve --config "$CONFIG" >"$WORK/gate.log" 2>&1 &
GATE_PID=$!
"$BARE_BIN" "$BARE_PORT" >"$WORK/bare.log" 2>&1 &
BARE_PID=$!

wait_up() {
  local url=$1 pid=$2
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || die "server for $url exited: $(tail -5 "$WORK"/*.log)"
    curl -fsS -m 1 "$url" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$url did not come up in 15 s"
}
wait_up "http://127.0.0.1:$GATE_PORT/healthz" "$GATE_PID"
wait_up "http://127.0.0.1:$BARE_PORT/healthz" "$BARE_PID"

# Sanity: both answer the script's request with 201 and similar sizes.
probe() {
  curl -sS -m 5 -o /dev/null -w '%{http_code} %{size_download}' -X POST \
    -H "Authorization: Bearer $COUNTERSIGN_KEY" -H 'Content-Type: application/json' \
    --data "{\"action\":\"issue_refund\",\"actor\":\"support_agent\",\"idempotency_key\":\"probe-$1\",\"payload\":{\"amount\":500,\"currency\":\"EUR\",\"original_charge\":{\"amount\":1000,\"currency\":\"EUR\"}}}" \
    "$2"
}
say "probe gate: $(probe gate "http://127.0.0.1:$GATE_PORT/v1/intercept")  bare: $(probe bare "http://127.0.0.1:$BARE_PORT/v1/intercept")  (status bytes)"

# The disk under the database: how long one fsync of a small append takes.
FSYNC=$(python3 - "$WORK/fsync-probe" <<'PY' 2>/dev/null || echo "not measured (no python3)"
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
lat = []
for _ in range(200):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter()
    os.fsync(fd)
    lat.append(time.perf_counter() - t)
os.close(fd)
os.unlink(sys.argv[1])
lat.sort()
print("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms (200 x 4 KiB append + fsync)" % (lat[100] * 1e3, lat[180] * 1e3, lat[198] * 1e3))
PY
)
say "fsync on the data directory's disk: $FSYNC"

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The gate's SQLite writer thread (the only writer; it group-commits).
writer_tid() {
  local t
  for t in /proc/"$1"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = countersign-sql ] && { basename "$t"; return 0; }
  done
  echo none
}
# "ns-on-cpu ns-waiting-for-a-cpu" of a thread (0 0 when unknown).
sched() { awk '{print $1, $2}' "/proc/$1/task/$2/schedstat" 2>/dev/null || echo "0 0"; }
# "commands transactions" committed by the gate's store so far.
batches() {
  curl -fsS -m 5 "http://127.0.0.1:$GATE_PORT/metrics" | awk '
    $1 == "countersign_store_batch_size_sum" {s = $2}
    $1 == "countersign_store_batch_size_count" {n = $2}
    END {print s + 0, n + 0}'
}

# run_wrk NAME PORT PID CONNS PREFIX: warm-up, then the measured run; prints
# the script's "RESULT …" line extended with the server's and wrk's CPU use
# and, for the gate, what its writer thread did and how commits batched.
run_wrk() {
  local name=$1 port=$2 pid=$3 conns=$4 prefix=$5
  local url out before after wrk_cpu load wtid s0 s1 t0 t1 b0 b1 extra=""
  url="http://127.0.0.1:$port/v1/intercept"
  wrk -t"$THREADS" -c"$conns" -d"$WARMUP" --timeout 5s -s "$HERE/intercept.lua" "$url" -- "warm$prefix" ${CASES:-} >/dev/null
  if [ "$name" = gate ]; then
    wtid=$(writer_tid "$pid")
    b0=$(batches)
    s0=$(sched "$pid" "$wtid")
  fi
  before=$(cpu_ticks "$pid")
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$name" = gate ] && [ "${WAL_PAGES:-0}" = 1 ] && [ ! -e "$WORK/snapshot.db" ]; then
    ( sleep "$(( ${DURATION%s} / 2 ))"
      cp "$DB-wal" "$WORK/snapshot.db-wal.tmp" && cp "$DB" "$WORK/snapshot.db" \
        && mv "$WORK/snapshot.db-wal.tmp" "$WORK/snapshot.db-wal" ) &
  fi
  t0=$(date +%s%N)
  out=$( { /usr/bin/time -f 'WRKCPU %U %S' \
    wrk -t"$THREADS" -c"$conns" -d"$DURATION" --timeout 5s --latency -s "$HERE/intercept.lua" "$url" -- "$prefix" ${CASES:-}; } 2>&1 ) \
    || die "wrk failed against $name: $out"
  t1=$(date +%s%N)
  after=$(cpu_ticks "$pid")
  if [ "$name" = gate ]; then
    s1=$(sched "$pid" "$wtid")
    b1=$(batches)
    # Writer thread over the run's wall time: on a CPU, runnable but waiting
    # for a CPU, and the rest (blocked in fsync/write, or idle for work).
    extra=$(awk -v s0="$s0" -v s1="$s1" -v b0="$b0" -v b1="$b1" -v wall=$((t1 - t0)) 'BEGIN {
      split(s0, a, " "); split(s1, b, " "); split(b0, c, " "); split(b1, d, " ");
      cpu = (b[1] - a[1]) / wall * 100; runq = (b[2] - a[2]) / wall * 100;
      cmds = d[1] - c[1]; tx = d[2] - c[2];
      printf "writer_cpu_pct=%.0f writer_runq_pct=%.0f writer_blocked_pct=%.0f commits_per_s=%.0f cmds_per_commit=%.1f writer_us_per_cmd=%.0f",
        cpu, runq, 100 - cpu - runq, tx / (wall / 1e9), (tx > 0 ? cmds / tx : 0),
        (cmds > 0 ? (b[1] - a[1]) / cmds / 1e3 : 0) }')
  fi
  printf '%s\n' "$out" >"$WORK/wrk-$name-$conns.txt"
  wrk_cpu=$(printf '%s\n' "$out" | awk '/^WRKCPU/ {print $2 + $3}')
  printf '%s server_cpu_s=%s wrk_cpu_s=%s loadavg_before=%s %s\n' \
    "$(printf '%s\n' "$out" | grep '^RESULT')" \
    "$(awk -v t=$((after - before)) -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", t / hz}')" \
    "${wrk_cpu:-?}" "$load" "$extra"
}
field() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

declare -A RES
for c in $CONNECTIONS; do
  say "bare ceiling, $c connections: $WARMUP warm-up + $DURATION"
  RES[bare,$c]=$(run_wrk bare "$BARE_PORT" "$BARE_PID" "$c" "bare$c")
  say "  ${RES[bare,$c]}"
  say "gate, $c connections: $WARMUP warm-up + $DURATION"
  RES[gate,$c]=$(run_wrk gate "$GATE_PORT" "$GATE_PID" "$c" "gate$c")
  say "  ${RES[gate,$c]}"
done
curl -fsS -m 5 "http://127.0.0.1:$GATE_PORT/metrics" >"$WORK/metrics.txt"

# --- Durability: kill -9 the gate, then count what the database kept ---------
{ kill -9 "$GATE_PID" && wait "$GATE_PID"; } 2>/dev/null || true
GATE_PID=""
DURABLE_OK=yes
VERIFY=$("$GATE_BIN" audit verify --config "$CONFIG") || { DURABLE_OK=no; say "audit verify FAILED: $VERIFY"; }
declare -A KEPT
for c in $CONNECTIONS; do
  r=${RES[gate,$c]}
  acked=$(( $(field "$r" requests) - $(field "$r" non2xx) ))
  kept=$(sqlite3 "$DB" \
    "SELECT count(*) FROM runs WHERE workspace = 'default' AND idempotency_key LIKE 'gate$c-%'")
  KEPT[$c]="$kept/$acked"
  # Every 2xx is in the database; at most one request per connection was
  # still in flight (committed, never counted by wrk) when wrk stopped.
  if [ "$kept" -lt "$acked" ] || [ "$kept" -gt $((acked + c)) ]; then
    DURABLE_OK=no
    say "gate, $c connections: $acked acknowledged but $kept runs in the database"
  fi
done
TOTAL_RUNS=$(sqlite3 "$DB" "SELECT count(*) FROM runs")
# Approval requests that were due more than a second before the kill and not
# sent: the delivery worker falling behind the intercepts.
BACKLOG=$(sqlite3 "$DB" "SELECT count(*) FROM deliveries WHERE sent_at IS NULL \
  AND next_attempt_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 seconds')")
PLANNED=$(sqlite3 "$DB" "SELECT count(*) FROM deliveries")

# --- Report ------------------------------------------------------------------
printf '\nmachine: %s, %s cores (%s), load average %s; wrk -t%s, %s per run after %s warm-up\n' \
  "$(uname -sr)" "$(nproc)" "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$THREADS" "$DURATION" "$WARMUP"
printf 'fsync on the data disk: %s\n\n' "$FSYNC"
printf '%-6s %-5s %10s %8s %8s %8s %8s %7s %9s %9s %6s\n' \
  conns server "req/s" "p50 ms" "p90 ms" "p99 ms" "max ms" non2xx "cpu us/req" "wrk cpu%" load1
for c in $CONNECTIONS; do
  for s in bare gate; do
    r=${RES[$s,$c]}
    printf '%-6s %-5s %10s %8s %8s %8s %8s %7s %9s %9s %6s\n' "$c" "$s" \
      "$(field "$r" rps)" "$(field "$r" p50_ms)" "$(field "$r" p90_ms)" "$(field "$r" p99_ms)" \
      "$(field "$r" max_ms)" "$(field "$r" non2xx)" \
      "$(awk -v cpu="$(field "$r" server_cpu_s)" -v n="$(field "$r" requests)" 'BEGIN {printf "%.0f", (n > 0 ? cpu / n * 1e6 : 0)}')" \
      "$(awk -v cpu="$(field "$r" wrk_cpu_s)" -v d="$(field "$r" duration_s)" 'BEGIN {printf "%.0f", cpu / d * 100}')" \
      "$(field "$r" loadavg_before)"
  done
  awk -v g="$(field "${RES[gate,$c]}" rps)" -v b="$(field "${RES[bare,$c]}" rps)" -v c="$c" \
    -v k="${KEPT[$c]}" 'BEGIN {printf "%-6s gate/bare throughput %.1f%%; runs in the database / 2xx answers: %s\n", c, 100 * g / b, k}'
done
printf '\ngate writer thread during each run (share of wall time) and group commit:\n'
printf '%-6s %8s %9s %9s %12s %12s %14s\n' conns "on cpu" "cpu wait" blocked "commits/s" "runs/commit" "cpu us/run"
for c in $CONNECTIONS; do
  r=${RES[gate,$c]}
  printf '%-6s %7s%% %8s%% %8s%% %12s %12s %14s\n' "$c" "$(field "$r" writer_cpu_pct)" \
    "$(field "$r" writer_runq_pct)" "$(field "$r" writer_blocked_pct)" \
    "$(field "$r" commits_per_s)" "$(field "$r" cmds_per_commit)" "$(field "$r" writer_us_per_cmd)"
done
printf 'batch-size histogram over the whole run (warm-ups included):\n'
grep '^countersign_store_batch_size_bucket' "$WORK/metrics.txt" | sed 's/^/  /'
if [ "${WAL_PAGES:-0}" = 1 ]; then
  printf '\nWAL pages by table and index, halfway through the first gate run:\n'
  python3 "$HERE/wal-pages.py" "$WORK/snapshot.db" | sed 's/^/  /' || true
fi
printf 'audit verify after kill -9: %s (%s runs in the database, warm-ups and probes included)\n' "$VERIFY" "$TOTAL_RUNS"
printf 'approval deliveries planned: %s; due but not sent at the kill: %s\n' "$PLANNED" "$BACKLOG"
printf 'every acknowledged decision durable after kill -9: %s\n' "$DURABLE_OK"
[ "$DURABLE_OK" = yes ]
