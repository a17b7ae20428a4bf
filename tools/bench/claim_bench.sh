#!/usr/bin/env bash
# claim_bench.sh: what a fair claim costs with a deep queue (docs/benchmarks.md).
#
#   BUILD_DIR=build tools/bench/claim_bench.sh [QUEUED] [AUTHORS]     # after: ninja -C build qai-migrate
#
# It starts a private PostgreSQL, migrates it, queues QUEUED runs (1000) in as many projects,
# spread over AUTHORS authors (20), each of whom also has one RUNNING run: the worst case for the
# claim, which then walks the whole queue for an author with nothing running (none) and then
# picks the earliest run of the author with the fewest running. It times both statements of
# RunStore::Claim as PostgreSQL runs them (EXPLAIN ANALYZE, the claim's own settings), 7 times,
# and prints each one's median and the slowest. The lock is taken and rolled back: nothing moves.
set -euo pipefail
cd "$(dirname "$0")/../.."
queued=${1:-1000} authors=${2:-20}
build=${BUILD_DIR:-build}
source tools/lib/pg.sh
qai_pg_start >/dev/null
trap qai_pg_stop EXIT
QAI_DATABASE_URL=$QAI_PG_URL "$build/db/qai-migrate" >/dev/null 2>&1 || { echo "claim_bench: migration failed" >&2; exit 1; }
psql -qX "$QAI_PG_URL" -v queued="$queued" -v authors="$authors" <<'SQL'
INSERT INTO orchestrator.runs (id, project_id, message_id, prompt, state, max_iterations, author)
  SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'p', 1, 5, 'author-' || (g % :authors)
  FROM generate_series(1, :queued) g;
INSERT INTO orchestrator.runs (id, project_id, message_id, prompt, state, max_iterations, author,
                               lease_owner, lease_token, lease_expire_time)
  SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'p', 2, 5, 'author-' || g, 'w', g,
         now() + interval '1h'
  FROM generate_series(0, :authors - 1) g;
SQL
eligible="r.state = 1 AND r.next_attempt_time <= now()
  AND NOT EXISTS (SELECT 1 FROM orchestrator.runs a WHERE a.project_id = r.project_id AND a.state = 2)
  AND NOT EXISTS (SELECT 1 FROM orchestrator.runs e WHERE e.project_id = r.project_id AND e.state = 1
                  AND e.queue_seq < r.queue_seq)"
running="SELECT 1 FROM orchestrator.runs w WHERE w.author = r.author AND w.state = 2"
declare -A picks=(
  ["1 (an author with nothing running)"]="AND NOT EXISTS ($running) ORDER BY r.queue_seq"
  ["2 (the fewest running)"]="ORDER BY (SELECT count(*) FROM ($running) running), r.queue_seq")
echo "claim_bench: $queued queued runs, $authors authors, each running one"
for name in "1 (an author with nothing running)" "2 (the fewest running)"; do
  times=()
  for _ in 1 2 3 4 5 6 7; do
    ms=$(psql -qAtX "$QAI_PG_URL" \
      -c "BEGIN" \
      -c "SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)" \
      -c "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) SELECT r.id FROM orchestrator.runs r WHERE $eligible ${picks[$name]} LIMIT 1 FOR UPDATE SKIP LOCKED" \
      -c "ROLLBACK" | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p')
    times+=("$ms")
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -g)
  echo "claim step $name: median $(sed -n 4p <<<"$sorted") ms, slowest $(tail -1 <<<"$sorted") ms"
done
