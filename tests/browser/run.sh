#!/usr/bin/env bash
# Runs a browser test (the console's unless SCRIPT is given); exits 77 (CTest: skipped) only when node
# or chromium is missing, and not even then under CI (CI=true), where a skipped browser test
# would pass unseen. playwright-core and acorn are installed from package-lock.json
# into tests/browser/node_modules if they are not there yet.
#   run.sh BIN_DIR SOURCE_DIR SCREENSHOT_DIR [SCRIPT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
skip=77
[ "${CI:-}" = true ] && skip=1
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed (scripts/setup.sh installs it)"
    exit $skip
fi
if [ ! -x /usr/bin/chromium ]; then
    echo "SKIP: /usr/bin/chromium is not installed (scripts/setup.sh installs it)"
    exit $skip
fi
if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/acorn" ]; then
    (cd "$here" && npm ci --no-audit --no-fund)
fi
cd "$here"
exec node "${4:-console.test.js}" "$1" "$2" "$3"
