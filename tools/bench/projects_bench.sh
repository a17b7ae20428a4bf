#!/usr/bin/env bash
# projects_bench.sh: the speed benchmark of qai-projects, in one sitting on one machine.
#
#   BUILD_DIR=build tools/bench/projects_bench.sh      # after: ninja -C build qai-loadgen
#                                                      #   qai-projects qai-migrate qai
#
# It starts a private PostgreSQL, migrates it, starts qai-projects, and measures, for 8 and 32
# concurrent callers: the gRPC rate of Health/Check, GetProject and CreateProject (qai-loadgen,
# closed loop), and the rate PostgreSQL alone manages for the same SQL (pgbench with
# get_project.sql and create_project.sql). An RPC costs roughly its transport (measured by
# health) plus its SQL (measured by pgbench), so the best the service can do is
#   limit = 1 / (1/health + 1/pgbench)
# and the targets are: rate >= 0.75 x limit, and p99 <= 2 ms at 8 callers.
#
# A shared machine's speed drifts by tens of percent within minutes, so each caller count is
# measured in ROUNDS rounds, each running everything once back to back; a round's ratio uses
# that round's own health and pgbench rates, and the table shows medians (with every round's
# ratio, to see the spread).
#
# It builds nothing. Everything it starts is stopped when it exits, also on error or Ctrl-C.
# Settings (environment): BUILD_DIR (default build, relative to the repository root),
# CALLER_COUNTS ("8 32"), ROUNDS (3), CHANNELS (4), DURATION (5, seconds per run), WARMUP (2),
# RPCS ("health get-project create-project"; health is needed for the ratios),
# QAI_PG_BIN (default: the newest /usr/lib/postgresql/*/bin), KEEP_WORK=1 keeps the temporary
# directory (logs) for a look afterwards.
set -euo pipefail
bench_name=projects_bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_dir=$root/tools/bench
build=${BUILD_DIR:-build}
[[ $build == /* ]] || build=$root/$build
caller_counts=${CALLER_COUNTS:-8 32}
channels=${CHANNELS:-4}
duration=${DURATION:-5}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-2}
pg_bin=${QAI_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
keep_work=${KEEP_WORK:-0}
read -r -a rpc_names <<<"${RPCS:-health get-project create-project}"
[[ " ${rpc_names[*]} " == *" health "* ]] || fail "RPCS must include health (the ratios need it)"

# The programs read QAI_* variables as defaults; a stray one in the caller's environment
# (a database URL, a pool size) must not change what is measured.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^QAI_' || true)

loadgen=$build/tools/loadgen/qai-loadgen
projects=$build/services/projects/qai-projects
migrate=$build/db/qai-migrate
qai=$build/tools/qai/qai
for program in "$loadgen" "$projects" "$migrate" "$qai" "$pg_bin/initdb" "$pg_bin/pg_ctl" "$pg_bin/pgbench" \
               "$pg_bin/psql"; do
  [[ -x $program ]] || { echo "projects_bench: $program is missing (build it first)" >&2; exit 2; }
done

started=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/qai-bench.XXXXXX")
chmod 755 "$work"  # the postgres user must reach its data directory inside
service_pid=""
sink_pid=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $service_pid ]] && stop_process "$service_pid" qai-projects
  [[ -n $sink_pid ]] && stop_process "$sink_pid" "the messages sink"
  qai_pg_stop --keep  # its directory is in $work, kept or removed below
  if [[ $keep_work == 1 ]]; then
    echo "projects_bench: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# calc EXPR: floating-point arithmetic.

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
echo "             (fsync and synchronous_commit on: every commit waits for its WAL flush)"

# qai-projects hands every new project to MessageService through its outbox; the sink accepts
# those deliveries, as the real service would (see tools/loadgen/messages_sink.h).
"$loadgen" --serve-messages 127.0.0.1:0 >"$work/sink.log" 2>&1 &
sink_pid=$!
sink_port=$(wait_for_port "$sink_pid" "$work/sink.log")

jwt_secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
# QAI_LOG_LEVEL=warn: access-log lines are info; at 10^4 calls/s writing them would be a
# benchmark of the logger. The orchestrator is never called (nothing is deleted); port 1 is
# closed, so a stray call would fail fast. QAI_RATE_LIMIT=0: the load comes from a few users on
# purpose, and the limiter is not what is measured; QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL=0: no
# orchestrator is asked for room before a CreateProject.
env -i PATH="$PATH" QAI_RATE_LIMIT=0 QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL=0 \
  QAI_DATABASE_URL="$database_url" QAI_LISTEN_ADDR=127.0.0.1:0 QAI_JWT_SECRET="$jwt_secret" \
  QAI_PAGE_TOKEN_KEY="$(head -c 32 /dev/urandom | base64 | tr -d '/+=')" \
  QAI_LOG_LEVEL=warn QAI_MESSAGES_ADDR="127.0.0.1:$sink_port" QAI_ORCHESTRATOR_ADDR=127.0.0.1:1 \
  "$projects" 2>"$work/projects.log" &
service_pid=$!
service_port=$(wait_for_port "$service_pid" "$work/projects.log")
target=127.0.0.1:$service_port
echo "qai-projects: $target, QAI_LOG_LEVEL=warn (no access log), db-pool-size=16 (default);" \
     "outbox deliveries go to a stand-in MessageService on 127.0.0.1:$sink_port"

token=$("$qai" token --sub bench-user --jwt-secret "$jwt_secret")
# The project that get-project and get_project.sql read, made through the API. The service has
# just started listening; a first refusal is retried.
project_id=""
for _ in $(seq 20); do
  # --wait 0: the stand-in MessageService cannot list the project's first message.
  if out=$("$qai" projects create --prompt "A project for the benchmark to read." --json --wait 0 \
             --projects-addr "$target" --token "$token" 2>"$work/create.err"); then
    project_id=$(sed -n 's/.*"id": *"\([0-9a-f-]\{36\}\)".*/\1/p' <<<"$out" | head -n 1)
    break
  fi
  sleep 0.25
done
[[ -n $project_id ]] || { cat "$work/create.err" >&2; fail "could not create the project to read"; }
echo "project:     $project_id (owner bench-user)"
echo "loadgen:     closed loop, callback API, $channels channels, warm-up ${warmup}s, measured ${duration}s per run"
echo "pgbench:     -n -M prepared -j 2 -T $duration, same server and database"

# wait_for_outbox: lets the relay deliver what the last create run queued, so its backlog does
# not run into the next measurement; says how long that took when it was not at once.
wait_for_outbox() {
  local pending waited=0
  while :; do
    pending=$(psql_qai -c "SELECT count(*) FROM projects.outbox
                            WHERE deliver_time IS NULL AND next_attempt_time <> 'infinity'")
    [[ $pending -eq 0 ]] && break
    if [[ $waited -ge 300 ]]; then
      echo "             (outbox: $pending rows still undelivered after 30 s; measuring on)"
      return 0
    fi
    [[ $waited -eq 0 ]] && echo "             (outbox: $pending rows undelivered when the run ended)"
    sleep 0.1
    waited=$((waited + 1))
  done
  [[ $waited -gt 0 ]] && echo "             (outbox: drained after $(calc "$waited / 10") s)"
  return 0
}

declare -A rate errors p50 p99 tps pg_p99 ratio

# median V...: the middle value (the mean of the two middle ones for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# loadgen_run METHOD N R: one closed-loop run of qai-loadgen; records its figures for round R.
loadgen_run() {
  local method=$1 n=$2 r=$3 line err_file=$work/loadgen-$1-$2-$3.err
  line=$("$loadgen" --target "$target" --method "$method" --callers "$n" --channels "$channels" \
           --duration "${duration}s" --warmup "${warmup}s" --token "$token" --project-id "$project_id" \
           2>"$err_file") || true
  [[ -n $line ]] || { cat "$err_file" >&2; fail "qai-loadgen $method failed"; }
  echo "$line"
  sed 's/^/    stderr: /' "$err_file" | head -n 5
  rate[$method,$n,$r]=$(json_field "$line" rate)
  errors[$method,$n,$r]=$(json_field "$line" errors)
  p50[$method,$n,$r]=$(json_field "$line" p50_ms)
  p99[$method,$n,$r]=$(json_field "$line" p99_ms)
  if [[ $method == create-project ]]; then wait_for_outbox; fi
}

# pgbench_run SCRIPT N R: pgbench alone on SCRIPT's SQL; records its rate for round R.
pgbench_run() {
  local script=$1 n=$2 r=$3 out
  # A sample of the transactions is logged (pgbench -l), for the database's own p99: the
  # latency an RPC cannot beat. One in ten keeps the logging from slowing pgbench down.
  rm -f "$work"/pgbench_log.*
  out=$("$pg_bin/pgbench" -n -M prepared -c "$n" -j 2 -T "$duration" -f "$bench_dir/$script.sql" \
          -l --sampling-rate=0.1 --log-prefix="$work/pgbench_log" \
          -D id="$project_id" -h 127.0.0.1 -p "$pg_port" -U postgres qai 2>&1) ||
    { echo "$out" >&2; fail "pgbench $script failed"; }
  tps[$script,$n,$r]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
  # Log lines: client transaction latency_us script epoch_s epoch_us.
  pg_p99[$script,$n,$r]=$(cat "$work"/pgbench_log.* | awk '{ print $3 / 1000 }' | sort -g |
                            awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", v[i] }')
  echo "pgbench $script -c $n: tps=${tps[$script,$n,$r]} p99_ms=${pg_p99[$script,$n,$r]}" \
       "latency_avg_ms=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out")" \
       "transactions=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")" \
       "failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")"
}

# rounds_of ARRAY METHOD N: ARRAY's value for METHOD at N callers in every round, a line each.
rounds_of() {
  local -n values=$1
  local r
  for r in $(seq "$rounds"); do echo "${values[$2,$3,$r]}"; done
}

# pg_script METHOD: the pgbench script with METHOD's SQL (none for health).
pg_script() {
  case $1 in
    get-project) echo get_project ;;
    create-project) echo create_project ;;
  esac
}

