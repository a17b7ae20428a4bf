#!/usr/bin/env bash
# The main job: installs what is needed, builds, starts a private PostgreSQL and the four QAI
# services (two replicas of the orchestrator with its builtin offline model, and qai-sandbox,
# where the agents' commands run under bubblewrap and previews are served), and walks a
# project's life with the `qai` client.
#
# A prompt creates a project and the agent's progress streams live (`--watch`) while it builds
# a web page; the page is fetched from its preview URL; a follow-up prompt adds to the same
# page; a third prompt's run is watched from the replica that does not run it, which is killed
# and started again mid-run: the watch resumes where it stopped; then the conversation, the runs, the first version still served at its own URL, a
# replay of a finished run's events, gRPC through server reflection (buf curl), validation and
# ownership errors, the outboxes, a delete that purges the messages, and SIGTERM for each
# service. QAI_DEMO_KEEP=1 keeps the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
source tools/lib/pg.sh
source tools/lib/keys.sh
qai_build build >/dev/null
BIN=build
QAI="$BIN/tools/qai/qai"
started=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/qai-demo.XXXXXX")
chmod 711 "$work"  # the sandbox's per-project users must reach the workspaces inside
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
# json_field NAME: the first string value of "NAME" in the JSON on stdin.
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }

step "PostgreSQL (private, temporary)"
qai_pg_start
echo "listening on 127.0.0.1:$QAI_PG_PORT"

export QAI_DATABASE_URL="$QAI_PG_URL"
export QAI_JWT_SECRET="$(qai_secret)"
step "Migrations"
run "$BIN/db/qai-migrate" 2>&1 | grep -v '"msg":"starting"' || true

# Services call each other with a key of their own; each accepts the keys whose SHA-256 it
# knows, under the name of the service holding it, and lets each name call only what that
# service needs. Only the services get keys: the `qai` client below calls as demo-user, with a
# bearer token.
qai_stack_keys
# as_service NAME: the environment NAME's process starts with.
as_service() { echo env "QAI_API_KEY=$(qai_service_key "$1")"; }
export QAI_PROJECTS_ADDR="127.0.0.1:$(qai_free_port)" QAI_MESSAGES_ADDR="127.0.0.1:$(qai_free_port)"
# Two orchestrator replicas share the run queue; the other services and the client use the first.
orchestrator_addr=("127.0.0.1:$(qai_free_port)" "127.0.0.1:$(qai_free_port)")
export QAI_ORCHESTRATOR_ADDR=${orchestrator_addr[0]}
export QAI_SANDBOX_ADDR="127.0.0.1:$(qai_free_port)"
preview_addr="127.0.0.1:$(qai_free_port)"

step "qai-sandbox (bubblewrap, a cgroup and a disk quota per project: it refuses to start without them), qai-projects, qai-messages, two qai-orchestrator replicas (as nobody)"
# Workspaces live in the demo's temporary directory; previews are served from the snapshots.
QAI_LISTEN_ADDR=$QAI_SANDBOX_ADDR QAI_PREVIEW_ADDR=$preview_addr QAI_SANDBOX_ROOT="$work/sandboxes" \
  $(as_service sandbox) "$BIN/services/sandbox/qai-sandbox" 2>"$work/sandbox.log" &
