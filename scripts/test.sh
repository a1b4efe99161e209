#!/usr/bin/env bash
# Sets up (installs missing Debian packages, chromium and node included, and
# playwright-core for the browser test; configures, builds) and runs every
# test: first the normal build, then the same tests built with AddressSanitizer
# and UndefinedBehaviorSanitizer (skip that with SANITIZE=0). Between the two,
# each libFuzzer target runs briefly (FUZZ=0 skips it; scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== format"
scripts/format.sh --check
echo "== tests"
ctest --test-dir build --output-on-failure -j2 --timeout 300

if [ "${FUZZ:-1}" != 0 ]; then
    echo "== fuzz targets (a few seconds each; scripts/fuzz.sh SECONDS for longer)"
    scripts/fuzz.sh "${FUZZ_SECONDS:-5}"
fi

if [ "${SANITIZE:-1}" != 0 ]; then
    echo "== tests under ASan+UBSan"
    BUILD_DIR=build-asan CMAKE_ARGS="-DPINGAN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug" \
        scripts/setup.sh
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir build-asan --output-on-failure -j2 --timeout 600
fi
