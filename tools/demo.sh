#!/usr/bin/env bash
# The main job: installs what is needed, builds, starts a private PostgreSQL and the QAI
# services, and walks a project's life with the `qai` client.
#
# Today the suite is the projects and messages services (the orchestrator arrives in the next
# issue): the demo creates a project, whose prompt becomes its first message through the
# projects outbox; sends a follow-up; reads, lists and renames; shows the run requests waiting
# in the messages outbox for the orchestrator; deletes the project, which purges its messages.
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

# Services call each other with an API key; each accepts the keys whose SHA-256 it knows.
QAI_API_KEY="demo-service-key-$RANDOM$RANDOM"
QAI_SERVICE_KEY_SHA256=$(printf '%s' "$QAI_API_KEY" | sha256sum | cut -d' ' -f1)
export QAI_API_KEY QAI_SERVICE_KEY_SHA256
export QAI_PROJECTS_ADDR="127.0.0.1:$(qai_free_port)" QAI_MESSAGES_ADDR="127.0.0.1:$(qai_free_port)"
# No orchestrator yet: its address is a closed port, so run requests wait in the outbox.
export QAI_ORCHESTRATOR_ADDR=127.0.0.1:1

step "qai-projects and qai-messages"
QAI_LISTEN_ADDR=$QAI_PROJECTS_ADDR "$BIN/services/projects/qai-projects" 2>"$work/projects.log" &
pids+=($!)
QAI_LISTEN_ADDR=$QAI_MESSAGES_ADDR "$BIN/services/messages/qai-messages" 2>"$work/messages.log" &
pids+=($!)
qai_wait_listening "$work/projects.log" >/dev/null
qai_wait_listening "$work/messages.log" >/dev/null
echo "projects on $QAI_PROJECTS_ADDR, messages on $QAI_MESSAGES_ADDR"
echo "(logs: JSON lines; the first one is the configuration, secrets masked)"
head -n 1 "$work/messages.log"

step "A development token for user demo-user"
QAI_TOKEN=$("$QAI" token --sub demo-user --ttl 1h)
export QAI_TOKEN
echo "${QAI_TOKEN:0:24}..."

step "Create a project from a prompt: the prompt becomes its first message (through the outbox)"
created=$("$QAI" --json projects create --prompt "Build a landing page for a coffee shop" --display-name "Coffee shop" --wait 0)
echo "$created"
id=$(sed -E 's/.*"id":"([^"]+)".*/\1/' <<<"$created" | head -n 1)
run "$QAI" projects create --prompt "A portfolio for a photographer"

step "Read it back, list, rename"
run "$QAI" projects get "$id"
run "$QAI" projects list
run "$QAI" projects rename "$id" "Coffee & cake"

step "The conversation: a follow-up prompt, then the whole list, oldest first"
run "$QAI" messages send --project "$id" --content "Add a menu section with prices"
run "$QAI" messages list --project "$id"

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

step "Another user cannot see it, nor its messages"
QAI_TOKEN=$("$QAI" token --sub someone-else) run "$QAI" projects get "$id" || true
QAI_TOKEN=$("$QAI" token --sub someone-else) run "$QAI" messages list --project "$id" || true

step "Each prompt's run request waits in the messages outbox for the orchestrator (next issue), retried with backoff"
psql -X -q "$QAI_PG_URL" -c "SELECT topic, attempts, left(last_error, 50) AS last_error FROM messages.outbox ORDER BY seq"
echo "(projects.outbox: the initial prompts, delivered to the messages service)"
psql -X -q "$QAI_PG_URL" -c "SELECT topic, attempts, deliver_time IS NOT NULL AS delivered FROM projects.outbox ORDER BY seq"

step "Delete it: its messages are purged and its runs cancelled, through the outbox"
run "$QAI" projects delete "$id"
run "$QAI" projects get "$id" || true
sleep 1
psql -X -q "$QAI_PG_URL" -c "SELECT count(*) AS messages_left FROM messages.messages WHERE project_id = '$id'"

step "Graceful shutdown (SIGTERM drains in-flight calls, exits 0)"
for i in 0 1; do
  kill -TERM "${pids[$i]}"
  wait "${pids[$i]}" && echo "$([ "$i" = 0 ] && echo qai-projects || echo qai-messages) exited 0"
done
pids=()
tail -n 2 "$work/messages.log"
echo
echo "demo: done"
