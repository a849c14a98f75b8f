#!/usr/bin/env bash
# Replay benchmark: `countersign replay` over RUNS stored runs (default
# 1,000,000) in an SQLite store.
#
#   benches/replay/run.sh                 # SEED=1000 RUNS=1000000
#   RUNS=100000 benches/replay/run.sh
#
# 1. A real gate (release build) on 127.0.0.1 records SEED runs: the requests
#    of the finance example's policy tests, in turn.
# 2. The gate stops; seed.py copies those rows until the store holds RUNS
#    runs (same shape and size; see seed.py).
# 3. `countersign replay --stats` runs twice over it: with the policies that
#    decided (no change) and with a changed copy (refund threshold lowered),
#    timed with /usr/bin/time. --stats prints where the time went.
#
# KEEP=1 keeps the temporary directory. Everything stays on 127.0.0.1.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SEED=${SEED:-1000}
RUNS=${RUNS:-1000000}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
PY="$REPO/target/py-venv/bin/python3"
say() { printf '==> %s\n' "$*" >&2; }

[ -x "$PY" ] || { python3 -m venv "$REPO/target/py-venv"; }
"$PY" -c "import ruamel.yaml" 2>/dev/null || "$PY" -m pip install --quiet check-jsonschema

say "building countersign (release)"
(cd "$REPO" && cargo build --release --quiet -p countersign)
CS="$TARGET_DIR/release/countersign"

WORK=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/config.yaml" <<YAML
listen: 127.0.0.1:$PORT
public_url: http://127.0.0.1:$PORT
data_dir: $WORK/data
rate_limit: { per_second: 100000, burst: 100000 }
console: false
workspaces:
  default:
    policies: $REPO/policies
YAML
KEY=$("$CS" keys create --workspace default --role agent --label replay-bench --config "$WORK/config.yaml" 2>/dev/null)
RUST_LOG=warn "$CS" serve --config "$WORK/config.yaml" >"$WORK/gate.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
say "recording $SEED runs through the gate"
"$PY" "$HERE/seed.py" send --gate "http://127.0.0.1:$PORT" --key "$KEY" --policies "$REPO/policies" --runs "$SEED"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
DB="$WORK/data/countersign.db"
say "copying up to $RUNS runs"
"$PY" "$HERE/seed.py" replicate --db "$DB" --total "$RUNS"
ls -l "$DB" >&2

mkdir -p "$WORK/changed"
cp "$REPO"/policies/finance/*.yaml "$WORK/changed/"
rm -f "$WORK"/changed/*_test.yaml
sed -i 's/payload.amount > 50$/payload.amount > 40/' "$WORK/changed/refunds.yaml"

for policies in "$REPO/policies" "$WORK/changed"; do
  say "replay with $policies"
  set +e
  /usr/bin/time -f 'wall %e s, user %U s, sys %S s, max RSS %M KB' \
    "$CS" replay --store "$DB" --policies "$policies" --stats >"$WORK/out.txt"
  status=$?
  set -e
  head -20 "$WORK/out.txt"
  echo "exit $status"
done
