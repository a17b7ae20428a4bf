#!/usr/bin/env bash
# preview_bench.sh: the preview server next to nginx serving the same files, on one machine.
#
#   tools/bench/preview_bench.sh            # builds qai-previewbench in BUILD_DIR first
#
# It writes a sample site (tools/bench/preview_site.py: index.html of ~60 KB of page markup,
# site.css ~12 KB, app.js ~20 KB) and serves it twice, both servers at once, each on a port
# of its own:
#
# - QAI: qai-previewbench, the real PreviewServer (its default 8 threads, 256 MiB cache) with
#   a loader over the directory instead of PostgreSQL (the server asks it once).
# - nginx (Debian's), `worker_processes auto` (one worker per core), keep-alive (1000
#   requests, 15 s: the same as QAI), sendfile, open_file_cache, access log off, the same
#   response headers, and compression served like QAI serves it: precompressed files (gzip -9
#   with gzip_static, brotli -q 11 with the brotli_static module) so both send the same bytes
#   and neither compresses per request (gzip on, level 6, covers anything else).
#
# wrk (-t2, WRK_SECONDS each) then fetches the three files in turn (tools/bench/preview_wrk.lua)
# at each of CONNECTIONS, without Accept-Encoding and with "gzip, deflate, br", ROUNDS times,
# QAI and nginx interleaved so drift on a shared machine hits both alike. Each run records
# wrk's requests/s and p99 latency, and the server's CPU time (utime+stime from /proc, summed
# over nginx's master and workers) per request. The table has the median of the rounds.
# Targets: QAI's rate >= 0.5 x nginx's; its CPU per request <= 3 x nginx's.
#
# nginx, wrk, brotli (the command) and nginx's brotli module are installed with apt-get when
# missing (as root). Everything it starts is stopped when it exits, also on error or Ctrl-C.
# Settings (environment): BUILD_DIR (default build), SKIP_BUILD=1, CONNECTIONS ("8 64"),
# ROUNDS (3), WRK_SECONDS (10), WRK_THREADS (2), QAI_THREADS (8), KEEP_WORK=1 keeps the
# temporary directory (configs, logs, each wrk output).
set -euo pipefail
bench_name=preview_bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_dir=$root/tools/bench
build=${BUILD_DIR:-build}
[[ $build == /* ]] || build=$root/$build
connections=${CONNECTIONS:-8 64}
rounds=${ROUNDS:-3}
wrk_seconds=${WRK_SECONDS:-10}
wrk_threads=${WRK_THREADS:-2}
qai_threads=${QAI_THREADS:-8}
keep_work=${KEEP_WORK:-0}
snapshot_id=00000000-0000-4000-8000-000000000000
brotli_module=/usr/lib/nginx/modules/ngx_http_brotli_static_module.so

# --- tools -------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v brotli >/dev/null || missing+=(brotli)
[[ -f $brotli_module ]] || missing+=(libnginx-mod-http-brotli-static)
if ((${#missing[@]})); then
  [[ $EUID -eq 0 ]] || fail "missing ${missing[*]}; install them (apt-get) or run as root"
  echo "$bench_name: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  [[ -d $build ]] || fail "no build directory $build (cmake -S . -B $build -G Ninja first)"
  ninja -C "$build" qai-previewbench >&2
fi
previewbench=$build/tools/previewbench/qai-previewbench
[[ -x $previewbench ]] || fail "$previewbench not built"

work=$(mktemp -d /tmp/preview_bench.XXXXXX)
# nginx's workers run as another user (www-data) when started as root: they must read the site.
chmod 755 "$work"
qai_pid=""
nginx_pid=""
cleanup() {
  [[ -n $qai_pid ]] && stop_process "$qai_pid" qai-previewbench
  [[ -n $nginx_pid ]] && stop_process "$nginx_pid" nginx
  if [[ $keep_work == 1 ]]; then echo "$bench_name: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the site ----------------------------------------------------------------------------
site=$work/www/$snapshot_id
python3 "$bench_dir/preview_site.py" "$site"
for f in "$site"/*; do
  gzip -9 -k -n "$f"
  brotli -q 11 -w 22 -k "$f"  # the window QAI uses (BROTLI_DEFAULT_WINDOW), for the same bytes
done

# --- QAI ---------------------------------------------------------------------------------
qai_port=$(free_port)
# Only the original files: the precompressed ones are nginx's.
mkdir -p "$work/qai"
cp "$site"/index.html "$site"/site.css "$site"/app.js "$work/qai/"
"$previewbench" --dir "$work/qai" --listen "127.0.0.1:$qai_port" --snapshot-id "$snapshot_id" \
  --threads "$qai_threads" >"$work/qai.out" 2>"$work/qai.log" &
qai_pid=$!
wait_for_port "$qai_pid" "$work/qai.log" "$qai_port" >/dev/null

# --- nginx -------------------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
load_module $brotli_module;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  client_body_temp_path $work/nginx/client_body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 15s;
  keepalive_requests 1000;
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 60s;
  gzip on;
  gzip_comp_level 6;
  gzip_min_length 1024;
  gzip_types text/css application/javascript application/json image/svg+xml text/plain;
  gzip_vary on;
  gzip_static on;
  brotli_static on;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
    add_header X-Content-Type-Options nosniff always;
    add_header Content-Security-Policy "sandbox allow-scripts allow-forms" always;
    add_header Cache-Control "public, max-age=31536000, immutable";
  }
}
EOF
nginx -c "$work/nginx/nginx.conf" -t >/dev/null 2>"$work/nginx/test.log" || { cat "$work/nginx/test.log" >&2; fail "nginx.conf"; }
nginx -c "$work/nginx/nginx.conf" 2>>"$work/nginx/error.log" &
nginx_pid=$!
wait_for_port "$nginx_pid" "$work/nginx/error.log" "$nginx_port" >/dev/null

# nginx_pids: the master and its workers.
nginx_pids() { echo "$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"; }
# cpu_ticks PID...: their utime + stime (fields 14 and 15 of /proc/PID/stat), in clock ticks.
cpu_ticks() {
  local total=0 pid fields
  for pid in "$@"; do
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields=$(sed 's/.*) //' "/proc/$pid/stat")
    total=$((total + $(awk '{ print $12 + $13 }' <<<"$fields")))
  done
  echo "$total"
}
clk_tck=$(getconf CLK_TCK)

# --- both serve the same bytes -------------------------------------------------------------
check_same() {
  local file=$1 enc=$2 q n
  q=$(curl -s -o "$work/q.body" -w '%{http_code} %{size_download}' -H "Accept-Encoding: $enc" \
    "http://127.0.0.1:$qai_port/$snapshot_id/$file")
  n=$(curl -s -o "$work/n.body" -w '%{http_code} %{size_download}' -H "Accept-Encoding: $enc" \
    "http://127.0.0.1:$nginx_port/$snapshot_id/$file")
  [[ $q == "200 "* && $n == "200 "* ]] || fail "$file ($enc): QAI $q, nginx $n"
  cmp -s "$work/q.body" "$work/n.body" || fail "$file ($enc): QAI and nginx sent different bytes ($q / $n)"
  echo "$file ${enc:-identity}: $(cut -d' ' -f2 <<<"$q") bytes from both" >&2
}
for f in index.html site.css app.js; do
  check_same "$f" ""
  check_same "$f" "gzip"
  check_same "$f" "gzip, deflate, br"
done

# --- wrk ---------------------------------------------------------------------------------
sed "s/SNAPSHOT/$snapshot_id/g" "$bench_dir/preview_wrk.lua" >"$work/paths.lua"

# run_wrk SERVER PORT CONNS ENC ROUND: one wrk run; appends a line to $work/results.tsv:
# server conns enc round rps p99_ms cpu_us_per_request requests
run_wrk() {
  local server=$1 port=$2 conns=$3 enc=$4 round=$5 pids before after out header=()
  if [[ $server == qai ]]; then pids=$qai_pid; else pids=$(nginx_pids); fi
  [[ $enc == br ]] && header=(-H "Accept-Encoding: gzip, deflate, br")
  out=$work/wrk-$server-$conns-$enc-$round.txt
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  wrk -t"$wrk_threads" -c"$conns" -d"${wrk_seconds}s" --latency "${header[@]}" -s "$work/paths.lua" \
    "http://127.0.0.1:$port" >"$out"
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  if grep -q "Non-2xx" "$out"; then fail "$server answered errors: $(grep Non-2xx "$out")"; fi
  awk -v server="$server" -v conns="$conns" -v enc="$enc" -v round="$round" -v ticks=$((after - before)) \
    -v hz="$clk_tck" '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      return v + 0
    }
    $1 == "99%" { p99 = ms($2) }
    / requests in / { requests = $1 }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "%s\t%s\t%s\t%s\t%.0f\t%.3f\t%.2f\t%d\n", server, conns, enc, round, rps, p99,
          ticks / hz * 1e6 / requests, requests }' "$out" >>"$work/results.tsv"
  tail -n 1 "$work/results.tsv" >&2
}

echo "$bench_name: warming up (each server compresses or opens its files once)" >&2
for enc in identity br; do
  for s in qai nginx; do
    port=$qai_port; [[ $s == nginx ]] && port=$nginx_port
    h=(); [[ $enc == br ]] && h=(-H "Accept-Encoding: gzip, deflate, br")
    wrk -t1 -c4 -d2s "${h[@]}" -s "$work/paths.lua" "http://127.0.0.1:$port" >/dev/null
  done
done

: >"$work/results.tsv"
echo -e "server\tconns\tenc\tround\treq/s\tp99_ms\tcpu_us/req\trequests" >&2
for round in $(seq "$rounds"); do
  for conns in $connections; do
    for enc in identity br; do
      # Alternate which server goes first, so neither always follows the other's load.
      if ((round % 2)); then order="qai nginx"; else order="nginx qai"; fi
      for s in $order; do
        port=$qai_port; [[ $s == nginx ]] && port=$nginx_port
        run_wrk "$s" "$port" "$conns" "$enc" "$round"
      done
    done
  done
done

# --- table -------------------------------------------------------------------------------
echo
echo "preview_bench: $(nproc) cores, $(uname -r); QAI $qai_threads threads; nginx $(nginx -v 2>&1 | cut -d/ -f2)" \
  "worker_processes auto ($(($(wc -w <<<"$(nginx_pids)") - 1)) workers); wrk -t$wrk_threads ${wrk_seconds}s x $rounds rounds;" \
  "median of rounds; files index.html, site.css, app.js in turn"
awk -F'\t' '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    key = $2 "\t" $3
    if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
    rps[$1, key] = rps[$1, key] " " $5
    p99[$1, key] = p99[$1, key] " " $6
    cpu[$1, key] = cpu[$1, key] " " $7
  }
  END {
    printf "%-6s %-9s %10s %10s %7s %9s %9s %10s %10s %7s\n", "conns", "encoding", "QAI req/s", "nginx r/s",
      "ratio", "QAI p99", "nginx p99", "QAI cpu/r", "nginx cpu/r", "ratio"
    for (k = 1; k <= nk; k++) {
      split(keys[k], kk, "\t")
      qr = median(rps["qai", keys[k]]); nr = median(rps["nginx", keys[k]])
      qc = median(cpu["qai", keys[k]]); nc = median(cpu["nginx", keys[k]])
      printf "%-6s %-9s %10.0f %10.0f %7.2f %7.2fms %7.2fms %8.1fus %8.1fus %7.2f\n", kk[1],
        kk[2] == "br" ? "gzip,br" : "identity", qr, nr, qr / nr, median(p99["qai", keys[k]]),
        median(p99["nginx", keys[k]]), qc, nc, qc / nc
    }
  }' "$work/results.tsv"
echo "targets: req/s ratio >= 0.5, cpu/request ratio <= 3"
