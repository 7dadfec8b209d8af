#!/usr/bin/env bash
# CI smoke of the cargo-fuzz targets: builds them once, then runs each for a bounded time.
#
#   bash fuzz/smoke.sh            # 60 s per target (the issue's budget)
#   bash fuzz/smoke.sh 10         # 10 s per target
#   FUZZ_TARGETS="token_header error_body" bash fuzz/smoke.sh 30
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). Each target's corpus grows under fuzz/corpus/<target>
# (seeded from fuzz/seeds/<target> when present); a crash leaves its input under
# fuzz/artifacts/<target> and fails the run. The time is one per target, so the whole smoke
# takes about (targets × seconds) plus the build: the first build of the fuzz workspace
# compiles the server's dependency tree with ASan (several minutes on 2 cores), later builds
# are incremental.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
seconds="${1:-60}"
targets="${FUZZ_TARGETS:-token_header correlation_id identifiers json_bodies error_body}"

cd "$repo"
cargo +nightly fuzz build
status=0
for target in $targets; do
    corpus="$here/corpus/$target"
    mkdir -p "$corpus"
    seeds=()
    [ -d "$here/seeds/$target" ] && seeds=("$here/seeds/$target")
    echo "=== fuzz $target for ${seconds}s"
    # -rss_limit_mb bounds memory on a shared CI machine; -timeout flags a single input that
    # takes over 10 s (a hang) as a failure.
    log="$here/last-$target.log"
    set +e
    cargo +nightly fuzz run "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        > "$log" 2>&1
    code=$?
    set -e
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|.*panicked)' "$log" || true
    if [ "$code" -ne 0 ]; then
        echo "!!! $target failed (exit $code): see fuzz/last-$target.log and fuzz/artifacts/$target" >&2
        status=1
    fi
done
exit "$status"
