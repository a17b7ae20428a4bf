#!/usr/bin/env bash
# orchestrator_bench.sh: the speed benchmarks of qai-orchestrator, in one sitting on one machine.
#
#   BUILD_DIR=build tools/bench/orchestrator_bench.sh   # after: ninja -C build qai-orchbench
#                                                       #   qai-orchestrator qai-sandbox qai-projects qai-messages qai-migrate qai
#
# It starts a private PostgreSQL, migrates it, starts qai-projects, qai-messages and qai-sandbox, and makes
# the projects and first messages every run below answers (qai-orchbench --mode setup: through
# CreateProject and both outboxes, with qai-messages pointed at a stand-in orchestrator, so no
# run starts before its benchmark starts it). Then, with the model that answers at once (the
# builtin's [[instant]] directive: one iteration writing index.html):
#
# 1. Runs through the queue. For each of WORKER_COUNTS, a fresh qai-orchestrator with that many
#    QAI_WORKERS; qai-orchbench --mode runs calls StartRun for RUNS prompts of as many projects
#    (CALLERS at a time, as a service, as qai-messages' relay does) and waits until every run
#    has ended; rate = runs / (last end - first create). Each run is the real thing: claim,
#    History from qai-messages, the agent's iteration in a workspace, events with NOTIFY, the
#    snapshot, RecordAgentResult, the finish. Next to it, pgbench replays the SQL of one such
#    run (tools/bench/orchestrator_run.sql, which mirrors run_store.cc) with as many clients,
#    half its time right before the service's batch and half right after (the disk's flush
#    time drifts on a shared machine). Target: rate >= 0.5 x pgbench's (the mean of the two).
# 2. Event append -> watcher latency. qai-orchbench --mode latency queues and claims a run
#    itself (it links RunStore and acts as the worker holding the lease), then two replicas
#    start and it watches the run on both while it appends EVENTS stamped events at RATE per
#    second; latency = arrival - the append's commit, on one steady clock. Targets: p99 < 5 ms
#    on replica "same", < 20 ms on replica "other" (see the note under the results).
# 3. WATCHERS idle watchers on one replica (QAI_WORKERS=2): qai-orchbench --mode watchers
#    holds a long run ([[sleep 900]]) and 99 runs queued behind it, opens the watchers on them
#    over CHANNELS connections, and reads the replica's VmRSS before and after; real runs
#    (the builtin, 4 iterations) and the append -> watcher latency on a separate stream are
#    measured without and with the watchers. Targets: <= 20 KiB per watcher; the run's median
#    duration at most 20 % longer with them; the separate watcher's p99 < 5 ms with them.
#
# It builds nothing. Everything it starts is stopped when it exits, also on error or Ctrl-C.
# Settings (environment): BUILD_DIR (default build, relative to the repository root), RUNS
# (300 per worker count), WORKER_COUNTS ("1 2 4"), CALLERS (4), PGBENCH_SECONDS (10 per worker
# count), EVENTS (1000), RATE (200), WATCHERS (10000), CHANNELS (8), PROBES (10), PARTS
# ("1 2 3": which of the three to run), PG_OPTIONS (more -c settings for the private
# PostgreSQL, e.g. to load pg_stat_statements while looking into a result), QAI_PG_BIN
# (default: the newest /usr/lib/postgresql/*/bin), KEEP_WORK=1 keeps the temporary directory
# (logs).
set -euo pipefail
bench_name=orchestrator_bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/keys.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_dir=$root/tools/bench
build=${BUILD_DIR:-build}
[[ $build == /* ]] || build=$root/$build
runs=${RUNS:-300}
worker_counts=${WORKER_COUNTS:-1 2 4}
callers=${CALLERS:-4}
pgbench_seconds=${PGBENCH_SECONDS:-10}
events=${EVENTS:-1000}
rate=${RATE:-200}
watchers=${WATCHERS:-10000}
channels=${CHANNELS:-8}
probes=${PROBES:-10}
parts=${PARTS:-1 2 3}
pg_options=${PG_OPTIONS:-}
pg_bin=${QAI_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
keep_work=${KEEP_WORK:-0}

# The programs read QAI_* variables as defaults; a stray one in the caller's environment
# (a database URL, a pool size) must not change what is measured.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^QAI_' || true)

orchbench=$build/tools/orchbench/qai-orchbench
orchestrator=$build/services/orchestrator/qai-orchestrator
projects=$build/services/projects/qai-projects
messages=$build/services/messages/qai-messages
migrate=$build/db/qai-migrate
qai=$build/tools/qai/qai
for program in "$orchbench" "$orchestrator" "$projects" "$messages" "$migrate" "$qai" "$pg_bin/initdb" \
               "$pg_bin/pg_ctl" "$pg_bin/psql" "$pg_bin/pgbench"; do
  [[ -x $program ]] || { echo "orchestrator_bench: $program is missing (build it first)" >&2; exit 2; }
done

started=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/qai-orch-bench.XXXXXX")
chmod 755 "$work"  # the postgres user must reach its data directory inside
pids=()  # every service and tool started, stopped in reverse order

bench_stop_on_exit

# stop_last: stops the most recently started process and forgets it.
stop_last() {
  stop_process "${pids[-1]}"
  unset 'pids[-1]'
}

# calc EXPR: floating-point arithmetic.

# verdict EXPR: PASS when the awk condition holds, else MISS (and counts the miss).
misses=0
verdict() {
  if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi
}

echo "== machine"
echo "nproc:       $(nproc)"
echo "model name:  $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "memory:      $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "kernel:      $(uname -sr)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine skews results)"

# --- PostgreSQL ---------------------------------------------------------------------------
bench_pg_start "$pg_options"
psql_admin -d postgres -c "CREATE DATABASE qai"
database_url="host=127.0.0.1 port=$pg_port user=postgres dbname=qai"
"$migrate" --database-url "$database_url" --log-level warn >"$work/migrate.log" 2>&1 ||
  { cat "$work/migrate.log" >&2; fail "qai-migrate failed"; }
echo "postgres:    $(psql_qai -c 'SHOW server_version') on 127.0.0.1:$pg_port, stock settings:" \
     "$(psql_qai -F ' ' -c "SELECT string_agg(name || '=' || setting || COALESCE(unit, ''), ' ' ORDER BY name)
                            FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers',
                                                            'max_connections')")"
echo "             (fsync and synchronous_commit on: every commit waits for its WAL flush)"

# --- qai-projects and qai-messages ----------------------------------------------------------
projects_port=$(free_port)
stand_in_port=$(free_port)
[[ $stand_in_port != "$projects_port" ]] || stand_in_port=$(free_port)
jwt_secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
qai_stack_keys
# QAI_LOG_LEVEL=warn: access-log lines and "run started/finished" are info; writing hundreds a
# second is not what is measured. Each service holds its own key (QAI_API_KEY, set per start).
# Part 3 queues 99 runs behind one in a single project: no caps on active runs, and no rate
# limit (one user makes them all).
service_env=(PATH="$PATH" QAI_DATABASE_URL="$database_url" QAI_JWT_SECRET="$jwt_secret" QAI_LOG_LEVEL=warn
             QAI_SERVICE_KEY_SHA256="$QAI_SERVICE_KEY_SHA256" QAI_PAGE_TOKEN_KEY="$QAI_PAGE_TOKEN_KEY"
             QAI_RUN_MAX_ACTIVE_PER_PROJECT=0 QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL=0 QAI_RATE_LIMIT=0)
env -i "${service_env[@]}" QAI_API_KEY="$(qai_service_key messages)" QAI_LISTEN_ADDR=127.0.0.1:0 \
  QAI_PROJECTS_ADDR="127.0.0.1:$projects_port" QAI_ORCHESTRATOR_ADDR="127.0.0.1:$stand_in_port" \
  "$messages" 2>"$work/messages.log" &
pids+=($!)
messages_port=$(wait_for_port "${pids[-1]}" "$work/messages.log")
# Nothing here deletes a project, so qai-projects never calls the orchestrator; port 1 is closed.
env -i "${service_env[@]}" QAI_API_KEY="$(qai_service_key projects)" QAI_LISTEN_ADDR="127.0.0.1:$projects_port" \
  QAI_MESSAGES_ADDR="127.0.0.1:$messages_port" QAI_ORCHESTRATOR_ADDR=127.0.0.1:1 "$projects" 2>"$work/projects.log" &
pids+=($!)
[[ $(wait_for_port "${pids[-1]}" "$work/projects.log") == "$projects_port" ]] ||
  fail "qai-projects did not listen on $projects_port"
echo "services:    qai-projects 127.0.0.1:$projects_port, qai-messages 127.0.0.1:$messages_port;" \
     "QAI_LOG_LEVEL=warn everywhere (no access log), pool sizes and relays at their defaults"

# qai-sandbox (bwrap, as shipped): every run's workspace, commands and snapshot go through it.
sandbox_port=$(free_port)
env -i "${service_env[@]}" QAI_API_KEY="$(qai_service_key sandbox)" QAI_LISTEN_ADDR="127.0.0.1:$sandbox_port" \
  QAI_SANDBOX_ROOT="$work/sandboxes" \
  QAI_PREVIEW_ADDR="127.0.0.1:$(free_port)" "$build/services/sandbox/qai-sandbox" 2>"$work/sandbox.log" &
pids+=($!)
[[ $(wait_for_port "${pids[-1]}" "$work/sandbox.log" "$sandbox_port") == "$sandbox_port" ]] ||
  fail "qai-sandbox did not listen on $sandbox_port"

# start_orchestrator NAME WORKERS [PORT]: a replica, its log in $work/NAME.log; sets
# orchestrator_port and orchestrator_pid. QAI_WATCH_MAX_PER_PRINCIPAL=0: the watchers of part 3
# are one reader's.
start_orchestrator() {
  local name=$1 workers=$2 port=${3:-$(free_port)}
  env -i "${service_env[@]}" QAI_API_KEY="$(qai_service_key orchestrator)" QAI_LISTEN_ADDR="127.0.0.1:$port" \
    QAI_PROJECTS_ADDR="127.0.0.1:$projects_port" \
    QAI_MESSAGES_ADDR="127.0.0.1:$messages_port" QAI_WORKERS="$workers" QAI_SANDBOX_ADDR="127.0.0.1:$sandbox_port" \
    QAI_DRAIN_TIMEOUT=2s QAI_WATCH_MAX_PER_PRINCIPAL=0 "$orchestrator" 2>"$work/$name.log" &
  orchestrator_pid=$!
  pids+=("$orchestrator_pid")
  orchestrator_port=$(wait_for_port "$orchestrator_pid" "$work/$name.log" "$port")
}

# --- set-up: the projects and first messages the runs answer ---------------------------------
# part N: whether part N runs this time.
part() { [[ " $parts " == *" $1 "* ]]; }

token=$("$qai" token --sub bench-user --jwt-secret "$jwt_secret")
# StartRun goes with qai-messages' key, as its relay sends it; runs are read as an admin.
messages_key=$(qai_service_key messages)
admin_token=$("$qai" token --sub bench-admin --admin --jwt-secret "$jwt_secret")
plan=""
if part 1; then
  for w in $worker_counts; do plan+="|runs-$w=$runs=Build a page for bench project {n} [[instant]]"; done
fi
part 3 && plan+="|probe=$probes=Build a landing page for a coffee shop|hold=1=Build a page for a long run [[sleep 900]]"
if [[ -n $plan ]]; then
  setup_line=$("$orchbench" --mode setup --projects-addr "127.0.0.1:$projects_port" --token "$token" \
                 --orchestrator-listen "127.0.0.1:$stand_in_port" --plan "$plan" --out-dir "$work" \
                 2>"$work/setup.err") || { cat "$work/setup.err" >&2; fail "set-up failed"; }
  echo "set-up:      $setup_line"
  echo "             (projects through CreateProject, first messages through both outboxes; runs not started)"
fi

# --- 1. runs through the queue -----------------------------------------------------------------
declare -A rate_of tps_of line_of
if part 1; then
echo
echo "== 1. runs through the queue ($runs runs per worker count, [[instant]] model, $callers StartRun callers;" \
     "pgbench -M extended, $pgbench_seconds s around each, with tools/bench/orchestrator_run.sql)"
# run_pgbench CLIENTS SECONDS LABEL: pgbench with the run script; sets tps (runs per second).
run_pgbench() {
  local clients=$1 seconds=$2 label=$3 out
  out=$("$pg_bin/pgbench" -n -M extended -c "$clients" -j "$((clients < 2 ? clients : 2))" -T "$seconds" \
          -f "$bench_dir/orchestrator_run.sql" -h 127.0.0.1 -p "$pg_port" -U postgres qai 2>&1) ||
    { echo "$out" >&2; fail "pgbench failed"; }
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
  echo "pgbench -c $clients ($label): tps=$tps (runs/s)" \
       "latency_avg_ms=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out")" \
       "runs=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")" \
       "failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")"
  # pgbench's runs (and any it left half-way at the deadline) go, so the tables stay as the
  # service left them.
  psql_qai -c "DELETE FROM orchestrator.runs WHERE prompt = 'pgbench run [[instant]]'" >/dev/null
  psql_qai -c "DELETE FROM orchestrator.outbox WHERE trace_request_id = 'pgbench'" >/dev/null
  psql_qai -c "DELETE FROM sandbox.snapshots s WHERE NOT EXISTS (SELECT 1 FROM orchestrator.runs r WHERE r.id = s.run_id)" >/dev/null
  psql_qai -c "DELETE FROM sandbox.project_blobs b WHERE NOT EXISTS (SELECT 1 FROM sandbox.snapshots s WHERE s.project_id = b.project_id)" >/dev/null
  psql_qai -c "DELETE FROM sandbox.assignments a WHERE NOT EXISTS (SELECT 1 FROM orchestrator.runs r WHERE r.project_id = a.project_id)" >/dev/null
}

# The disk's flush time, which bounds every commit, drifts on a shared machine: pgbench runs
# half its time right before the service and half right after, and the two are averaged.
half=$(calc "$pgbench_seconds / 2")
half=${half%.*}
[[ $half -ge 1 ]] || half=1
for w in $worker_counts; do
  run_pgbench "$w" "$half" before
  tps_before=$tps
  start_orchestrator "orchestrator-w$w" "$w"
  line=$("$orchbench" --mode runs --orchestrator "127.0.0.1:$orchestrator_port" --api-key "$messages_key" --token "$admin_token" \
           --database-url "$database_url" --prompts "$work/runs-$w.tsv" --callers "$callers" --workers "$w" \
           2>"$work/runs-$w.err") || true
  stop_last
  [[ -n $line ]] || { cat "$work/runs-$w.err" >&2; fail "qai-orchbench --mode runs failed"; }
  echo "$line"
  sed 's/^/    stderr: /' "$work/runs-$w.err" | head -n 5
  rate_of[$w]=$(json_field "$line" rate)
  line_of[$w]=$line
  run_pgbench "$w" "$half" after
  tps_of[$w]=$(calc "($tps_before + $tps) / 2")
done
fi

# --- 2. append -> watcher latency ----------------------------------------------------------------
latency_line=""
if part 2; then
echo
echo "== 2. event append -> watcher latency ($events events at $rate/s, after 20 unmeasured; two replicas)"
same_port=$(free_port)
other_port=$(free_port)
"$orchbench" --mode latency --database-url "$database_url" --api-key "$messages_key" --token "$admin_token" --events "$events" --rate "$rate" \
  --replicas "same=127.0.0.1:$same_port,other=127.0.0.1:$other_port" >"$work/latency.out" 2>"$work/latency.err" &
pids+=($!)
latency_pid=$!
for _ in $(seq 100); do grep -q claimed "$work/latency.err" 2>/dev/null && break; sleep 0.1; done
grep -q claimed "$work/latency.err" || { cat "$work/latency.err" >&2; fail "the latency probe did not claim its run"; }
start_orchestrator orchestrator-same 1 "$same_port"
start_orchestrator orchestrator-other 1 "$other_port"
wait "$latency_pid" || echo "    (qai-orchbench --mode latency exited with $?)"
stop_last
stop_last
unset 'pids[-1]'  # the finished latency tool
latency_line=$(cat "$work/latency.out")
[[ -n $latency_line ]] || { cat "$work/latency.err" >&2; fail "qai-orchbench --mode latency failed"; }
echo "$latency_line"
{ grep -v claimed "$work/latency.err" || true; } | sed 's/^/    stderr: /' | head -n 5
fi

# --- 3. idle watchers ---------------------------------------------------------------------------
watchers_line=""
if part 3; then
echo
echo "== 3. $watchers idle watchers on one replica over $channels connections"
watch_port=$(free_port)
"$orchbench" --mode watchers --database-url "$database_url" --api-key "$messages_key" --token "$admin_token" --events "$events" --rate "$rate" \
  --orchestrator "127.0.0.1:$watch_port" --pid-file "$work/watch.pid" --watchers "$watchers" --channels "$channels" \
  --hold "$work/hold.tsv" --probes "$work/probe.tsv" >"$work/watchers.out" 2>"$work/watchers.err" &
pids+=($!)
watchers_pid=$!
for _ in $(seq 100); do grep -q claimed "$work/watchers.err" 2>/dev/null && break; sleep 0.1; done
grep -q claimed "$work/watchers.err" || { cat "$work/watchers.err" >&2; fail "the watchers tool did not claim its run"; }
start_orchestrator orchestrator-watched 2 "$watch_port"
echo "$orchestrator_pid" >"$work/watch.pid"
wait "$watchers_pid" || echo "    (qai-orchbench --mode watchers exited with $?)"
stop_last
unset 'pids[-1]'
watchers_line=$(cat "$work/watchers.out")
[[ -n $watchers_line ]] || { cat "$work/watchers.err" >&2; fail "qai-orchbench --mode watchers failed"; }
echo "$watchers_line"
{ grep -v claimed "$work/watchers.err" || true; } | sed 's/^/    stderr: /' | head -n 8
fi

# --- results ---------------------------------------------------------------------------------
echo
echo "== results"
if part 1; then
echo "1. runs through the queue (runs/s; target: rate >= 0.5 x pgbench)"
printf '   %-8s %6s %9s %9s %6s %9s %9s  %s\n' workers runs rate pgbench ratio worked_p50 total_p99 verdict
for w in $worker_counts; do
  l=${line_of[$w]}
  ratio=$(calc "${rate_of[$w]} / ${tps_of[$w]}")
  v=$(verdict "$ratio >= 0.5 && $(json_field "$l" succeeded) == $runs")
  [[ $v == MISS ]] && misses=$((misses + 1))
  printf '   %-8s %6s %9.1f %9.1f %6.2f %9s %9s  %s\n' "$w" "$(json_field "$l" succeeded)" "${rate_of[$w]}" \
    "${tps_of[$w]}" "$ratio" "$(json_field "$l" worked_p50_ms)" "$(json_field "$l" total_p99_ms)" "$v"
done
echo "   (worked: a run's end - start in ms; total: end - create, queueing included)"
fi

if part 2; then
echo "2. append -> watcher latency, ms from the append's commit (targets: p99 < 5 same, < 20 other)"
printf '   %-8s %7s %7s %7s %7s %7s %8s %8s  %s\n' replica p50 p90 p99 max mean negative missing verdict
for label in same other; do
  limit=$([[ $label == same ]] && echo 5 || echo 20)
  p99=$(json_field "$latency_line" "${label}_p99_ms")
  v=$(verdict "${p99:-999} < $limit && $(json_field "$latency_line" "${label}_missing") == 0")
  [[ $v == MISS ]] && misses=$((misses + 1))
  printf '   %-8s %7s %7s %7s %7s %7s %8s %8s  %s\n' "$label" "$(json_field "$latency_line" "${label}_p50_ms")" \
    "$(json_field "$latency_line" "${label}_p90_ms")" "$p99" "$(json_field "$latency_line" "${label}_max_ms")" \
    "$(json_field "$latency_line" "${label}_mean_ms")" "$(json_field "$latency_line" "${label}_negative")" \
    "$(json_field "$latency_line" "${label}_missing")" "$v"
done
echo "   (the append itself, stamp to commit: p50 $(json_field "$latency_line" append_p50_ms) ms," \
     "p99 $(json_field "$latency_line" append_p99_ms) ms. Every replica, the appender's own included, learns of" \
     "events only through PostgreSQL's NOTIFY, so both watchers take the same path; the tool stands in for the" \
     "worker, and \"same\" is checked against the stricter target.)"
fi

if part 3; then
echo "3. $watchers idle watchers on one replica"
kib=$(json_field "$watchers_line" kib_per_watcher)
v_mem=$(verdict "${kib:-999} <= 20 && $(json_field "$watchers_line" opened) == $watchers")
without=$(json_field "$watchers_line" run_ms_without)
with=$(json_field "$watchers_line" run_ms_with)
slowdown=$(calc "($with / $without - 1) * 100")
v_run=$(verdict "$slowdown <= 20")
lat_with=$(json_field "$watchers_line" lat_with_p99_ms)
v_lat=$(verdict "${lat_with:-999} < 5")
for v in "$v_mem" "$v_run" "$v_lat"; do [[ $v == MISS ]] && misses=$((misses + 1)); done
echo "   memory: VmRSS $(json_field "$watchers_line" rss_before_kib) KiB -> $(json_field "$watchers_line" rss_open_kib) KiB" \
     "with $(json_field "$watchers_line" opened) streams open = $kib KiB per watcher (target <= 20)  $v_mem"
echo "           opened and caught up in $(json_field "$watchers_line" open_seconds) s; after they ended:" \
     "$(json_field "$watchers_line" rss_closed_kib) KiB"
echo "   a run (builtin, 4 iterations), median of $((probes / 2)) each: $without ms without, $with ms with" \
     "($(printf '%+.1f' "$slowdown") %; target <= +20 %)  $v_run"
echo "           worked (end - start): $(json_field "$watchers_line" worked_ms_without) ms without," \
     "$(json_field "$watchers_line" worked_ms_with) ms with"
echo "   append -> separate watcher, $events events: p50/p99/max $(json_field "$watchers_line" lat_without_p50_ms)/" \
     "$(json_field "$watchers_line" lat_without_p99_ms)/$(json_field "$watchers_line" lat_without_max_ms) ms without," \
     "$(json_field "$watchers_line" lat_with_p50_ms)/$lat_with/$(json_field "$watchers_line" lat_with_max_ms) ms with" \
     "(target p99 < 5)  $v_lat"
echo "   the end: cancelling the watched runs ended $(json_field "$watchers_line" ended_ok) streams OK" \
     "($(json_field "$watchers_line" saw_terminal) saw the terminal event) in $(json_field "$watchers_line" end_seconds) s;" \
     "$(json_field "$watchers_line" still_open) were still open before that; $(( watchers / channels )) streams per" \
     "connection were open at once (the server sets no max_concurrent_streams); RLIMIT_NOFILE" \
     "$(json_field "$watchers_line" rlimit_nofile)"
fi

echo
echo "== services"
# Warnings and errors, but not the health changes every start and stop logs.
for log in "$work"/orchestrator-*.log "$work/messages.log" "$work/projects.log"; do
  name=$(basename "$log" .log)
  n=$({ grep -v -e '"level":"info"' -e '"msg":"health"' "$log" || true; } | wc -l)
  echo "$name: $n lines at warn level or above (health changes aside)$([[ $n -gt 0 ]] && echo ', first 3:')"
  { grep -v -e '"level":"info"' -e '"msg":"health"' "$log" || true; } | head -n 3 | cut -c1-300
done
for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || fail "process $pid died during the benchmark"; done
echo
echo "$misses target(s) missed; total time $((SECONDS - started)) s; load now $(cut -d' ' -f1-3 /proc/loadavg)"
