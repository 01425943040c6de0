#!/usr/bin/env bash
# CI smoke run of every fuzz target: builds them (libFuzzer, AddressSanitizer, debug
# assertions) and runs each for FUZZ_SECONDS (default 15) from the committed seeds plus
# whatever fuzz/corpus/ already holds. Any crash, failed property, leak or hang fails the script,
# printing the input and how to reproduce it; the input is left in fuzz/artifacts/<target>/.
#
# cargo-fuzz passes -Z flags to rustc, which the stable toolchain accepts with RUSTC_BOOTSTRAP=1
# (no nightly needed). A crash input becomes a test in tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-15}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "fuzz/corpus/$target"
    # -timeout: one input taking longer than that is a hang, a failure like a crash.
    if cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=20 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1; then
        runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' || true)"
        echo "fuzz $target: ${runs:-?} runs in ${seconds}s, no failure"
    else
        echo "fuzz $target FAILED:" >&2
        grep -A 3 -E 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' \
            "$logs/$target.log" | head -n 20 >&2 || true
        sed -n '/^Failing input/,/^Minimize/p' "$logs/$target.log" | head -n 40 >&2
        tail -n 5 "$logs/$target.log" >&2
        exit 1
    fi
done
