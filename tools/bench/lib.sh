# Helpers the benchmark scripts share. Source it after setting `bench_name` (what messages are
# prefixed with) and, for bench_pg_start and psql_admin/psql_qai, `pg_bin` and `work`.

source "$(dirname "${BASH_SOURCE[0]}")/../lib/pg.sh"

# bench_pg_start [OPTIONS]: the private PostgreSQL (tools/lib/pg.sh's qai_pg_start) with its stock
# settings, plus OPTIONS ("-c name=value ..."), from $pg_bin, in a directory inside $work (so
# KEEP_WORK keeps its log); sets pg_port. Stopped by qai_pg_stop.
bench_pg_start() {
  QAI_PG_BIN=$pg_bin QAI_PG_OPTIONS=${1:-} TMPDIR=$work qai_pg_start --stock ||
    fail "PostgreSQL did not start"
  pg_port=$QAI_PG_PORT
}

# stop_process PID [NAME]: SIGTERM, then SIGKILL after 10 s; reaps it.
stop_process() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  echo "$bench_name: ${2:-process $pid} did not stop; killing it" >&2
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# bench_stop_on_exit: when the script ends (or is interrupted), the processes in its `pids`
# array stop, the last started first, then PostgreSQL; $work goes unless keep_work is 1. The
# script's exit status is kept.
bench_stop_on_exit() {
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
bench_cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  set +e
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_process "${pids[$i]}"; done
  qai_pg_stop --keep  # its directory is in $work, kept or removed below
  if [[ $keep_work == 1 ]]; then echo "$bench_name: logs kept in $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}

fail() {
  echo "$bench_name: $*" >&2
  exit 1
}

# free_port: a TCP port nobody listens on right now.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    if [[ -z $(ss -Hltn "sport = :$port" 2>/dev/null) ]]; then echo "$port"; return 0; fi
  done
  fail "no free port found"
}

# wait_for_port PID LOG [PORT]: the TCP port PID listens on: PORT when given (a process that
# listens on several), else its only one (from ss), or from a "listening" log line.
wait_for_port() {
  local pid=$1 log=$2 want=${3:-} port=""
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; fail "process $pid exited during start-up"; }
    if [[ -n $want ]]; then
      [[ -n $(ss -Hltn "sport = :$want" 2>/dev/null) ]] && port=$want
    else
      port=$(ss -Hltnp 2>/dev/null | awk -v tag="pid=$pid," 'index($0, tag) { n = split($4, a, ":"); print a[n]; exit }')
      [[ -z $port ]] && port=$(grep -o '"listening"[^}]*' "$log" 2>/dev/null | grep -o '"port":[0-9]*' | head -n 1 | cut -d: -f2)
    fi
    [[ -n $port ]] && { echo "$port"; return 0; }
    sleep 0.1
  done
  fail "process $pid did not start listening (log: $log)"
}

# json_field LINE NAME: a field of a one-line JSON object (numbers and plain strings).
json_field() {
  sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"
}

calc() { awk "BEGIN { printf \"%.10g\", $1 }"; }

psql_admin() { "$pg_bin/psql" -X -q -At -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
psql_qai() { psql_admin -d qai "$@"; }
