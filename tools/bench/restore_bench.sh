#!/usr/bin/env bash
# restore_bench: RestoreVersion of a 1,000-file, 20 MB version, end to end, through the whole
# suite as processes (qai-projects, qai-messages, qai-orchestrator with the builtin model,
# qai-sandbox with bubblewrap) on a private PostgreSQL. Target: under 1 s.
#
# A project is created from a prompt (its version 1); version 2 is written straight into the
# database (FILES files of FILE_KIB KiB each: what is measured is the restore, not how the
# version was made). Then ROUNDS (5) restores of version 2, one after the other, each timed two
# ways: as a client sees it (`qai versions restore --watch`: the call, the run queued, worked
# and ended, its message stored, the stream's end) and as the run's own times say (create to
# end). Each restore makes a new version from version 2's files: the workspace is made those
# files, they are snapshotted (a preview of its own) and the result is posted.
#
#   bash tools/bench/restore_bench.sh      # after a build, as root; about 30 s
set -euo pipefail
bench_name=restore_bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/keys.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-build}
[[ $build == /* ]] || build=$root/$build
rounds=${ROUNDS:-5}
files=${FILES:-1000}
file_kib=${FILE_KIB:-20}
pg_bin=${QAI_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
keep_work=${KEEP_WORK:-0}
while read -r name; do unset "$name"; done < <(compgen -e | grep '^QAI_' || true)

qai=$build/tools/qai/qai
for program in projects/qai-projects messages/qai-messages orchestrator/qai-orchestrator \
               sandbox/qai-sandbox; do
  [[ -x $build/services/$program ]] || fail "$build/services/$program is missing (build it first)"
done
[[ -x $qai && -x $build/db/qai-migrate ]] || fail "build first"

work=$(mktemp -d "${TMPDIR:-/tmp}/qai-restore-bench.XXXXXX")
chmod 755 "$work"
pids=()
bench_stop_on_exit

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
bench_pg_start
psql_admin -d postgres -c "CREATE DATABASE qai"
export QAI_DATABASE_URL="host=127.0.0.1 port=$pg_port user=postgres dbname=qai"
"$build/db/qai-migrate" --log-level warn >"$work/migrate.log" 2>&1 ||
  { cat "$work/migrate.log" >&2; fail "qai-migrate failed"; }

qai_stack_keys
export QAI_JWT_SECRET=$(qai_secret) QAI_LOG_LEVEL=warn QAI_RATE_LIMIT=0
export QAI_PROJECTS_ADDR="127.0.0.1:$(free_port)" QAI_MESSAGES_ADDR="127.0.0.1:$(free_port)"
export QAI_ORCHESTRATOR_ADDR="127.0.0.1:$(free_port)" QAI_SANDBOX_ADDR="127.0.0.1:$(free_port)"
# start NAME LISTEN [ENV...]: the service NAME with its key, logging to $work/NAME.log.
start() {
  local name=$1 addr=$2
  shift 2
  env QAI_API_KEY="$(qai_service_key "$name")" QAI_LISTEN_ADDR="$addr" "$@" \
    "$build/services/$name/qai-$name" 2>"$work/$name.log" &
  pids+=($!)
  wait_for_port "${pids[-1]}" "$work/$name.log" "${addr##*:}" >/dev/null
}
start sandbox "$QAI_SANDBOX_ADDR" QAI_PREVIEW_ADDR="127.0.0.1:$(free_port)" \
  QAI_SANDBOX_ROOT="$work/sandboxes"
start projects "$QAI_PROJECTS_ADDR"
start messages "$QAI_MESSAGES_ADDR"
start orchestrator "$QAI_ORCHESTRATOR_ADDR"

export QAI_TOKEN=$("$qai" token --sub bench-user --ttl 1h)
"$qai" projects create --display-name "Big site" --prompt "Build a bakery site" --watch >/dev/null ||
  fail "the first run failed"
project=$("$qai" --json projects list --page-size 1 | json_field "$(cat)" id)
v1_url=$("$qai" --json versions list --project "$project" | json_field "$(cat)" sandboxUrl)
snapshot=$(cat /proc/sys/kernel/random/uuid)
repeats=$((file_kib * 1024 / 32))
# Version 2: FILES files of md5 text (32 bytes repeated to FILE_KIB KiB), stored as qai-sandbox
# stores a snapshot (blobs by SHA-256, the project's use of them, a manifest of path NUL hash).
psql_qai -v project="$project" -v snapshot="$snapshot" -v url="${v1_url%/*/}/$snapshot/" <<SQL
CREATE TEMP TABLE f AS
  SELECT format('src/part%s.js', lpad(i::text, 4, '0')) AS path,
         convert_to(repeat(md5(i::text), $repeats), 'UTF8') AS content
  FROM generate_series(1, $files) i;
INSERT INTO sandbox.blobs (hash, size, content)
  SELECT sha256(content), length(content), content FROM f ON CONFLICT DO NOTHING;
INSERT INTO sandbox.project_blobs (project_id, hash)
  SELECT CAST(:'project' AS uuid), sha256(content) FROM f ON CONFLICT DO NOTHING;
INSERT INTO sandbox.snapshots (id, project_id, files, manifest)
  SELECT CAST(:'snapshot' AS uuid), CAST(:'project' AS uuid), '{}',
         string_agg(convert_to(path, 'UTF8') || '\x00'::bytea || sha256(content), ''::bytea
                    ORDER BY path COLLATE "C")
  FROM f;
INSERT INTO orchestrator.versions (project_id, number, run_id, snapshot_id, sandbox_url, title, author)
  VALUES (CAST(:'project' AS uuid), 2, gen_random_uuid(), CAST(:'snapshot' AS uuid), :'url',
          'The big one', 'bench-user');
SQL
bytes=$(psql_qai -c "SELECT sum(size) FROM sandbox.blobs b JOIN sandbox.project_blobs u USING (hash)
                     WHERE u.project_id = '$project' AND b.hash IN
                       (SELECT sha256(convert_to(repeat(md5(i::text), $repeats), 'UTF8'))
                        FROM generate_series(1, $files) i)")
echo "version 2: $files files, $((bytes / 1000000)) MB; $rounds restores of it, one after the other"

client_ms=()
server_ms=()
for round in $(seq "$rounds"); do
  start_ns=$(date +%s%N)
  out=$("$qai" --json versions restore --project "$project" 2 --watch 2>&1) ||
    { echo "$out" >&2; fail "restore $round failed"; }
  end_ns=$(date +%s%N)
  run=$(json_field "$(head -n 1 <<<"$out")" id)
  times=$(psql_qai -c "SELECT round(extract(epoch FROM end_time - create_time) * 1000, 1), state,
                              (SELECT number FROM orchestrator.versions v WHERE v.run_id = r.id)
                       FROM orchestrator.runs r WHERE id = '$run'")
  IFS='|' read -r run_ms state version <<<"$times"
  [[ $state == 3 ]] || fail "restore $round ended in state $state"
  client_ms+=("$(calc "($end_ns - $start_ns) / 1000000")")
  server_ms+=("$run_ms")
  printf 'restore %d: version %s, %6.1f ms as the client saw it, %6.1f ms from queued to succeeded\n' \
    "$round" "$version" "${client_ms[-1]}" "$run_ms"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "%.1f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
client=$(median "${client_ms[@]}")
server=$(median "${server_ms[@]}")
verdict=$(awk -v c="$client" 'BEGIN { print (c < 1000) ? "MET" : "MISSED" }')
echo "median: $client ms as the client saw it (target: under 1000 ms: $verdict), $server ms queued to succeeded"
