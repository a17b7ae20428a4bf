#!/usr/bin/env bash
# What a command costs through qai-sandbox, against launching the same bubblewrap command
# directly (the project's cgroup, prlimit, setpriv, bwrap: qai-sandbox's own argv), side by side
# in one run: a private PostgreSQL, qai-sandbox (bwrap), then tools/sandboxbench's rounds. Run as
# root, after a build. QAI_SANDBOX_CGROUPS=off in the environment leaves the cgroups out of both.
#
#   bash tools/bench/sandbox_bench.sh [COMMANDS_PER_ROUND] [ROUNDS] [COMMAND]
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/lib/pg.sh
bench_name=sandbox_bench
source tools/bench/lib.sh
source tools/lib/keys.sh
build=${BUILD:-build}
[ -x "$build/tools/sandboxbench/qai-sandboxbench" ] || fail "build first (ninja -C $build)"

work=$(mktemp -d "${TMPDIR:-/tmp}/qai-sandbox-bench.XXXXXX")
chmod 711 "$work"
sandbox_pid=
cleanup() {
  [ -n "$sandbox_pid" ] && stop_process "$sandbox_pid" qai-sandbox
  qai_pg_stop
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

qai_pg_start
QAI_DATABASE_URL=$QAI_PG_URL QAI_SERVICES=sandbox "$build/db/qai-migrate" >/dev/null 2>&1
qai_stack_keys
key=$(qai_service_key orchestrator)  # the bench calls as the orchestrator does
addr="127.0.0.1:$(free_port)"
QAI_DATABASE_URL=$QAI_PG_URL QAI_LISTEN_ADDR=$addr QAI_PREVIEW_ADDR="127.0.0.1:0" QAI_SANDBOX_ROOT="$work/sandboxes" \
  QAI_SERVICE_KEY_SHA256="$QAI_SERVICE_KEY_SHA256" \
  "$build/services/sandbox/qai-sandbox" 2>"$work/sandbox.log" &
sandbox_pid=$!
qai_wait_listening "$work/sandbox.log" >/dev/null || { cat "$work/sandbox.log" >&2; fail "qai-sandbox did not start"; }
"$build/tools/sandboxbench/qai-sandboxbench" --addr "$addr" --key "$key" --commands "${1:-200}" --rounds "${2:-3}" \
  --command "${3:-true}"
