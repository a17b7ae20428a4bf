# Private PostgreSQL servers and builds for QAI's scripts (sourced, not run).
#
#   source tools/lib/pg.sh
#   qai_build build                # configure + build with Ninja (and ccache when present)
#   qai_build_sanitize             # the same for the ASan + UBSan tree, build-sanitize
#   qai_pg_start                   # sets QAI_PG_DIR, QAI_PG_PORT, QAI_PG_URL; stopped by qai_pg_stop
#
# qai_pg_start is the one way QAI's scripts start PostgreSQL (the demo, the benchmarks, the web
# tests); the C++ tests' PgServer (tests/support/pg_server.cc) makes its cluster the same way.
#
# Debian keeps initdb and pg_ctl in the server version's bin folder, not on PATH, and they
# refuse to run as root: as root they run as the postgres user.

# qai_pg_bin: $QAI_PG_BIN when set, else the newest /usr/lib/postgresql/*/bin.
qai_pg_bin() {
  if [ -n "${QAI_PG_BIN:-}" ]; then
    echo "$QAI_PG_BIN"
    return 0
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] || { echo "PostgreSQL server binaries not found (run tools/setup.sh)" >&2; return 1; }
  echo "$bin"
}

qai_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

qai_free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# qai_pg_start [--stock]: a private server in a new directory under $TMPDIR, listening on a free
# port of 127.0.0.1 and on a unix socket in its directory, trusting every local connection as
# user postgres; sets and exports QAI_PG_DIR, QAI_PG_PORT and QAI_PG_URL. The cluster is UTF8 with
# locale C, made without fsync (only initdb's own writes; the server keeps PostgreSQL's
# durability). max_connections is 200, or PostgreSQL's own with --stock (the benchmarks measure
# a stock server). $QAI_PG_OPTIONS adds server options (e.g. "-c shared_buffers=1GB"). On
# failure the initdb log or the server log's tail goes to stderr.
qai_pg_start() {
  local bin settings="-c max_connections=200"
  [ "${1:-}" = --stock ] && settings=""
  bin=$(qai_pg_bin) || return 1
  QAI_PG_BIN_DIR=$bin  # qai_pg_stop stops it with the same pg_ctl
  QAI_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/qai-pg.XXXXXX")
  QAI_PG_PORT=$(qai_free_port)
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$QAI_PG_DIR"
  qai_as_pg "$bin/initdb" -D "$QAI_PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$QAI_PG_DIR/initdb.log" 2>&1 \
    || { cat "$QAI_PG_DIR/initdb.log" >&2; return 1; }
  qai_as_pg "$bin/pg_ctl" -D "$QAI_PG_DIR/data" -l "$QAI_PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $QAI_PG_PORT -k $QAI_PG_DIR $settings ${QAI_PG_OPTIONS:-}" start >/dev/null \
    || { tail -n 20 "$QAI_PG_DIR/server.log" >&2; return 1; }
  QAI_PG_URL="postgresql://postgres@127.0.0.1:$QAI_PG_PORT/postgres"
  export QAI_PG_DIR QAI_PG_PORT QAI_PG_URL
}

# qai_pg_stop [--keep]: stops the server qai_pg_start started (fast, else immediate) and removes
# its directory, or with --keep leaves it (its logs) in place. Does nothing when none was started.
qai_pg_stop() {
  [ -n "${QAI_PG_DIR:-}" ] || return 0
  if [ -d "$QAI_PG_DIR/data" ]; then
    local pg_ctl
    pg_ctl="${QAI_PG_BIN_DIR:-$(qai_pg_bin)}/pg_ctl"
    qai_as_pg "$pg_ctl" -D "$QAI_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 ||
      qai_as_pg "$pg_ctl" -D "$QAI_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ "${1:-}" = --keep ] || rm -rf "$QAI_PG_DIR"
  QAI_PG_DIR=
}

qai_build() {
  local dir=${1:-build}
  shift || true
  # Paths relative to the checkout in ccache's keys, so another clone reuses the cache.
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
  # Line tables only (-g1): backtraces keep their files and lines, and the build takes a quarter
  # less time than with full debug information.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" "$@" >/dev/null
  ninja -C "$dir"
}

# qai_build_sanitize [DIR]: the ASan + UBSan tree (clang), with the fuzz targets
# (cmake/sanitize.cmake), in DIR (default build-sanitize).
qai_build_sanitize() {
  qai_build "${1:-build-sanitize}" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DQAI_SANITIZE=ON
}

# qai_wait_listening FILE: the port a service logged in its "listening" line.
qai_wait_listening() {
  local file=$1 i
  for i in $(seq 1 200); do
    if grep -q '"msg":"listening"' "$file" 2>/dev/null; then
      grep -m1 '"msg":"listening"' "$file" | sed -E 's/.*"port":([0-9]+).*/\1/'
      return 0
    fi
    sleep 0.05
  done
  echo "service did not start; its log:" >&2
  cat "$file" >&2
  return 1
}