pids[4]=$!
qai_wait_listening "$work/sandbox.log" >/dev/null
grep '"msg":"sandbox"' "$work/sandbox.log" | head -n 1
grep '"msg":"sandbox: cgroup' "$work/sandbox.log" | head -n 1
grep '"msg":"sandbox: each workspace' "$work/sandbox.log" | head -n 1
QAI_LISTEN_ADDR=$QAI_PROJECTS_ADDR $(as_service projects) "$BIN/services/projects/qai-projects" 2>"$work/projects.log" &
pids[0]=$!
QAI_LISTEN_ADDR=$QAI_MESSAGES_ADDR $(as_service messages) "$BIN/services/messages/qai-messages" 2>"$work/messages.log" &
pids[1]=$!
# start_orchestrator N LOG: replica N (0 or 1) as pids[2 + N], logging to LOG. It runs no
# command itself (its agents work in qai-sandbox's workspaces), so it runs as nobody, with no
# capabilities.
unprivileged=()
[ "$(id -u)" = 0 ] && unprivileged=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --no-new-privs)
start_orchestrator() {
  QAI_LISTEN_ADDR=${orchestrator_addr[$1]} $(as_service orchestrator) "${unprivileged[@]}" \
    "$BIN/services/orchestrator/qai-orchestrator" 2>"$work/$2" &
  pids[2 + $1]=$!
  qai_wait_listening "$work/$2" >/dev/null
}
start_orchestrator 0 orchestrator-0.log
start_orchestrator 1 orchestrator-1.log
for service in projects messages; do qai_wait_listening "$work/$service.log" >/dev/null; done
echo "projects on $QAI_PROJECTS_ADDR, messages on $QAI_MESSAGES_ADDR"
echo "orchestrator replicas on ${orchestrator_addr[0]} and ${orchestrator_addr[1]}, sandbox on $QAI_SANDBOX_ADDR, previews on $preview_addr"
echo "(logs: JSON lines; the first one is the configuration, secrets masked)"
head -n 1 "$work/orchestrator-0.log"

step "A development token for user demo-user"
QAI_TOKEN=$("$QAI" token --sub demo-user --ttl 1h)
export QAI_TOKEN
echo "${QAI_TOKEN:0:24}..."

step "Create a project from a prompt, and watch the agent build it live"
echo "(the prompt becomes the first message through the projects outbox, which starts a run through"
echo " the messages outbox; --watch follows the run's event stream until it ends)"
run "$QAI" projects create --display-name "Coffee shop" --watch \
  --prompt "Build a landing page for a coffee shop with a menu and a contact form"
id=$("$QAI" --json projects list --page-size 1 | json_field id)
run1=$("$QAI" --json runs list --project "$id" --page-size 1 | json_field id)
preview1=$("$QAI" --json runs get "$run1" | json_field sandboxUrl)

step "The result is a real web page, served at its preview URL"
echo "preview: $preview1"
run curl -sS -o "$work/v1.html" -w 'HTTP %{http_code}, %{content_type}, %{size_download} bytes\n' "$preview1"
grep -o '<title>[^<]*</title>' "$work/v1.html"
echo "its sections:"
grep -o '<section id="[^"]*"' "$work/v1.html" | sed 's/^/  /'
echo "a few lines:"
grep -m 6 -E '<h1|<h2|<li>' "$work/v1.html" | sed -E 's/^ +/  /'

step "A follow-up prompt: the agent edits the same workspace, so it builds on the first page"
run "$QAI" messages send --project "$id" --watch \
  --content "Add a gallery of our latte art and a section with customer reviews"
run2=$("$QAI" --json runs list --project "$id" --page-size 1 | json_field id)
preview2=$("$QAI" --json runs get "$run2" | json_field sandboxUrl)
run curl -sS -o "$work/v2.html" -w 'HTTP %{http_code}, %{size_download} bytes\n' "$preview2"
grep -o '<title>[^<]*</title>' "$work/v2.html"
echo "its sections (the first page's, then the new ones):"
grep -o '<section id="[^"]*"' "$work/v2.html" | sed 's/^/  /'

step "WatchRun works on any replica, and a watch outlives the replica it was connected to"
echo "(a third prompt, whose check takes 4 s: the builtin model's [[sleep 4]] test directive. One replica"
echo " runs it; the watch follows it from the other one, which is killed with SIGKILL mid-run and"
echo " started again: the watch reconnects with after_sequence = the last event it showed, so"
echo " nothing is missed and nothing is shown twice)"
run "$QAI" messages send --project "$id" --content "Add a pricing section with coffee subscription plans [[sleep 4]]"
for _ in $(seq 1 100); do  # until the third run is in its third iteration, the check that sleeps
  "$QAI" --json runs list --project "$id" --page-size 1 | grep -q '"iteration":3' && break
  sleep 0.1
