#!/usr/bin/env bash
# Formats every C++ file with the repository's .clang-format; --check only reports.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
    git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror
else
    git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
fi
