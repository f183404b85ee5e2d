#!/usr/bin/env bash
# Builds mk with one preset (release by default; debug, asan, tsan) and runs every test.
set -euo pipefail
preset=${1:-release}
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
