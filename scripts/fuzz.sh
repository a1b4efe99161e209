#!/usr/bin/env bash
# Builds the libFuzzer targets of Pingan's decoders with clang
# (-fsanitize=fuzzer,address,undefined; tests/fuzz/CMakeLists.txt) and runs
# each for SECONDS (default 60) from its seed corpus in tests/fuzz/corpus/.
# New inputs that add coverage go to build-fuzz/corpus/<target>/, crashes to
# build-fuzz/crashes/<target>/. Prints one line per target with the executions
# it survived; the exit status is 1 if any target crashed.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 5          # a quick pass (what scripts/test.sh runs)
#   TARGETS="wire rules" scripts/fuzz.sh 600
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 3600   # stop each at 10 million executions
#   FUZZ_MAX_LEN=4096 TARGETS=rules scripts/fuzz.sh 3600   # shorter inputs, faster runs
#   FUZZ_LEAN=1 FUZZ_ARGS=-entropic=0 TARGETS=rules scripts/fuzz.sh 3600
#       # a long campaign: ASan keeps no allocation stacks and a small
#       # quarantine (still every overflow; use-after-free within 8 MB of frees)
#   FUZZ_TIMEOUT=120 ...       # seconds an input may take (default 10; more on a loaded machine)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=${TARGETS:-"wire event_binary event_json rules http_intake line_protocol access_table config image query feed"}
CXX_FUZZ=${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}
if [ -z "$CXX_FUZZ" ]; then
    echo "fuzz: clang++ not found (apt-get install clang-14)" >&2
    exit 2
fi

if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S tests/fuzz -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
        ${CCACHE:+-DCMAKE_CXX_COMPILER_LAUNCHER=ccache} >/dev/null
fi
# shellcheck disable=SC2046
cmake --build "$BUILD" -j2 --target $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done)

status=0
for t in $TARGETS; do
    mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes/$t"
    log="$BUILD/fuzz_$t.log"
    # Findings in the repository's seeds are run first; -max_total_time bounds the run.
    set +e
    started=$(date +%s)
    asan=detect_leaks=1:abort_on_error=1
    [ -n "${FUZZ_LEAN:-}" ] && asan=$asan:malloc_context_size=0:max_malloc_fill_size=0:quarantine_size_mb=8
    # shellcheck disable=SC2086
    ASAN_OPTIONS=$asan UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$BUILD/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 ${FUZZ_ARGS:-} \
        -max_len="${FUZZ_MAX_LEN:-65536}" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -artifact_prefix="$BUILD/crashes/$t/" -print_final_stats=1 \
        "$BUILD/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        status=1
        echo "fuzz: $t CRASHED after ${runs:-?} executions; see $log and $BUILD/crashes/$t/"
        grep -m3 -E 'ERROR|runtime error|SUMMARY' "$log" | sed 's/^/    /' || true
    else
        echo "fuzz: $t ${runs:-?} executions in $(($(date +%s) - started))s, no crash"
    fi
done
exit $status
