#!/usr/bin/env bash
# Runs the Python SDK's test suite against a real `countersign serve`.
#
# Uses (and creates if needed) a virtualenv in sdk/python/.venv, installs the
# SDK with its crypto and dev extras (pytest, mypy), type-checks the package
# with mypy --strict, and runs pytest. The gate binary is
# taken from $COUNTERSIGN_BIN, default target/debug/countersign (build it
# first: cargo build -p countersign). Extra arguments go to pytest.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

export COUNTERSIGN_BIN="${COUNTERSIGN_BIN:-$repo/target/debug/countersign}"
if [[ ! -x "$COUNTERSIGN_BIN" ]]; then
    echo "error: no countersign binary at $COUNTERSIGN_BIN (run: cargo build -p countersign, or set COUNTERSIGN_BIN)" >&2
    exit 2
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
(cd "$repo" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e './sdk/python[crypto,dev]')

cd "$here"
# The package must type-check strictly (statuses are Literal types; tests/test_types.py
# checks that a wrong status in user code is caught).
"$venv/bin/python" -m mypy --no-incremental --cache-dir "$venv/.mypy_cache"
# pytest's exit status is this script's; its last line is the summary.
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