echo
echo "== runs ($rounds rounds per caller count; each round measures everything once, back to back)"
for n in $caller_counts; do
  for r in $(seq "$rounds"); do
    echo "-- $n callers, round $r"
    for method in "${rpc_names[@]}"; do loadgen_run "$method" "$n" "$r"; done
    for method in "${rpc_names[@]}"; do
      script=$(pg_script "$method")
      [[ -n $script ]] || continue
      pgbench_run "$script" "$n" "$r"
      # This round's ratio: the RPC against the limit from this round's health and pgbench.
      ratio[$method,$n,$r]=$(calc "${rate[$method,$n,$r]} * (1 / ${rate[health,$n,$r]} + 1 / ${tps[$script,$n,$r]})")
    done
  done
done

# --- results ---------------------------------------------------------------------------------
echo
echo "== results (medians of $rounds rounds; rates per second; limit = 1/(1/health + 1/pgbench);"
echo "   ratio = median of the rounds' own ratios; targets: ratio >= 0.75, p99 <= 2 ms at 8 callers)"
printf '%-15s %7s %9s %6s %9s %9s %9s %6s %7s %7s %9s  %-6s %-6s %s\n' \
  rpc callers rate errors health pgbench limit ratio p50_ms p99_ms pg_p99_ms ratio p99 "ratio by round"
