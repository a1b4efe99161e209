#!/usr/bin/env bash
# Installs what Pingan needs on Debian 12 (only packages that are missing),
# then configures and builds into build/ (or $BUILD_DIR).
#
#   scripts/setup.sh                      # RelWithDebInfo build in build/
#   BUILD_DIR=build-asan CMAKE_ARGS=-DPINGAN_SANITIZE=ON scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
    g++ cmake ninja-build pkg-config git
    lld                           # a faster linker (PINGAN_LLD)
    libzmq3-dev cppzmq-dev liblmdb-dev lmdb-utils libcereal-dev libboost-dev
    libsodium-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev catch2
    libxml2-dev libxml2-utils     # CAP 1.2 import and export (pingan cap), xmllint in tests
    libsystemd-dev                # readiness under systemd (Type=notify units)
    libmimalloc-dev               # the broker's allocator (PINGAN_MIMALLOC, docs/performance.md)
    zlib1g-dev                    # archive segments (pingan archive)
    libnats-dev nats-server       # replication to NATS JetStream (docs/replication.md)
    curl python3 python3-zmq clang-format
    libssl-dev openssl            # HTTPS on the services' intake
    clang-14                      # the fuzz targets (scripts/fuzz.sh)
    chromium fonts-wqy-microhei   # the console's browser test (tests/browser)
    dpkg-dev                      # the Debian package (cpack -G DEB: dpkg-shlibdeps)
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# node and npm may come from elsewhere than Debian: only install them if absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
fi

# playwright-core and acorn for the browser tests, at the versions in package-lock.json.
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/acorn ]; then
    (cd tests/browser && npm ci --no-audit --no-fund)
fi

BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    # shellcheck disable=SC2086
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j2 ${BUILD_TARGETS:+--target $BUILD_TARGETS}
