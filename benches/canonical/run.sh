#!/usr/bin/env bash
# serde_json's arbitrary_precision and the exact canonical form against the
# old build (plain serde_json, RFC 8785 numbers through f64): parsing, the
# canonical form and json! building of what one intercept writes.
#
# Builds a throwaway crate in a temporary directory twice (with and without
# the feature), taking the old canonical.rs from commit 0d1be31 and the new
# one from the work tree, and prints three runs of each. Usage:
#   benches/canonical/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src"
strip_tests() { sed '/^#\[cfg(test)\]/,$d' | sed 's/pub(crate) fn/pub fn/'; }
git -C "$repo" show 0d1be31:store/src/canonical.rs | strip_tests > "$tmp/src/old.rs"
strip_tests < "$repo/store/src/canonical.rs" > "$tmp/src/new.rs"
cp "$here/main.rs" "$tmp/src/main.rs"
cat > "$tmp/Cargo.toml" <<'TOML'
[package]
name = "canon-bench"
version = "0.0.0"
edition = "2024"
[workspace]
[features]
ap = ["serde_json/arbitrary_precision"]
[dependencies]
serde_json = { version = "=1.0.154", features = ["float_roundtrip"] }
ryu = "1"
TOML
cd "$tmp"
cargo build --release -q && cp target/release/canon-bench old
cargo build --release -q --features ap && cp target/release/canon-bench new
for _ in 1 2 3; do ./old; ./new; done
