#!/usr/bin/env bash
# A/B load comparison of two gate builds (or two configurations of one
# build): alternating short runs of the same wrk script against a fresh
# database each time, so both sides see the same machine state.
#
#   benches/load/ab.sh BIN_A BIN_B            # two builds, 3 rounds
#   ROUNDS=5 CONNECTIONS=8 benches/load/ab.sh BIN_A BIN_B
#   EXTRA_CONFIG_A="console: false" benches/load/ab.sh BIN BIN
#   ENV_B="COUNTERSIGN_FLOOR=no-store" benches/load/ab.sh BIN BIN_FLOOR
#
# To keep a build of the current tree as side A before changing the code:
#   cargo build --release -p countersign && cp target/release/countersign /tmp/gate-a
#
# Knobs (environment): ROUNDS (3), CONNECTIONS (64), DURATION (10s), WARMUP
# (2s), THREADS (2), CASES (allow|pending|block, default the mix),
# EXTRA_CONFIG_A / EXTRA_CONFIG_B (lines added to that side's config),
# ENV_A / ENV_B (NAME=VALUE words set in that side's environment, e.g. for
# a build with benches/load/floor.patch applied; see BENCHMARKS.md),
# BARE (path to the bare ceiling's binary, benches/load/bare: each round
# then starts with a run of it, so every line has its ceiling beside it).
#
# One line per run: side, req/s, p50 and p99 latency, the gate's CPU per
# request (all threads), the SQLite writer thread's CPU per request, and the
# runs per group commit (from /metrics). Everything listens on 127.0.0.1;
# each gate is killed when its run ends, whatever the exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 BIN_A BIN_B" >&2; exit 2; }
BIN_A=$(realpath "$1")
BIN_B=$(realpath "$2")
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
for b in "$BIN_A" "$BIN_B"; do
  [ -x "$b" ] || { echo "error: $b is not an executable" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "error: wrk is required (apt-get install wrk)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/countersign-ab.XXXXXX")
GATE_PID=""
cleanup() {
  local code=$?
  if [ -n "$GATE_PID" ]; then { kill -9 "$GATE_PID" && wait "$GATE_PID"; } 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CLK_TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "$1"; }

