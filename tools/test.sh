#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds, and runs every test with ctest.
# Each test starts its own PostgreSQL (and services) in a temporary directory.
#   build/           (GCC, as shipped): every test
#   build-sanitize/  (clang, ASan + UBSan): the unit and store tests again, and the fuzz targets
# Extra arguments go to both ctest runs (e.g. -L unit, -R Jwt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
source tools/lib/pg.sh
start=$(date +%s)
qai_build build
qai_build_sanitize build-sanitize
status=0
ctest --test-dir build -j "$(nproc)" --output-on-failure --timeout 600 "$@" || status=$?
ctest --test-dir build-sanitize -j "$(nproc)" --output-on-failure --timeout 600 "$@" || status=$?
# What some passing tests report (ctest keeps it in its log): the browser test's screenshot and
# the rendered Kubernetes objects per overlay.
grep -hE '^(screenshot: |overlay [a-z]+: [0-9]+ objects)' build/Testing/Temporary/LastTest.log 2>/dev/null | sed 's/^/tests: /' || true
echo "tests: done in $(( $(date +%s) - start ))s"
exit "$status"
