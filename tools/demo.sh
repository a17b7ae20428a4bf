#!/usr/bin/env bash
# The main job: installs what is needed, builds, starts a private PostgreSQL and the QAI
# services, and walks a project through its life with the `qai` client.
#
# Today the suite is the projects service (the messages and orchestrator services arrive in
# the next issues): the demo creates, reads, lists, renames and deletes a project, and shows
# the initial prompt waiting in the transactional outbox for the messages service.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
source tools/lib/pg.sh
qai_build build >/dev/null
BIN=build
QAI="$BIN/tools/qai/qai"

work=$(mktemp -d "${TMPDIR:-/tmp}/qai-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  qai_pg_stop
  [ -n "${QAI_DEMO_KEEP:-}" ] && echo "logs kept in $work" && return
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "PostgreSQL (private, temporary)"
qai_pg_start
echo "listening on 127.0.0.1:$QAI_PG_PORT"

export QAI_DATABASE_URL="$QAI_PG_URL"
export QAI_JWT_SECRET="demo-secret-$(date +%s)-$RANDOM"
step "Migrations"
run "$BIN/db/qai-migrate" 2>&1 | grep -v '"msg":"starting"' || true

step "qai-projects"
QAI_LISTEN_ADDR=127.0.0.1:0 QAI_MESSAGES_ADDR=127.0.0.1:1 QAI_ORCHESTRATOR_ADDR=127.0.0.1:1 \
  "$BIN/services/projects/qai-projects" 2>"$work/projects.log" &
pids+=($!)
port=$(qai_wait_listening "$work/projects.log")
export QAI_PROJECTS_ADDR="127.0.0.1:$port"
echo "serving on $QAI_PROJECTS_ADDR (log: JSON lines, first one is the configuration with secrets masked)"
head -n 1 "$work/projects.log"

step "A development token for user demo-user"
QAI_TOKEN=$("$QAI" token --sub demo-user --ttl 1h)
export QAI_TOKEN
echo "${QAI_TOKEN:0:24}..."

step "Create a project from a prompt"
created=$("$QAI" --json projects create --prompt "Build a landing page for a coffee shop" --display-name "Coffee shop")
echo "$created"
id=$(sed -E 's/.*"id":"([^"]+)".*/\1/' <<<"$created")

step "Read it back, list, rename"
run "$QAI" projects get "$id"
run "$QAI" projects create --prompt "A portfolio for a photographer" >/dev/null
run "$QAI" projects list
run "$QAI" projects rename "$id" "Coffee & cake"

step "Any gRPC tool works through server reflection, no .proto files needed (buf curl)"
BUF=tools/node_modules/.bin/buf
run "$BUF" curl --protocol grpc --http2-prior-knowledge --list-methods "http://$QAI_PROJECTS_ADDR"
run "$BUF" curl --protocol grpc --http2-prior-knowledge "http://$QAI_PROJECTS_ADDR/grpc.health.v1.Health/Check"
printf '$ %s\n' "$BUF curl ... -H 'authorization: Bearer \$QAI_TOKEN' -d '{\"id\":\"$id\"}' http://$QAI_PROJECTS_ADDR/qai.projects.v1.ProjectService/GetProject"
"$BUF" curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer $QAI_TOKEN" \
  -d "{\"id\":\"$id\"}" "http://$QAI_PROJECTS_ADDR/qai.projects.v1.ProjectService/GetProject"

step "Validation names the bad field"
run "$QAI" projects create --prompt "   " || true
run "$QAI" projects list --page-size -1 || true

step "Another user cannot see it"
QAI_TOKEN=$("$QAI" token --sub someone-else) run "$QAI" projects get "$id" || true

step "The initial prompts wait in the outbox for the messages service (next issue), retried with backoff"
psql -X -q "$QAI_PG_URL" -c "SELECT topic, attempts, left(last_error, 60) AS last_error FROM projects.outbox ORDER BY create_time"

step "Delete it"
run "$QAI" projects delete "$id"
run "$QAI" projects get "$id" || true

step "Graceful shutdown (SIGTERM drains in-flight calls, exits 0)"
kill -TERM "${pids[0]}"
wait "${pids[0]}" && echo "qai-projects exited 0"
pids=()
tail -n 3 "$work/projects.log"
echo
echo "demo: done"