done
run3=$("$QAI" --json runs list --project "$id" --page-size 1 | json_field id)
runner=0
grep -q "\"msg\":\"run started\".*$run3" "$work/orchestrator-1.log" && runner=1
other=$((1 - runner))
echo "replica $runner (${orchestrator_addr[$runner]}) runs $run3"
printf '$ %s &\n' "$QAI watch $run3 --orchestrator-addr ${orchestrator_addr[$other]}"
"$QAI" watch "$run3" --orchestrator-addr "${orchestrator_addr[$other]}" &
watcher=$!
sleep 1
# One write, starting with a clear-line on a terminal, so the watch's status line does not run into it.
[ -t 1 ] && clear_line=$'\r\033[2K' || clear_line=
printf '%s$ kill -KILL %s   # replica %s, the watch'"'"'s; then it is started again\n' "$clear_line" "${pids[2 + other]}" "$other"
kill -KILL "${pids[2 + other]}"
wait "${pids[2 + other]}" 2>/dev/null || true
start_orchestrator "$other" "orchestrator-$other-restarted.log"
wait "$watcher"

step "The conversation: the prompts and the agent's answers (one per run), each with its fragment"
run "$QAI" messages list --project "$id"

step "The project's runs, newest first"
run "$QAI" runs list --project "$id"
run "$QAI" runs get "$run3"

step "The first preview URL still serves the first version (each fragment is a snapshot)"
run curl -sS -o "$work/v1-again.html" -w 'HTTP %{http_code}, %{size_download} bytes\n' "$preview1"
if cmp -s "$work/v1.html" "$work/v1-again.html"; then
  echo "identical to what it served before: $(grep -c '<section id=' "$work/v1-again.html") sections, no gallery, no pricing"
else
  echo "the first preview changed!" >&2
  exit 1
fi

step "Versions: every successful run made one; compare two, then bring the first back"
run "$QAI" versions list --project "$id"
run "$QAI" versions diff --project "$id" --from 1 --to 2
run "$QAI" versions restore --project "$id" 1 --watch
run "$QAI" versions list --project "$id"
preview4=$("$QAI" --json versions list --project "$id" --page-size 1 | json_field sandboxUrl)
run curl -sS -o "$work/v4.html" -w 'HTTP %{http_code}, %{size_download} bytes\n' "$preview4"
if cmp -s "$work/v1.html" "$work/v4.html"; then
  echo "version 4 serves version 1's page; versions 2 and 3 are all kept and still serve theirs"
else
  echo "the restored version differs from version 1!" >&2
  exit 1
fi