misses=0
for method in "${rpc_names[@]}"; do
  for n in $caller_counts; do
    health=$(median $(rounds_of rate health "$n"))
    method_rate=$(median $(rounds_of rate "$method" "$n"))
    error_count=$(rounds_of errors "$method" "$n" | awk '{ s += $1 } END { print s }')
    script=$(pg_script "$method")
    if [[ -n $script ]]; then
      pg=$(median $(rounds_of tps "$script" "$n"))
      limit=$(calc "1 / (1 / $health + 1 / $pg)")
      method_ratio=$(median $(rounds_of ratio "$method" "$n"))
      by_round=$(rounds_of ratio "$method" "$n" | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 }')
      ratio_verdict=$(awk -v r="$method_ratio" 'BEGIN { print (r >= 0.75) ? "PASS" : "MISS" }')
      pg_shown=$(printf '%.0f' "$pg")
      pg_p99_shown=$(median $(rounds_of pg_p99 "$script" "$n"))
    else
      limit=$health method_ratio=1 ratio_verdict="-" pg_shown="-" pg_p99_shown="-" by_round=""
    fi
    method_p50=$(median $(rounds_of p50 "$method" "$n"))
    method_p99=$(median $(rounds_of p99 "$method" "$n"))
    p99_verdict="-"
    if [[ $n -eq 8 ]]; then
      p99_verdict=$(awk -v p="$method_p99" 'BEGIN { print (p <= 2.0) ? "PASS" : "MISS" }')
    fi
    [[ $ratio_verdict == MISS ]] && misses=$((misses + 1))
    [[ $p99_verdict == MISS ]] && misses=$((misses + 1))
    printf '%-15s %7s %9.0f %6s %9.0f %9s %9.0f %6.2f %7.3f %7.3f %9s  %-6s %-6s %s\n' \
      "$method" "$n" "$method_rate" "$error_count" "$health" "$pg_shown" "$limit" "$method_ratio" \
      "$method_p50" "$method_p99" "$pg_p99_shown" "$ratio_verdict" "$p99_verdict" "$by_round"
  done
done
echo "(health rows: the limit is health itself, so only their p99 is a target; pg_p99_ms: pgbench's"
echo " own p99 for the same SQL, from a 1-in-10 sample of its transactions)"

echo
echo "== service"
echo "outbox: $(psql_qai -F ' ' -c "SELECT count(*) FILTER (WHERE deliver_time IS NOT NULL) || ' delivered, ' ||
                                          count(*) FILTER (WHERE deliver_time IS NULL AND next_attempt_time <> 'infinity') || ' pending, ' ||
                                          count(*) FILTER (WHERE attempts > 1) || ' needed a retry'
                                     FROM projects.outbox")"
log_lines=$(wc -l <"$work/projects.log")
echo "qai-projects log: $log_lines lines at warn level or above$([[ $log_lines -gt 0 ]] && echo ', first 5:')"
head -n 5 "$work/projects.log" | cut -c1-300
kill -0 "$service_pid" 2>/dev/null || fail "qai-projects died during the benchmark"
echo
echo "$misses target(s) missed; total time $((SECONDS - started)) s; load now $(cut -d' ' -f1-3 /proc/loadavg)"
