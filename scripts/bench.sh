#!/usr/bin/env bash
# Builds mk in release mode and runs the whole bench suite in quick mode on this machine.
# Extra arguments go to mk-bench (for example: --json results.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
build/release/bench/mk-bench all --quick "$@"
