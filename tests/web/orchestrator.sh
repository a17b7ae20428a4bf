#!/usr/bin/env bash
# orchestrator.sh start | stop [SIGNAL] | restart [SIGNAL]: with_stack.sh's orchestrator.
#   start    starts it on $QAI_ORCHESTRATOR_ADDR (its workspaces are qai-sandbox's, on
#            $QAI_SANDBOX_ADDR), logging to a new file in $QAI_WEB_WORK; its pid goes to
#            $QAI_WEB_WORK/orchestrator.pid. Returns once it listens.
#   stop     sends SIGNAL (default TERM) and waits until it has exited.
#   restart  stop, then start: same addresses.
# Reads what with_stack.sh exports (QAI_WEB_WORK, QAI_WEB_BUILD, the services' QAI_* settings).
set -euo pipefail
source "$(cd "$(dirname "$0")/../.." && pwd)/tools/lib/pg.sh"
source "$(cd "$(dirname "$0")/../.." && pwd)/tools/lib/keys.sh"
pid_file=$QAI_WEB_WORK/orchestrator.pid

stop() {
  [ -s "$pid_file" ] || return 0
  local pid
  pid=$(cat "$pid_file")
  kill -"${1:-TERM}" "$pid" 2>/dev/null || true
  # It is no child of the caller (start's shell has exited), so wait until it is gone or a zombie.
  while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do sleep 0.05; done
  rm -f "$pid_file"
}

start() {
  local log
  log=$QAI_WEB_WORK/orchestrator.$(date +%s%N).log
  env QAI_LISTEN_ADDR="$QAI_ORCHESTRATOR_ADDR" QAI_LOG_LEVEL=info QAI_API_KEY="$(qai_service_key orchestrator)" \
    "$QAI_WEB_BUILD/services/orchestrator/qai-orchestrator" \
    </dev/null >"$log" 2>&1 &  # no pipe of the caller's: a test runner waits for its pipes to close
  echo $! >"$pid_file"
  qai_wait_listening "$log" >/dev/null
}

case ${1:-} in
  start) start ;;
  stop) stop "${2:-TERM}" ;;
  restart) stop "${2:-TERM}"; start ;;
  *) echo "usage: $0 start | stop [SIGNAL] | restart [SIGNAL]" >&2; exit 2 ;;
esac
