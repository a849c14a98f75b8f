#!/usr/bin/env bash
# Runs every fuzz target, one after the other, for N seconds each
# (first argument, default 60). Extra arguments go to libFuzzer.
#
#   fuzz/run-all.sh            # 60 s per target
#   fuzz/run-all.sh 600        # 10 min per target
#   fuzz/run-all.sh 60 -jobs=2 -workers=2
#
# New corpus entries go to fuzz/corpus/<target> (not in git); seeds are read
# from fuzz/seeds/<target>. A crash stops that target only; its input is in
# fuzz/artifacts/<target>/ and the script exits non-zero at the end.
set -u

seconds="${1:-60}"
shift || true
case "$seconds" in
    ''|*[!0-9]*) echo "usage: $0 [seconds] [libFuzzer args…]" >&2; exit 2 ;;
esac

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir"

# cargo-fuzz passes nightly-only flags (-Zsanitizer, …) to rustc; this lets a
# stable toolchain accept them. Harmless on nightly.
export RUSTC_BOOTSTRAP=1

targets=(expr_parse policy_load eval_payload intercept_body)
declare -A dict=([expr_parse]=expr [policy_load]=policy [eval_payload]=payload [intercept_body]=payload)

cargo fuzz build || exit 1

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "=== $t: ${seconds}s ==="
    if ! cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -dict="dicts/${dict[$t]}.dict" \
        -print_final_stats=1 "$@"; then
        failed+=("$t")
    fi
done

if ((${#failed[@]})); then
    echo "crashes in: ${failed[*]} (inputs under $fuzz_dir/artifacts/)" >&2
    exit 1
fi
echo "no crashes"