# Sums the CPU ticks of the gate's threads whose name starts with $2.
thread_ticks() {
  local sum=0 t
  for t in /proc/"$1"/task/*; do
    case "$(cat "$t/comm" 2>/dev/null)" in
      "$2"*) sum=$((sum + $(ticks "$t/stat"))) ;;
    esac
  done
  echo "$sum"
}

metric() {
  curl -fsS -m 5 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

# wait_up WHAT LOG: waits until the server started as $GATE_PID answers
# /healthz on $PORT; if it exits or 15 s pass, names WHAT, shows the end of
# LOG and stops the script.
wait_up() {
  for _ in $(seq 1 150); do
    kill -0 "$GATE_PID" 2>/dev/null || break
    curl -fsS -m 1 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: $1 did not come up on port $PORT:" >&2
  tail -5 "$2" >&2
  exit 1
}

# run SIDE BIN EXTRA_CONFIG ENV
run() {
  local side=$1 bin=$2 extra=$3 dir=$WORK/run
  local -a envs
  read -r -a envs <<<"$4"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp -r "$REPO/policies" "$dir/policies"
  cat >"$dir/countersign.yaml" <<EOF
listen: 127.0.0.1:$PORT
data_dir: ./countersign-data
store: sqlite://./countersign-data/countersign.db
rate_limit: { per_second: 10000000, burst: 10000000 }
$extra
workspaces:
  default: { policies: ./policies }
EOF
  local key
  if ! key=$("$bin" keys create --workspace default --role agent --label ab \
    --config "$dir/countersign.yaml" 2>"$dir/keys.log"); then
    echo "error: side $side ($bin) could not create an API key:" >&2
    cat "$dir/keys.log" >&2
    exit 1
  fi
  env RUST_LOG=warn "${envs[@]}" "$bin" serve --config "$dir/countersign.yaml" >"$dir/gate.log" 2>&1 &
  GATE_PID=$!
  wait_up "side $side ($bin)" "$dir/gate.log"
  export COUNTERSIGN_KEY=$key
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$HERE/intercept.lua" \
    "http://127.0.0.1:$PORT/v1/intercept" -- "warm$RANDOM" ${CASES:-} >/dev/null 2>&1
  local c0 w0 s0 n0 c1 w1 s1 n1 out
  c0=$(ticks "/proc/$GATE_PID/stat")
  w0=$(thread_ticks "$GATE_PID" countersign-sql)
  s0=$(metric countersign_store_batch_size_sum)
  n0=$(metric countersign_store_batch_size_count)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/intercept.lua" \
    "http://127.0.0.1:$PORT/v1/intercept" -- "ab$RANDOM" ${CASES:-} 2>&1 | grep '^RESULT')
  c1=$(ticks "/proc/$GATE_PID/stat")
  w1=$(thread_ticks "$GATE_PID" countersign-sql)
  s1=$(metric countersign_store_batch_size_sum)
  n1=$(metric countersign_store_batch_size_count)
  { kill -9 "$GATE_PID" && wait "$GATE_PID"; } 2>/dev/null || true
  GATE_PID=""
  python3 - "$side" "$out" "$CLK_TCK" "$c0" "$c1" "$w0" "$w1" "$s0" "$s1" "$n0" "$n1" <<'PY'
import sys
side, out, tck = sys.argv[1], sys.argv[2], float(sys.argv[3])
c0, c1, w0, w1, s0, s1, n0, n1 = map(float, sys.argv[4:12])
f = dict(kv.split("=") for kv in out.split()[1:])
req = float(f["requests"])
us = lambda t: t / tck * 1e6 / req if req else float("nan")
per_commit = (s1 - s0) / (n1 - n0) if n1 > n0 else float("nan")
print("%-2s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f us/req  writer %5.1f us/req  %5.1f runs/commit  non2xx %s"
      % (side, float(f["rps"]), float(f["p50_ms"]), float(f["p99_ms"]), us(c1 - c0), us(w1 - w0), per_commit, f["non2xx"]))
PY
}

# run_bare: the ceiling under the same wrk script, for the ratio.
run_bare() {
  "$BARE" "$PORT" >"$WORK/bare.log" 2>&1 &
  GATE_PID=$!
  wait_up "the bare ceiling ($BARE)" "$WORK/bare.log"
  local c0 c1 out
  export COUNTERSIGN_KEY=none
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$HERE/intercept.lua" \
    "http://127.0.0.1:$PORT/v1/intercept" -- "warm$RANDOM" ${CASES:-} >/dev/null 2>&1
  c0=$(ticks "/proc/$GATE_PID/stat")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/intercept.lua" \
    "http://127.0.0.1:$PORT/v1/intercept" -- "bare$RANDOM" ${CASES:-} 2>&1 | grep '^RESULT')
  c1=$(ticks "/proc/$GATE_PID/stat")
  { kill -9 "$GATE_PID" && wait "$GATE_PID"; } 2>/dev/null || true
  GATE_PID=""
  python3 - "$out" "$CLK_TCK" "$c0" "$c1" <<'PY'
import sys
out, tck, c0, c1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
f = dict(kv.split("=") for kv in out.split()[1:])
req = float(f["requests"])
print("%-4s %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f us/req  non2xx %s"
      % ("bare", float(f["rps"]), float(f["p50_ms"]), float(f["p99_ms"]),
         (c1 - c0) / tck * 1e6 / req if req else float("nan"), f["non2xx"]))
PY
}

if [ -n "${BARE:-}" ]; then
  BARE=$(realpath "$BARE")
  [ -x "$BARE" ] || { echo "error: BARE=$BARE is not an executable" >&2; exit 2; }
fi

echo "A: $BIN_A ${EXTRA_CONFIG_A:+($EXTRA_CONFIG_A)} ${ENV_A:+[$ENV_A]}"
echo "B: $BIN_B ${EXTRA_CONFIG_B:+($EXTRA_CONFIG_B)} ${ENV_B:+[$ENV_B]}"
echo "$CONNECTIONS connections, $DURATION runs, ${CASES:-mixed} requests, $ROUNDS rounds"
for _ in $(seq 1 "$ROUNDS"); do
  if [ -n "${BARE:-}" ]; then run_bare; fi
  run A "$BIN_A" "${EXTRA_CONFIG_A:-}" "${ENV_A:-}"
  run B "$BIN_B" "${EXTRA_CONFIG_B:-}" "${ENV_B:-}"
done
