#!/usr/bin/env bash
# Runs COMMAND against a whole private QAI stack, the way a browser meets it: PostgreSQL,
# qai-migrate, qai-projects, qai-messages, qai-sandbox (bubblewrap, the preview server),
# qai-orchestrator (builtin offline model) and the local grpc-web proxy (tools/web/proxy.ts, configured from Envoy's file).
# Everything lives in a temporary directory and is stopped after, pass or fail.
#
#   tests/web/with_stack.sh BUILD_DIR COMMAND...
#
# COMMAND sees QAI_WEB_PROXY (the proxy's URL), QAI_WEB_SITE (the page's files),
# QAI_WEB_TOKEN and QAI_WEB_OTHER_TOKEN (two users' tokens), QAI_API_KEY (a service key the
# services accept), QAI_WEB_WORK (a directory it may write to), QAI_WEB_ENVOY (the Envoy
# configuration the proxy serves) and
# QAI_WEB_ORCHESTRATOR (tests/web/orchestrator.sh: `$QAI_WEB_ORCHESTRATOR restart KILL` stops
# the orchestrator with SIGKILL and starts it again on the same addresses).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "$1" && pwd)
shift
source "$root/tools/lib/pg.sh"
source "$root/tools/lib/keys.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/qai-web.XXXXXX")
chmod 711 "$work"  # the sandbox's per-project users must reach the workspaces inside
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$here/orchestrator.sh" stop || true
  wait 2>/dev/null || true
  qai_pg_stop
  if [ "$status" != 0 ]; then
    for log in "$work"/*.log; do echo "--- $(basename "$log") (last lines)"; tail -n 15 "$log"; done >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

qai_pg_start
export QAI_DATABASE_URL="$QAI_PG_URL" QAI_JWT_SECRET="$(qai_secret)" QAI_LOG_LEVEL=warn
# One active run per project, so a test can meet the cap (a QuotaFailure through grpc-web).
export QAI_RUN_MAX_ACTIVE_PER_PROJECT=1
# A killed orchestrator's run is taken over once its lease lapses: 5 s, so a test can wait for it.
export QAI_RUN_LEASE=5s
"$build/db/qai-migrate" 2>"$work/migrate.log"

qai_stack_keys
# A service key for tests to try at the edge (qai-projects'): it must never get through.
QAI_API_KEY=$(qai_service_key projects)
export QAI_API_KEY
export QAI_PROJECTS_ADDR="127.0.0.1:$(qai_free_port)" QAI_MESSAGES_ADDR="127.0.0.1:$(qai_free_port)" \
  QAI_ORCHESTRATOR_ADDR="127.0.0.1:$(qai_free_port)" QAI_SANDBOX_ADDR="127.0.0.1:$(qai_free_port)"

# start NAME ADDR [VAR=VALUE...]: one service, logging to $work/NAME.log.
start() {
  local name=$1 addr=$2
  shift 2
  env QAI_LISTEN_ADDR="$addr" QAI_LOG_LEVEL=info QAI_API_KEY="$(qai_service_key "$name")" "$@" \
    "$build/services/$name/qai-$name" 2>"$work/$name.log" &
  pids+=($!)
}
start projects "$QAI_PROJECTS_ADDR"
start messages "$QAI_MESSAGES_ADDR"
start sandbox "$QAI_SANDBOX_ADDR" QAI_PREVIEW_ADDR="127.0.0.1:$(qai_free_port)" QAI_SANDBOX_ROOT="$work/sandboxes"
for name in projects messages sandbox; do qai_wait_listening "$work/$name.log" >/dev/null; done
# The orchestrator is started through orchestrator.sh, with which a test restarts it.
export QAI_WEB_WORK="$work" QAI_WEB_BUILD="$build"
export QAI_WEB_ORCHESTRATOR="$here/orchestrator.sh"
"$QAI_WEB_ORCHESTRATOR" start

export QAI_WEB_ENVOY="$root/k8s/base/envoy/envoy.yaml"
node "$build/web/proxy.cjs" --envoy "$QAI_WEB_ENVOY" --listen 127.0.0.1:0 \
  --cluster "qai-projects=$QAI_PROJECTS_ADDR" --cluster "qai-messages=$QAI_MESSAGES_ADDR" \
  --cluster "qai-orchestrator=$QAI_ORCHESTRATOR_ADDR" >"$work/proxy.out" 2>"$work/proxy.log" &
pids+=($!)
for _ in $(seq 1 200); do grep -q listening "$work/proxy.out" && break; sleep 0.05; done
proxy=$(grep -o '"listening":"[^"]*"' "$work/proxy.out" | cut -d'"' -f4) || { cat "$work/proxy.log" >&2; exit 1; }

export QAI_WEB_PROXY="http://$proxy" QAI_WEB_SITE="$build/web/site"
QAI_WEB_TOKEN=$("$build/tools/qai/qai" token --sub web-user --ttl 1h)
QAI_WEB_OTHER_TOKEN=$("$build/tools/qai/qai" token --sub other-user --ttl 1h)
export QAI_WEB_TOKEN QAI_WEB_OTHER_TOKEN
"$@"
