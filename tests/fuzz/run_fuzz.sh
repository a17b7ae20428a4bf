#!/usr/bin/env bash
# run_fuzz.sh FUZZER SEEDS WORK: runs a libFuzzer target for QAI_FUZZ_SECONDS (default 30),
# starting from the committed seeds (read, never written) and writing what it finds to WORK:
# WORK/corpus (new inputs, started afresh each run) and WORK/crash-* etc. (the input that failed,
# to replay with `FUZZER WORK/crash-...`). Fails when the fuzzer reports anything.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3
rm -rf "$work" && mkdir -p "$work/corpus"
exec "$fuzzer" -max_total_time="${QAI_FUZZ_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds"
