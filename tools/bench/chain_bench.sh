#!/usr/bin/env bash
# chain_bench.sh: prompt-to-run latency, from MessageService.CreateMessage returning to the
# AgentOrchestrator.StartRun it causes arriving, in one sitting on one machine.
#
#   BUILD_DIR=build tools/bench/chain_bench.sh      # after: ninja -C build qai-chainbench
#                                                   #   qai-projects qai-messages qai-migrate qai
#
# It starts a private PostgreSQL, migrates it, starts qai-projects and qai-messages (whose
# QAI_ORCHESTRATOR_ADDR is a free port where qai-chainbench serves a recording orchestrator),
# creates one project with `qai projects create`, and then runs qai-chainbench once per setting:
# PROMPTS measured prompts (after WARMUP unmeasured ones) to that project, closed loop at each
# of CONCURRENCIES callers, and once more at one caller pausing THINK after each call. Each
# run prints one JSON line (see tools/chainbench/main.cc); a table sums them up.
#
# A project's StartRuns leave the outbox in the order they were written: a relay pass sends a
# key's due rows one after another, and passes follow each other at once while there is work.
# `arrivals` below `rate` in a row means prompts came faster than the relay sends them and
# queued; the paced run shows the latency of a prompt that finds no queue.
#
# It builds nothing. Everything it starts is stopped when it exits, also on error or Ctrl-C.
# Settings (environment): BUILD_DIR (default build, relative to the repository root), PROMPTS
# (1000), WARMUP (50), CONCURRENCIES ("1 8"), THINK (50ms; empty skips the paced run),
# QAI_PG_BIN (default: the newest /usr/lib/postgresql/*/bin), KEEP_WORK=1 keeps the temporary
# directory (logs) for a look afterwards.
set -euo pipefail
bench_name=chain_bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/keys.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-build}
[[ $build == /* ]] || build=$root/$build
prompts=${PROMPTS:-1000}
warmup=${WARMUP:-50}
concurrencies=${CONCURRENCIES:-1 8}
think=${THINK-50ms}
pg_bin=${QAI_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
keep_work=${KEEP_WORK:-0}

# The programs read QAI_* variables as defaults; a stray one in the caller's environment
# (a database URL, a pool size) must not change what is measured.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^QAI_' || true)

chainbench=$build/tools/chainbench/qai-chainbench
projects=$build/services/projects/qai-projects
messages=$build/services/messages/qai-messages
migrate=$build/db/qai-migrate
qai=$build/tools/qai/qai
for program in "$chainbench" "$projects" "$messages" "$migrate" "$qai" "$pg_bin/initdb" "$pg_bin/pg_ctl" \
               "$pg_bin/psql"; do
  [[ -x $program ]] || { echo "chain_bench: $program is missing (build it first)" >&2; exit 2; }
done

started=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/qai-chain-bench.XXXXXX")
chmod 755 "$work"  # the postgres user must reach its data directory inside
projects_pid=""
messages_pid=""
bench_pid=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $bench_pid ]] && stop_process "$bench_pid" qai-chainbench
  [[ -n $projects_pid ]] && stop_process "$projects_pid" qai-projects
  [[ -n $messages_pid ]] && stop_process "$messages_pid" qai-messages
  qai_pg_stop --keep  # its directory is in $work, kept or removed below
  if [[ $keep_work == 1 ]]; then
    echo "chain_bench: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== machine"
echo "nproc:       $(nproc)"
echo "model name:  $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "memory:      $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "kernel:      $(uname -sr)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine skews results)"

# --- PostgreSQL ---------------------------------------------------------------------------
bench_pg_start
psql_admin -d postgres -c "CREATE DATABASE qai"
database_url="host=127.0.0.1 port=$pg_port user=postgres dbname=qai"
"$migrate" --database-url "$database_url" --log-level warn >"$work/migrate.log" 2>&1 ||
  { cat "$work/migrate.log" >&2; fail "qai-migrate failed"; }
echo "postgres:    $(psql_qai -c 'SHOW server_version') on 127.0.0.1:$pg_port, stock settings:" \
     "$(psql_qai -F ' ' -c "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ' ' ORDER BY name)
                            FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers',
                                                            'max_connections')")"

# --- qai-messages and qai-projects -------------------------------------------------------------
# Each needs the other's address: qai-messages gets a port chosen for qai-projects, and
# qai-projects then listens there. The orchestrator port stays closed until qai-chainbench runs.
projects_port=$(free_port)
orchestrator_port=$(free_port)
[[ $orchestrator_port != "$projects_port" ]] || orchestrator_port=$(free_port)
jwt_secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
qai_stack_keys
# QAI_LOG_LEVEL=warn: access-log lines are info, and writing them is not what is measured.
# Each service holds its own key: qai-projects relays the initial prompt with it.
# The prompts pile up in one project on purpose (they measure the outbox): no caps on active runs,
# and no rate limit (one user makes them all).
service_env=(PATH="$PATH" QAI_DATABASE_URL="$database_url" QAI_JWT_SECRET="$jwt_secret" QAI_LOG_LEVEL=warn
             QAI_SERVICE_KEY_SHA256="$QAI_SERVICE_KEY_SHA256" QAI_PAGE_TOKEN_KEY="$QAI_PAGE_TOKEN_KEY"
             QAI_RUN_MAX_ACTIVE_PER_PROJECT=0 QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL=0 QAI_RATE_LIMIT=0)
env -i "${service_env[@]}" QAI_API_KEY="$(qai_service_key messages)" QAI_LISTEN_ADDR=127.0.0.1:0 \
  QAI_PROJECTS_ADDR="127.0.0.1:$projects_port" QAI_ORCHESTRATOR_ADDR="127.0.0.1:$orchestrator_port" \
  "$messages" 2>"$work/messages.log" &
messages_pid=$!
messages_port=$(wait_for_port "$messages_pid" "$work/messages.log")
# Nothing here deletes a project, so qai-projects never calls the orchestrator; port 1 is closed.
env -i "${service_env[@]}" QAI_API_KEY="$(qai_service_key projects)" QAI_LISTEN_ADDR="127.0.0.1:$projects_port" \
  QAI_MESSAGES_ADDR="127.0.0.1:$messages_port" QAI_ORCHESTRATOR_ADDR=127.0.0.1:1 "$projects" 2>"$work/projects.log" &
projects_pid=$!
[[ $(wait_for_port "$projects_pid" "$work/projects.log") == "$projects_port" ]] ||
  fail "qai-projects did not listen on $projects_port"
echo "qai-messages: 127.0.0.1:$messages_port; qai-projects: 127.0.0.1:$projects_port;" \
     "QAI_LOG_LEVEL=warn (no access log), db-pool-size=16 (default), outbox relay defaults"
echo "orchestrator: qai-chainbench's recording AgentOrchestrator on 127.0.0.1:$orchestrator_port"

token=$("$qai" token --sub bench-user --jwt-secret "$jwt_secret")
project_id=""
for _ in $(seq 20); do
  if out=$("$qai" projects create --prompt "A project for the chain benchmark." --json \
             --projects-addr "127.0.0.1:$projects_port" --messages-addr "127.0.0.1:$messages_port" \
             --token "$token" 2>"$work/create.err"); then
    project_id=$(head -n 1 <<<"$out" | sed -n 's/.*"id": *"\([0-9a-f-]\{36\}\)".*/\1/p')
    break
  fi
  sleep 0.25
done
[[ -n $project_id ]] || { cat "$work/create.err" >&2; fail "could not create the project"; }
echo "project:     $project_id (owner bench-user), first message shown: $(($(wc -l <<<"$out") > 1 ? 1 : 0))" \
     "$(sed 's/^/(/; s/$/)/' "$work/create.err" | head -n 1)"
echo "prompts:     $prompts measured after $warmup warm-up ones per run, each with a fresh request_id;" \
     "runs: closed loop at ${concurrencies// /, } caller(s)${think:+, and 1 caller pausing $think after each call}"

# --- runs ----------------------------------------------------------------------------------
declare -a lines labels
run_chainbench() {  # LABEL FLAGS...
  local label=$1 line err_file=$work/chainbench-$1.err rc=0
  shift
  echo "$label: started $(date -u +%H:%M:%S)"
  # A queued prompt may wait for ~0.5 s per prompt ahead of it (see the top), hence the bound.
  "$chainbench" --target "127.0.0.1:$messages_port" --orchestrator-listen "127.0.0.1:$orchestrator_port" \
    --project "$project_id" --token "$token" --prompts "$prompts" --warmup "$warmup" \
    --arrival-timeout "$((prompts + warmup + 120))s" "$@" >"$work/chainbench-$label.out" 2>"$err_file" &
  bench_pid=$!
  wait "$bench_pid" || rc=$?
  bench_pid=""
  line=$(cat "$work/chainbench-$label.out")
  [[ -n $line ]] || { cat "$err_file" >&2; fail "qai-chainbench ($label) failed"; }
  echo "$line"
  sed 's/^/    stderr: /' "$err_file" | head -n 5
  [[ $rc -eq 0 ]] || echo "    (exit status $rc: errors, missing, duplicate or mismatched StartRuns; see the line)"
  lines+=("$line")
  labels+=("$label")
}

echo
echo "== runs"
for c in $concurrencies; do run_chainbench "closed-$c" --concurrency "$c"; done
[[ -n $think ]] && run_chainbench "paced-$think" --concurrency 1 --think "$think"

# --- results ---------------------------------------------------------------------------------
echo
echo "== results (chain = StartRun arrival - CreateMessage return, ms; create = the CreateMessage call, ms)"
printf '%-12s %6s %7s %8s %4s %8s %8s %8s %8s %8s %8s %5s %8s %8s %8s\n' \
  run count rate arrivals dup chain_p50 chain_p90 chain_p99 chain_max chain_mean chain_min neg \
  create_p50 create_p99 create_mean
for i in "${!lines[@]}"; do
  l=${lines[$i]}
  printf '%-12s %6s %7s %8s %4s %8s %8s %8s %8s %8s %8s %5s %8s %8s %8s\n' "${labels[$i]}" \
    "$(json_field "$l" chain_count)" "$(json_field "$l" rate)" "$(json_field "$l" arrival_rate)" \
    "$(json_field "$l" duplicates)" "$(json_field "$l" chain_p50_ms)" "$(json_field "$l" chain_p90_ms)" \
    "$(json_field "$l" chain_p99_ms)" "$(json_field "$l" chain_max_ms)" "$(json_field "$l" chain_mean_ms)" \
    "$(json_field "$l" chain_min_ms)" "$(json_field "$l" chain_negative)" "$(json_field "$l" create_p50_ms)" \
    "$(json_field "$l" create_p99_ms)" "$(json_field "$l" create_mean_ms)"
done
echo "(rate: CreateMessage calls/s; arrivals: StartRuns/s; below rate, prompts queued in the outbox;"
echo " neg: StartRuns that arrived before the caller saw CreateMessage return, kept as negative values)"

echo
echo "== services"
echo "messages outbox: $(psql_qai -F ' ' -c "SELECT count(*) FILTER (WHERE deliver_time IS NOT NULL) || ' delivered, ' ||
                                                   count(*) FILTER (WHERE deliver_time IS NULL) || ' pending, ' ||
                                                   count(*) FILTER (WHERE attempts > 1) || ' needed a retry'
                                              FROM messages.outbox")"
for svc in messages projects; do
  log_lines=$(wc -l <"$work/$svc.log")
  echo "qai-$svc log: $log_lines lines at warn level or above$([[ $log_lines -gt 0 ]] && echo ', first 3:')"
  head -n 3 "$work/$svc.log" | cut -c1-300
done
kill -0 "$messages_pid" 2>/dev/null || fail "qai-messages died during the benchmark"
kill -0 "$projects_pid" 2>/dev/null || fail "qai-projects died during the benchmark"
echo
echo "total time $((SECONDS - started)) s; load now $(cut -d' ' -f1-3 /proc/loadavg)"
