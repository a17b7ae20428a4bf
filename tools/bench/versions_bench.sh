#!/usr/bin/env bash
# versions_bench: ListVersions of a project with 1,000 versions, through the real
# qai-orchestrator (which asks the real qai-projects who may see the project, and keeps the
# answer for QAI_PROJECT_OWNER_TTL: OWNER_TTL=0s asks on every call), by CALLERS (8) closed-loop
# callers of qai-loadgen. Target: p99 under 5 ms.
# Each of ROUNDS (3) rounds runs DURATION (5) s after a WARMUP (2) s; the line of each round and
# the median of the rounds' p99 are printed. The versions are written straight into the
# database (what is measured is the listing, not how they were made).
#
#   bash tools/bench/versions_bench.sh      # after a build; about 40 s
#   BUILD_DIR=/path/to/other/build bash tools/bench/versions_bench.sh   # another tree's programs
set -euo pipefail
bench_name=versions_bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-build}
[[ $build == /* ]] || build=$root/$build
callers=${CALLERS:-8}
duration=${DURATION:-5}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-2}
versions=${VERSIONS:-1000}
pg_bin=${QAI_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
keep_work=${KEEP_WORK:-0}
owner_ttl=${OWNER_TTL:-}
while read -r name; do unset "$name"; done < <(compgen -e | grep '^QAI_' || true)

loadgen=$build/tools/loadgen/qai-loadgen
projects=$build/services/projects/qai-projects
orchestrator=$build/services/orchestrator/qai-orchestrator
migrate=$build/db/qai-migrate
qai=$build/tools/qai/qai
for program in "$loadgen" "$projects" "$orchestrator" "$migrate" "$qai" "$pg_bin/psql"; do
  [[ -x $program ]] || { echo "versions_bench: $program is missing (build it first)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/qai-bench.XXXXXX")
chmod 755 "$work"
pids=()
bench_stop_on_exit

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
bench_pg_start
psql_admin -d postgres -c "CREATE DATABASE qai"
database_url="host=127.0.0.1 port=$pg_port user=postgres dbname=qai"
"$migrate" --database-url "$database_url" --log-level warn >"$work/migrate.log" 2>&1 ||
  { cat "$work/migrate.log" >&2; fail "qai-migrate failed"; }

jwt_secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
page_key=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
service_env=(env -i PATH="$PATH" QAI_RATE_LIMIT=0 QAI_DATABASE_URL="$database_url"
             QAI_LISTEN_ADDR=127.0.0.1:0 QAI_JWT_SECRET="$jwt_secret" QAI_PAGE_TOKEN_KEY="$page_key"
             QAI_LOG_LEVEL=warn QAI_MESSAGES_ADDR=127.0.0.1:1 QAI_SANDBOX_ADDR=127.0.0.1:1)
[[ -n $owner_ttl ]] && service_env+=(QAI_PROJECT_OWNER_TTL="$owner_ttl")
"${service_env[@]}" QAI_ORCHESTRATOR_ADDR=127.0.0.1:1 "$projects" 2>"$work/projects.log" &
pids+=($!)
projects_port=$(wait_for_port "${pids[-1]}" "$work/projects.log")
"${service_env[@]}" QAI_PROJECTS_ADDR="127.0.0.1:$projects_port" "$orchestrator" 2>"$work/orchestrator.log" &
pids+=($!)
orchestrator_port=$(wait_for_port "${pids[-1]}" "$work/orchestrator.log" "")

token=$("$qai" token --sub bench-user --jwt-secret "$jwt_secret")
out=$("$qai" projects create --prompt "A project with many versions." --json --wait 0 \
        --projects-addr "127.0.0.1:$projects_port" --token "$token")
project_id=$(sed -n 's/.*"id": *"\([0-9a-f-]\{36\}\)".*/\1/p' <<<"$out" | head -n 1)
[[ -n $project_id ]] || fail "could not create the project"
psql_qai -c "INSERT INTO orchestrator.versions (project_id, number, run_id, snapshot_id, sandbox_url, title, author)
             SELECT '$project_id', n, gen_random_uuid(), gen_random_uuid(),
                    'http://preview.test/' || gen_random_uuid() || '/', 'Version ' || n, 'bench-user'
             FROM generate_series(1, $versions) n"
psql_qai -c "ANALYZE orchestrator.versions"
echo "project:     $project_id with $versions versions; ListVersions' first page (20), $callers callers${owner_ttl:+, QAI_PROJECT_OWNER_TTL=$owner_ttl}"

p99s=() p50s=() rates=()
for r in $(seq 1 "$rounds"); do
  line=$("$loadgen" --target "127.0.0.1:$orchestrator_port" --method list-versions \
           --callers "$callers" --channels 4 --duration "${duration}s" --warmup "${warmup}s" \
           --token "$token" --project-id "$project_id" 2>"$work/loadgen-$r.err") ||
    { cat "$work/loadgen-$r.err" >&2; fail "qai-loadgen failed"; }
  echo "round $r: $line"
  p99s+=("$(json_field "$line" p99_ms)")
  p50s+=("$(json_field "$line" p50_ms)")
  rates+=("$(json_field "$line" rate)")
done
median_of() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
median=$(median_of "${p99s[@]}")
verdict=$(awk -v p="$median" 'BEGIN { print (p < 5) ? "PASS" : "MISS" }')
echo "== medians of $rounds rounds: $(median_of "${rates[@]}") calls/s, p50 $(median_of "${p50s[@]}") ms, p99 $median ms"
echo "== ListVersions p99 at $callers callers: median of $rounds rounds $median ms (target < 5 ms): $verdict"
