#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds, and runs every test with ctest.
# Each test starts its own PostgreSQL (and services) in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
source tools/lib/pg.sh
start=$(date +%s)
qai_build build
ctest --test-dir build -j "$(nproc)" --output-on-failure --timeout 600 "$@"
echo "tests: done in $(( $(date +%s) - start ))s"