step "Take it away: version 4 downloaded as a .zip (streamed), and over plain HTTP next to its preview"
qai_abs=$(realpath "$QAI")
(cd "$work" && run "$qai_abs" versions download --project "$id" 4)
zip4=$(ls "$work"/*-v4.zip)
run unzip -l "$zip4"
download4=$("$QAI" versions get --project "$id" 4 | sed -n 's/^download_url: //p')
run curl -sS -D - -o "$work/v4-http.zip" "$download4"
folder4=$(basename "$zip4" .zip)
if unzip -p "$zip4" "$folder4/index.html" | cmp -s - "$work/v4.html" && cmp -s "$zip4" "$work/v4-http.zip"; then
  echo "the archive's index.html is the page version 4 serves; the HTTP download is the same archive"
else
  echo "the download differs from version 4!" >&2
  exit 1
fi

step "Replay: a watcher that dropped resumes after the last event it saw (here: the last 4 of the first run)"
last=$("$QAI" --json runs get "$run1" | grep -o '"lastSequence":"[0-9]*"' | grep -o '[0-9]*')
run "$QAI" watch "$run1" --after $((last - 4))

step "Any gRPC tool works through server reflection, no .proto files needed (buf curl)"
BUF=tools/node_modules/.bin/buf
run "$BUF" curl --protocol grpc --http2-prior-knowledge --list-methods "http://$QAI_ORCHESTRATOR_ADDR"
run "$BUF" curl --protocol grpc --http2-prior-knowledge "http://$QAI_PROJECTS_ADDR/grpc.health.v1.Health/Check"
printf '$ %s\n' "$BUF curl ... -H 'authorization: Bearer \$QAI_TOKEN' -d '{\"id\":\"$id\"}' http://$QAI_PROJECTS_ADDR/qai.projects.v1.ProjectService/GetProject"
"$BUF" curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer $QAI_TOKEN" \
  -d "{\"id\":\"$id\"}" "http://$QAI_PROJECTS_ADDR/qai.projects.v1.ProjectService/GetProject"
echo "(WatchRun is a server stream: buf curl prints each event as it comes; here the last two of the follow-up's run)"
last2=$("$QAI" --json runs get "$run2" | grep -o '"lastSequence":"[0-9]*"' | grep -o '[0-9]*')
watch_request="{\"run_id\":\"$run2\",\"after_sequence\":$((last2 - 2))}"
printf '$ %s\n' "$BUF curl ... -H 'authorization: Bearer \$QAI_TOKEN' -d '$watch_request' http://$QAI_ORCHESTRATOR_ADDR/qai.orchestrator.v1.AgentOrchestrator/WatchRun"
"$BUF" curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer $QAI_TOKEN" -d "$watch_request" \
  "http://$QAI_ORCHESTRATOR_ADDR/qai.orchestrator.v1.AgentOrchestrator/WatchRun"

step "Read the project back, list, rename"
run "$QAI" projects get "$id"
run "$QAI" projects list
run "$QAI" projects rename "$id" "Coffee & cake"

step "Validation names the bad field"
run "$QAI" projects create --prompt "   " || true
run "$QAI" projects list --page-size -1 || true
run "$QAI" runs list --project not-a-uuid || true

step "Another user cannot see it, nor its messages, nor its runs"
QAI_TOKEN=$("$QAI" token --sub someone-else) run "$QAI" projects get "$id" || true
QAI_TOKEN=$("$QAI" token --sub someone-else) run "$QAI" messages list --project "$id" || true
QAI_TOKEN=$("$QAI" token --sub someone-else) run "$QAI" runs get "$run1" || true

step "Every hop went through an outbox, delivered once (at least once, to idempotent receivers)"
echo "(projects.outbox: the initial prompt, to the messages service)"
psql -X -q -P pager=off "$QAI_PG_URL" -c "SELECT topic, attempts, deliver_time IS NOT NULL AS delivered FROM projects.outbox ORDER BY seq"
echo "(messages.outbox: each prompt's run request, to the orchestrator)"
psql -X -q -P pager=off "$QAI_PG_URL" -c "SELECT topic, attempts, deliver_time IS NOT NULL AS delivered FROM messages.outbox ORDER BY seq"

step "Delete it: its messages are purged and its runs cancelled, through the outbox"
run "$QAI" projects delete "$id"
run "$QAI" projects get "$id" || true
sleep 1
psql -X -q -P pager=off "$QAI_PG_URL" -c "SELECT count(*) AS messages_left FROM messages.messages WHERE project_id = '$id'"
echo "(and, through the orchestrator's outbox, qai-sandbox purged its workspace and snapshots: its previews are gone)"
psql -X -q -P pager=off "$QAI_PG_URL" -c "SELECT count(*) AS snapshots_left FROM sandbox.snapshots WHERE project_id = '$id'"

step "Graceful shutdown (SIGTERM drains in-flight calls, exits 0)"
names=(qai-projects qai-messages "qai-orchestrator (replica 0)" "qai-orchestrator (replica 1)" qai-sandbox)
for i in 3 2 4 1 0; do
  kill -TERM "${pids[$i]}"
  wait "${pids[$i]}" && echo "${names[$i]} exited 0"
done
pids=()
tail -n 1 "$work/messages.log"
echo
echo "demo: done in $(( $(date +%s) - started ))s (after the build)"
