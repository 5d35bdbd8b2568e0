#!/usr/bin/env bash
# Runs each fuzz target for a bounded time: `frames` in both build modes,
# then `server` and `extensions`. Fails on the first crash, hang or leak
# the fuzzer reports.
#
#   bash fuzz/run.sh [SECONDS]      # default 60 per run, or $FUZZ_SECONDS
#   FUZZ_TARGETS="frames" bash fuzz/run.sh 30
#
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the pinned stable
# toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
seconds="${1:-${FUZZ_SECONDS:-60}}"
targets="${FUZZ_TARGETS:-frames server extensions}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# One run: target, extra cargo-fuzz flags; prints executions and coverage.
run() {
    local target="$1" label="$2"; shift 2
    local log="artifacts/$target-$label.log"
    mkdir -p "corpus/$target" "artifacts/$target"
    printf '\n---- fuzz %s (%s), %ss\n' "$target" "$label" "$seconds"
    local status=0
    cargo fuzz run "$@" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -dict="$target.dict" -print_final_stats=1 >"$log" 2>&1 || status=$?
    # The last status line (`#N DONE cov: … exec/s: …`) and the final stats.
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "FAILED: fuzz $target ($label) exited with $status; log: fuzz/$log"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written to' "$log" || tail -n 40 "$log"
        exit "$status"
    fi
}

for target in $targets; do
    case "$target" in
        frames)
            run frames default
            run frames enforce-ws-spec --features enforce-ws-spec
            ;;
        *)
            run "$target" default
            ;;
    esac
done
echo "fuzzing passed"
