#!/usr/bin/env bash
# run.sh - the side-by-side benchmark: webproxy (cache and origin mode), gfserver_main, nginx and
# libcurl on the same files in one run; writes bench/results/<timestamp>.{md,png,tsv}.
#
# Usage: bench/run.sh [--quick] [--reps N] [--duration S] [--update-doc] [options]  (see --help)
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$SRC_DIR/bench
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
    cat <<EOF
usage: bench/run.sh [options]
Builds the release programs (target "bench"), starts nginx, gfserver_main, simplecached and two
webproxy instances on loopback, and measures every system on 1 KiB, 1 MiB and 10 MiB files at
1, 8 and 32 concurrent clients, repetitions interleaved. Then the peak RSS of webproxy serving
a 1 GiB file, and the micro-benchmarks (shm_bench, sendpath_bench, mq_bench). Prints the tables and writes
bench/results/<timestamp>.md, .png (chart) and .tsv (every sample).

  --quick            one repetition of 2 s, 1 and 8 clients only (about 2 minutes)
  --reps N           repetitions of each cell (default 3)
  --duration S       seconds per sample (default 3)
  --clients LIST     concurrency levels, comma separated (default 1,8,32)
  --sizes LIST       file sizes measured, a subset of 1KiB,1MiB,10MiB (default all three)
  --systems LIST     subset of: nginx,nginx_copy,nginx_wrk,nginx_ka,gfserver,cache,origin,curl,
                     curl_close (default: all of these); cache_nostats (cache mode with
                     --no-stats on both daemons, a second pair: the cost of the live
                     figures, against cache); cache_fd, cache_unix, cache_sysv (the cache
                     pair on another IPC backend, --ipc X on both daemons, instance
                     ipcX; plain cache is posix); cache_reader (the cache pair while gfmon
                     --json reads its stats every 0.1 s); and the HTTP caches: http, http_ka
                     (webproxy --http, cache mode), http_fd, http_fd_ka (the same with
                     --ipc fd on both daemons, a second pair: bodies sent from the cache's
                     descriptors), varnish, varnish_ka (Varnish, malloc
                     storage), nginx_pc, nginx_pc_ka (nginx proxy_cache), each in front of
                     the same nginx origin; _ka: wrk keep-alive, else gfload one request per
                     connection; fill (webproxy + simplecached --origin --store-dir: hits
                     of entries it filled from that origin); the miss path, every request a
                     path never asked before (a fixed number of requests per sample,
                     --miss-requests): fill_miss, varnish_miss, nginx_pc_miss;
                     nginx_proxy (nginx proxy_pass, no cache: webproxy origin's peer)
  --miss-requests N  requests per miss sample at 1 KiB (default 2000; 1 MiB: N/8, 10 MiB:
                     N/64, at least 8)
  --threads N        worker threads of webproxy, gfserver_main and simplecached (default 32)
  --segments N       webproxy -n (default 32)
  --segsize BYTES    webproxy -z (default 1048576)
  --nginx-workers N  nginx worker_processes (default 1; see bench/README.md)
  --no-micro         skip shm_bench, sendpath_bench and mq_bench
  --no-rss           skip the 1 GiB peak-RSS measurement
  --no-build         use the programs already built in the build directory
  --build-dir DIR    build there (cmake -DCMAKE_BUILD_TYPE=Release) instead of the
                     "release" preset's build/release
  --out DIR          results directory (default bench/results)
  --update-doc       also replace the generated section of docs/performance.md
  -h, --help         this help
EOF
}

QUICK=0 REPS=3 DURATION=3 CLIENTS=1,8,32 SYSTEMS=nginx,nginx_copy,nginx_wrk,nginx_ka,gfserver,cache,origin,curl,curl_close
THREADS=32 SEGMENTS=32 SEGSIZE=1048576 NGX_WORKERS=1 MICRO=1 RSS=1 BUILD=1 BUILD_DIR=
SIZES=1KiB,1MiB,10MiB
OUT_DIR=$BENCH_DIR/results UPDATE_DOC=0 MISS_REQ=2000 ARGS_ORIG=("$@")
export GF_BENCH_CMD=${GF_BENCH_CMD:-bench/run.sh${*:+ $*}}
reps_set=0 dur_set=0 cli_set=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; reps_set=1; shift ;;
    --duration) DURATION=$2; dur_set=1; shift ;;
    --clients) CLIENTS=$2; cli_set=1; shift ;;
    --systems) SYSTEMS=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --segments) SEGMENTS=$2; shift ;;
    --segsize) SEGSIZE=$2; shift ;;
    --nginx-workers) NGX_WORKERS=$2; shift ;;
    --miss-requests) MISS_REQ=$2; shift ;;
    --no-micro) MICRO=0 ;;
    --no-rss) RSS=0 ;;
    --no-build) BUILD=0 ;;
    --build-dir) BUILD_DIR=$2; shift ;;
    --out) OUT_DIR=$2; shift ;;
    --update-doc) UPDATE_DOC=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    [ "$reps_set" = 1 ] || REPS=1
    [ "$dur_set" = 1 ] || DURATION=2
    [ "$cli_set" = 1 ] || CLIENTS=1,8
fi
for v in REPS DURATION THREADS SEGMENTS SEGSIZE NGX_WORKERS MISS_REQ; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "run.sh: $v must be a positive integer, not '${!v}'" >&2
        exit 2
    fi
done
IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"
IFS=, read -r -a SYSTEM_LIST <<<"$SYSTEMS"
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
SIZE_KEYS=()
for z in "${SIZE_LIST[@]}"; do
    case "$z" in
    1KiB) SIZE_KEYS+=(1k) ;;
    1MiB) SIZE_KEYS+=(1m) ;;
    10MiB) SIZE_KEYS+=(10m) ;;
    *) echo "run.sh: unknown size '$z' (1KiB, 1MiB or 10MiB)" >&2; exit 2 ;;
    esac
done
for s in "${SYSTEM_LIST[@]}"; do
    case "$s" in
    nginx | nginx_copy | nginx_wrk | nginx_ka | gfserver | cache | cache_nostats | origin | curl | curl_close) ;;
    cache_fd | cache_unix | cache_sysv) ;;
    http | http_ka | http_fd | http_fd_ka | varnish | varnish_ka | nginx_pc | nginx_pc_ka) ;;
    cache_reader | fill | fill_miss | varnish_miss | nginx_pc_miss | nginx_proxy) ;;
    *) echo "run.sh: unknown system '$s'" >&2; exit 2 ;;
    esac
done
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
has_system() {
    local s
    for s in "${SYSTEM_LIST[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

# --- 1. packages and build (before entering the private namespace) --------------------------
if [ -z "${GF_BENCH_ISOLATED:-}" ]; then
    "$SRC_DIR/scripts/deps.sh" bench
    if [ -z "$BUILD_DIR" ]; then
        BUILD_DIR=$SRC_DIR/build/release
        if [ "$BUILD" = 1 ]; then
            say "building: cmake --preset release; cmake --build --preset release --target bench"
            (cd "$SRC_DIR" && cmake --preset release >/dev/null &&
                cmake --build --preset release --target bench -j2 >/dev/null)
        fi
    else
        BUILD_DIR=$(mkdir -p "$BUILD_DIR" && cd "$BUILD_DIR" && pwd)
        if [ "$BUILD" = 1 ]; then
            say "building the bench target in $BUILD_DIR"
            cmake -S "$SRC_DIR" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
            cmake --build "$BUILD_DIR" --target bench -j2 >/dev/null
        fi
    fi
    export GF_BENCH_BUILD_DIR=$BUILD_DIR GF_BENCH_STAMP=${GF_BENCH_STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}
    # A private IPC namespace with a fresh /dev/shm and /dev/mqueue: no collision with anyone's
    # simplecached or tests, and nothing of ours can outlive the run.
    gf_isolate GF_BENCH_ISOLATED 4g "$0" "${ARGS_ORIG[@]}" --no-build ||
        echo "run.sh: not root: running without a private IPC namespace" >&2
fi
BUILD_DIR=${GF_BENCH_BUILD_DIR:-${BUILD_DIR:-$SRC_DIR/build/release}}
BIN=$BUILD_DIR/bin
STAMP=${GF_BENCH_STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}

# --- 2. bookkeeping: every process we start is stopped by PID on exit -------------------------
WORK=$(mktemp -d /tmp/gfbench.XXXXXX)
chmod 755 "$WORK" # nginx's workers run as another user
# The HTTP caches' and the filling cache's storage: tmpfs (the private namespace's /dev/shm),
# else the temp dir.
if [ -n "${GF_BENCH_ISOLATED:-}" ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
    CACHE_DIR=$(mktemp -d /dev/shm/gfbench-caches.XXXXXX)
else
    CACHE_DIR=$WORK/caches
fi
mkdir -p "$CACHE_DIR"
chmod 755 "$CACHE_DIR"
our_ipc() {
    local f
    for f in /dev/shm/getfile-"$(id -u)"-* /dev/mqueue/getfile-"$(id -u)"-*; do
        [ -e "$f" ] && basename "$f"
    done
    return 0
}

cleanup() {
    local rc=$?
    stop_all TERM
    # Objects left after a clean stop are a bug of the system under test: reported, then removed.
    local left
    left=$(our_ipc)
    if [ -n "$left" ]; then
        say "IPC objects left behind after SIGTERM: $(echo "$left" | tr '\n' ' ')"
        for o in $left; do rm -f "/dev/shm/$o" "/dev/mqueue/$o"; done
    fi
    if [ "$rc" -ne 0 ]; then
        for f in "$WORK"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f") (last 15 lines)" >&2
            tail -n 15 "$f" >&2
        done
    fi
    if [ -n "${GF_BENCH_KEEP:-}" ]; then
        say "kept $WORK and $CACHE_DIR (GF_BENCH_KEEP)"
    else
        rm -rf "$WORK" "$CACHE_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background in $WORK/files, output to $WORK/NAME.log;
# the PID lands in the variable NAME_pid.
start() {
    local name=$1
    shift
    start_bg "${name}_pid" "$WORK/$name.log" -C "$WORK/files" "$@"
}

# wait_port PORT PID: until something accepts on PORT (10 s), while PID lives.
wait_port() { port_up "$1" 10 "$2"; }

for p in gfload curlget; do
    [ -x "$BIN/$p" ] || { say "missing $BIN/$p (build the \"bench\" target)"; exit 1; }
done

# --- 3. files: 1 KiB x 8, 1 MiB x 4, 10 MiB x 2, 1 GiB (sparse: no disk I/O) ----------------
say "creating files in $WORK/files"
mkdir -p "$WORK/files/f" "$WORK/ngx"
: >"$WORK/files/index.txt"
make_set index.txt w1k 8 1024 k
make_set index.txt w1m 4 1048576 m
make_set index.txt w10m 2 10485760 t
truncate -s 1G "$WORK/files/f/big"
cat "$WORK/files/f/big" >/dev/null # into the page cache now, so both modes find it there
echo "/f/big f/big" >>"$WORK/files/index.txt"
echo /f/big >"$WORK/wbig"
cp "$WORK/files/index.txt" "$WORK/files/content.txt"
cp "$WORK/files/index.txt" "$WORK/files/locals.txt"
declare -A WL=([1k]=w1k [1m]=w1m [10m]=w10m)

# --- 4. servers --------------------------------------------------------------------------------
declare -A PORT=() UP=()
NGX_PORT=$(free_port)
# nginx_conf DIR PORT SENDFILE: writes DIR/nginx.conf from nginx.conf.in.
nginx_conf() {
    mkdir -p "$1"
    sed -e "s|@WORKERS@|$NGX_WORKERS|; s|@TMP@|$1|g; s|@PORT@|$2|; s|@ROOT@|$WORK/files|" \
        -e "s|@SENDFILE@|$3|" "$BENCH_DIR/nginx.conf.in" >"$1/nginx.conf"
}
nginx_conf "$WORK/ngx" "$NGX_PORT" on
start nginx nginx -c "$WORK/ngx/nginx.conf" -p "$WORK/ngx" -e "$WORK/ngx/nginx-error.log"
# shellcheck disable=SC2154 # set by start
wait_port "$NGX_PORT" "$nginx_pid" || { say "nginx did not start"; exit 1; }
PORT[nginx]=$NGX_PORT
# The same nginx made to copy (sendfile off, 512 KiB buffers): what one copy of every byte
# costs a server on this machine, next to our cache mode's two (see docs/performance.md).
if has_system nginx_copy; then
    port=$(free_port)
    nginx_conf "$WORK/ngxcopy" "$port" off
    start nginx_copy nginx -c "$WORK/ngxcopy/nginx.conf" -p "$WORK/ngxcopy" \
        -e "$WORK/ngxcopy/nginx-error.log"
    # shellcheck disable=SC2154 # set by start
    if wait_port "$port" "$nginx_copy_pid"; then PORT[nginx_copy]=$port; else say "nginx_copy did not start; skipped"; fi
fi

start_gf() { # start_gf SYSTEM NAME CMD...: a GETFILE server on a fresh port (appended -p)
    local sys=$1 name=$2 port pidvar
    shift 2
    port=$(free_port)
    if [ ! -x "$1" ]; then
        say "$sys: $1 is not built; skipped"
        return 0
    fi
    start "$name" "$@" -p "$port"
    pidvar=${name}_pid
    if wait_port "$port" "${!pidvar}"; then
        PORT[$sys]=$port
    else
        say "$sys: $(basename "$1") did not start (see below); skipped"
        tail -n 5 "$WORK/$name.log" >&2 || true
    fi
}
has_system gfserver && start_gf gfserver gfserver "$BIN/gfserver_main" -t "$THREADS" -m content.txt
if has_system cache || has_system cache_reader || has_system http || has_system http_ka ||
    [ "$RSS" = 1 ]; then
    if [ -x "$BIN/simplecached" ]; then
        start simplecached "$BIN/simplecached" -c locals.txt -t "$THREADS"
    fi
fi
if has_system cache || has_system cache_reader; then
    start_gf cache wpcache "$BIN/webproxy" -t "$THREADS" -n "$SEGMENTS" -z "$SEGSIZE"
    # The same pair, measured while a reader polls its stats (measure starts the reader).
    [ -n "${PORT[cache]:-}" ] && PORT[cache_reader]=${PORT[cache]}
fi
# The same pair without live figures, in a runtime directory of its own (ipc.md: a second
# cache of the user would otherwise be refused).
if has_system cache_nostats && [ -x "$BIN/simplecached" ]; then
    mkdir -m 0700 "$WORK/rt-nostats"
    start simplecached_ns /usr/bin/env GETFILE_RUNTIME_DIR="$WORK/rt-nostats" "$BIN/simplecached" \
        -c locals.txt -t "$THREADS" --no-stats
    start_gf cache_nostats wpnostats /usr/bin/env GETFILE_RUNTIME_DIR="$WORK/rt-nostats" \
        "$BIN/webproxy" -t "$THREADS" -n "$SEGMENTS" -z "$SEGSIZE" --no-stats
fi
# The same pair on the other IPC backends (docs/ipc.md "Backends"), each its own instance (its
# own lock, names and socket), so all of them run beside the posix pair.
for b in fd unix sysv; do
    if has_system "cache_$b" && [ -x "$BIN/simplecached" ]; then
        start "simplecached_ipc$b" "$BIN/simplecached" --instance "ipc$b" --ipc "$b" -c locals.txt -t "$THREADS"
        start_gf "cache_$b" "wpipc$b" "$BIN/webproxy" --instance "ipc$b" --ipc "$b" -t "$THREADS" \
            -n "$SEGMENTS" -z "$SEGSIZE"
    fi
done
# The HTTP pair on --ipc fd, in a runtime directory of its own (as cache_nostats).
if (has_system http_fd || has_system http_fd_ka) && [ -x "$BIN/simplecached" ]; then
    mkdir -m 0700 "$WORK/rt-fd"
    start simplecached_fd /usr/bin/env GETFILE_RUNTIME_DIR="$WORK/rt-fd" "$BIN/simplecached" \
        -c locals.txt -t "$THREADS" --ipc fd
    port=$(free_port)
    start_gf http_fd wphttpfd /usr/bin/env GETFILE_RUNTIME_DIR="$WORK/rt-fd" "$BIN/webproxy" \
        -t "$THREADS" -n "$SEGMENTS" -z "$SEGSIZE" --ipc fd --http "127.0.0.1:$port"
    # shellcheck disable=SC2154 # set by start
    if [ -n "${PORT[http_fd]:-}" ] && wait_port "$port" "$wphttpfd_pid"; then
        PORT[http_fd]=$port PORT[http_fd_ka]=$port
    else
        unset 'PORT[http_fd]'
    fi
fi
# A cache that fills itself from the nginx origin (instance "fill": its own queue, segments and
# lock), empty index: every file is fetched once, then served from its store. The store and
# nginx proxy_cache's directory are both on tmpfs (memory caches, as Varnish's malloc storage),
# all three bounded at 1 GiB.
if (has_system fill || has_system fill_miss) && [ -x "$BIN/simplecached" ]; then
    : >"$WORK/files/empty.txt"
    mkdir -p "$CACHE_DIR/store"
    start simplecached_fill "$BIN/simplecached" --instance fill -c empty.txt -t "$THREADS" \
        --origin "http://127.0.0.1:$NGX_PORT" --store-dir "$CACHE_DIR/store" --store-max 1073741824
    start_gf fill wpfill "$BIN/webproxy" --instance fill -t "$THREADS" -n "$SEGMENTS" -z "$SEGSIZE"
    [ -n "${PORT[fill]:-}" ] && PORT[fill_miss]=${PORT[fill]}
fi
has_system origin && start_gf origin wporigin "$BIN/webproxy" -t "$THREADS" -s "http://127.0.0.1:$NGX_PORT"

# The HTTP caches, each warmed from the same nginx origin (its files are simplecached's too).
if has_system http || has_system http_ka; then
    port=$(free_port)
    start_gf http wphttp "$BIN/webproxy" -t "$THREADS" -n "$SEGMENTS" -z "$SEGSIZE" --http "127.0.0.1:$port"
    # shellcheck disable=SC2154 # set by start
    if [ -n "${PORT[http]:-}" ] && wait_port "$port" "$wphttp_pid"; then
        PORT[http]=$port PORT[http_ka]=$port
    else
        unset 'PORT[http]'
    fi
fi
if (has_system varnish || has_system varnish_ka || has_system varnish_miss) && command -v varnishd >/dev/null; then
    port=$(free_port)
    mkdir -p "$WORK/varnish"
    start varnish varnishd -F -n "$WORK/varnish" -a "127.0.0.1:$port" -b "127.0.0.1:$NGX_PORT" \
        -s malloc,1g -p default_ttl=3600
    # shellcheck disable=SC2154 # set by start
    if wait_port "$port" "$varnish_pid"; then PORT[varnish]=$port PORT[varnish_ka]=$port PORT[varnish_miss]=$port; else say "varnish did not start; skipped"; fi
fi
if has_system nginx_pc || has_system nginx_pc_ka || has_system nginx_pc_miss; then
    port=$(free_port)
    mkdir -p "$WORK/ngxpc"
    mkdir -p "$CACHE_DIR/ngxpc"
    sed -e "s|@WORKERS@|$NGX_WORKERS|; s|@TMP@|$WORK/ngxpc|g; s|@PORT@|$port|; s|@ORIGIN@|$NGX_PORT|" \
        -e "s|@CACHE@|$CACHE_DIR/ngxpc|" "$BENCH_DIR/nginx_cache.conf.in" >"$WORK/ngxpc/nginx.conf"
    start nginx_pc nginx -c "$WORK/ngxpc/nginx.conf" -p "$WORK/ngxpc" -e "$WORK/ngxpc/nginx-error.log"
    # shellcheck disable=SC2154 # set by start
    if wait_port "$port" "$nginx_pc_pid"; then PORT[nginx_pc]=$port PORT[nginx_pc_ka]=$port PORT[nginx_pc_miss]=$port; else say "nginx_pc did not start; skipped"; fi
fi
# nginx as a plain reverse proxy (proxy_pass, keep-alive upstream, no cache): what webproxy's
# origin mode is compared with, both in front of the same origin.
if has_system nginx_proxy; then
    port=$(free_port)
    mkdir -p "$WORK/ngxproxy"
    sed -e "s|@WORKERS@|$NGX_WORKERS|; s|@TMP@|$WORK/ngxproxy|g; s|@PORT@|$port|; s|@ORIGIN@|$NGX_PORT|" \
        -e "s|@CACHE@|$WORK/ngxproxy/cache|" \
        -e '/proxy_cache files;/d; /proxy_cache_lock/d; /proxy_cache_valid/d' \
        "$BENCH_DIR/nginx_cache.conf.in" >"$WORK/ngxproxy/nginx.conf"
    start nginx_proxy nginx -c "$WORK/ngxproxy/nginx.conf" -p "$WORK/ngxproxy" -e "$WORK/ngxproxy/nginx-error.log"
    # shellcheck disable=SC2154 # set by start
    if wait_port "$port" "$nginx_proxy_pid"; then PORT[nginx_proxy]=$port; else say "nginx_proxy did not start; skipped"; fi
fi

# miss_workload WORKLOAD N TOKEN: N paths nobody asked for before (/u/TOKEN-i/<path>, which
# the origin nginx maps back to <path>), into $WORK/miss; prints that file's name.
miss_workload() {
    awk -v t="$3" -v n="$2" 'NR == FNR { p[m++] = $0; next }
        END { for (i = 0; i < n; i++) print "/u/" t "-" i p[i % m] }' "$WORK/$1" /dev/null \
        >"$WORK/miss"
    echo "$WORK/miss"
}

# measure SYSTEM WORKLOAD CONC SECONDS: prints the client's key=value line (empty on failure).
# SAMPLE (the sample's number) makes the miss paths unique to the sample.
measure() {
    local sys=$1 wl=$2 c=$3 d=$4 t=$(($3 < 2 ? $3 : 2)) paths n
    local lim=$((d + 60))
    case "$wl" in w1k) n=$MISS_REQ ;; w1m) n=$((MISS_REQ / 8)) ;; *) n=$((MISS_REQ / 64)) ;; esac
    [ "$n" -ge 8 ] || n=8
    case "$sys" in
    cache_reader)
        # A reader attached all along: gfmon --json every 0.1 s (ten times gfmon's refresh).
        (while :; do "$BIN/gfmon" --json; sleep 0.1; done) >/dev/null 2>&1 &
        local reader=$!
        timeout "$lim" "$BIN/gfload" -T -p "${PORT[$sys]}" -c "$c" -d "$d" -w "$WORK/$wl"
        kill "$reader" 2>/dev/null
        wait "$reader" 2>/dev/null ;;
    fill_miss)
        timeout "$lim" "$BIN/gfload" -T -p "${PORT[$sys]}" -c "$c" -r "$n" \
            -w "$(miss_workload "$wl" "$n" "s$SAMPLE")" ;;
    varnish_miss | nginx_pc_miss)
        timeout "$lim" "$BIN/gfload" -P http -T -p "${PORT[$sys]}" -c "$c" -r "$n" \
            -w "$(miss_workload "$wl" "$n" "s$SAMPLE")" ;;
    nginx | nginx_copy | http | http_fd | varnish | nginx_pc | nginx_proxy)
        timeout "$lim" "$BIN/gfload" -P http -T -p "${PORT[$sys]}" -c "$c" -d "$d" -w "$WORK/$wl" ;;
    http_ka | http_fd_ka | varnish_ka | nginx_pc_ka)
        paths=$(tr '\n' ' ' <"$WORK/$wl")
        WRK_PATHS=$paths timeout "$lim" wrk -t"$t" -c"$c" -d"${d}s" --timeout 10s \
            -s "$BENCH_DIR/wrk_report.lua" "http://127.0.0.1:${PORT[$sys]}/" | grep '^wrk ' ;;
    gfserver | cache | cache_nostats | cache_fd | cache_unix | cache_sysv | origin | fill)
        timeout "$lim" "$BIN/gfload" -T -p "${PORT[$sys]}" -c "$c" -d "$d" -w "$WORK/$wl" ;;
    curl | curl_close)
        local k=()
        [ "$sys" = curl_close ] && k=(-K) # a new connection per request
        timeout "$lim" "$BIN/curlget" "${k[@]}" -u "http://127.0.0.1:${PORT[nginx]}" -c "$c" -d "$d" \
            -w "$WORK/$wl" ;;
    nginx_wrk | nginx_ka)
        paths=$(tr '\n' ' ' <"$WORK/$wl")
        local hdr=()
        [ "$sys" = nginx_wrk ] && hdr=(-H "Connection: close")
        WRK_PATHS=$paths timeout "$lim" wrk -t"$t" -c"$c" -d"${d}s" --timeout 10s "${hdr[@]}" \
            -s "$BENCH_DIR/wrk_report.lua" "http://127.0.0.1:${PORT[nginx]}/" | grep '^wrk ' ;;
    esac 2>>"$WORK/clients.log" | tail -n 1 || true
}

# A system is measured only if it serves every workload correctly first (this also warms the
# page cache and the proxies' connections).
for sys in "${SYSTEM_LIST[@]}"; do
    case "$sys" in nginx_wrk | nginx_ka | curl | curl_close) port=${PORT[nginx]} ;; *) port=${PORT[$sys]:-} ;; esac
    [ -n "$port" ] || continue
    ok=1
    for wl in w1k w1m w10m; do
        case "$sys" in
        nginx | nginx_copy | nginx_wrk | nginx_ka | curl | curl_close | http | http_ka | http_fd | http_fd_ka | varnish | varnish_ka | nginx_pc | nginx_pc_ka | \
            varnish_miss | nginx_pc_miss | nginx_proxy)
            line=$(timeout 60 "$BIN/curlget" -u "http://127.0.0.1:$port" -c 2 -r 8 -w "$WORK/$wl" 2>>"$WORK/clients.log" || true) ;;
        *) line=$(timeout 60 "$BIN/gfload" -p "$port" -c 2 -r 8 -w "$WORK/$wl" 2>>"$WORK/clients.log" || true) ;;
        esac
        if ! [[ "$line" == *" failures=0 "* && "$line" == *" requests=8 "* ]]; then
            say "$sys: warm-up on $wl failed: ${line:-no output}; skipped"
            ok=0
            break
        fi
    done
    [ "$ok" = 1 ] && UP[$sys]=1
done
ACTIVE=()
for sys in "${SYSTEM_LIST[@]}"; do [ -n "${UP[$sys]:-}" ] && ACTIVE+=("$sys"); done
[ ${#ACTIVE[@]} -gt 0 ] || { say "no system is up"; exit 1; }
say "systems: ${ACTIVE[*]}; clients: ${CLIENT_LIST[*]}; $REPS x ${DURATION}s"

# --- 5. the grid: repetitions outermost, so every system sees the same machine weather --------
mkdir -p "$OUT_DIR"
RAW=$OUT_DIR/$STAMP.tsv
META=$WORK/meta.txt
{
    echo "stamp=$STAMP"
    echo "command=$GF_BENCH_CMD"
    echo "commit=$(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$SRC_DIR" diff --quiet HEAD 2>/dev/null || echo -dirty)"
    echo "build=$(grep -m1 '^CMAKE_BUILD_TYPE' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null | cut -d= -f2)"
    echo "kernel=$(uname -r)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"
    echo "config=threads $THREADS, webproxy -n $SEGMENTS -z $SEGSIZE, nginx workers $NGX_WORKERS"
    echo "reps=$REPS"
    echo "duration=$DURATION"
    echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$META"
printf 'rep\tworkload\tclients\tsystem\tline\n' >"$RAW"
total=$((REPS * ${#SIZE_KEYS[@]} * ${#CLIENT_LIST[@]} * ${#ACTIVE[@]}))
n=0
# Odd repetitions run the systems in order, even ones in reverse (A B C, C B A, ...): a drift
# of the machine during a cell's systems favours none of them over the repetitions.
REVERSED=()
for ((i = ${#ACTIVE[@]} - 1; i >= 0; i--)); do REVERSED+=("${ACTIVE[$i]}"); done
for ((rep = 1; rep <= REPS; rep++)); do
    if ((rep % 2)); then ORDER=("${ACTIVE[@]}"); else ORDER=("${REVERSED[@]}"); fi
    for wl in "${SIZE_KEYS[@]}"; do
        for c in "${CLIENT_LIST[@]}"; do
            for sys in "${ORDER[@]}"; do
                n=$((n + 1))
                SAMPLE=$n
                line=$(measure "$sys" "${WL[$wl]}" "$c" "$DURATION")
                printf '%s\t%s\t%s\t%s\t%s\n' "$rep" "$wl" "$c" "$sys" "${line:-none}" >>"$RAW"
                say "$n/$total rep $rep $wl c=$c $sys: $(sed -E 's/.*(rps=[^ ]+).*(gbps=[^ ]+).*(p99_us=[^ ]+).*/\1 \2 \3/' <<<"${line:-none}")"
            done
        done
    done
done
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$META"
echo "miss_requests=$MISS_REQ" >>"$META"

# Peak RSS of the instances that served the grid (32 clients x 10 MiB at the end).
for sys in cache origin; do
    pidvar=wp${sys}_pid
    if [ -n "${UP[$sys]:-}" ]; then
        echo "grid_hwm_$sys=$(awk '/VmHWM/ {print $2}' "/proc/${!pidvar}/status")" >>"$META"
    fi
done

# --- 6. peak RSS while serving 1 GiB, on fresh instances --------------------------------------
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
if [ "$RSS" = 1 ] && [ -x "$BIN/webproxy" ]; then
    for mode in cache origin; do
        if [ "$mode" = cache ]; then
            [ -n "${simplecached_pid:-}" ] || continue
            start_gf rss_$mode rss$mode "$BIN/webproxy" -t 4 -n 4 -z "$SEGSIZE"
        else
            start_gf rss_$mode rss$mode "$BIN/webproxy" -t 4 -s "http://127.0.0.1:$NGX_PORT"
        fi
        port=${PORT[rss_$mode]:-}
        [ -n "$port" ] || continue
        pidvar=rss${mode}_pid
        pid=${!pidvar}
        "$BIN/gfload" -p "$port" -c 1 -r 4 -w "$WORK/w1k" >/dev/null 2>>"$WORK/clients.log" || true
        h0=$(hwm "$pid")
        "$BIN/gfload" -p "$port" -c 1 -r 2 -w "$WORK/w10m" >/dev/null 2>>"$WORK/clients.log" || true
        h1=$(hwm "$pid")
        big=$(timeout 300 "$BIN/gfload" -T -p "$port" -c 1 -r 1 -i 30000 -w "$WORK/wbig" 2>>"$WORK/clients.log" || true)
        h2=$(hwm "$pid")
        echo "rss mode=$mode hwm_1k_kb=$h0 hwm_10m_kb=$h1 hwm_1g_kb=$h2 $(sed -E 's/^gfload //' <<<"${big:-failures=1}")" >>"$WORK/rss.txt"
        say "peak RSS $mode: after 1 KiB $h0 kB, after 10 MiB $h1 kB, after 1 GiB $h2 kB"
        stop_pid "$pid" || true
    done
fi

# --- 7. micro-benchmarks ------------------------------------------------------------------------
if [ "$MICRO" = 1 ]; then
    : >"$WORK/micro.txt"
    for prog in shm_bench mq_bench sendpath_bench; do
        [ -x "$BIN/$prog" ] || { say "$prog is not built; skipped"; continue; }
    done
    if [ -x "$BIN/shm_bench" ]; then
        say "shm_bench"
        timeout 120 "$BIN/shm_bench" -d 1 >>"$WORK/micro.txt" 2>>"$WORK/micro.log" || say "shm_bench failed"
    fi
    if [ -x "$BIN/sendpath_bench" ]; then
        say "sendpath_bench"
        timeout 120 "$BIN/sendpath_bench" -t 2000000000 >>"$WORK/micro.txt" 2>>"$WORK/micro.log" ||
            say "sendpath_bench failed"
    fi
    if [ -x "$BIN/mq_bench" ]; then
        # The cache's single-instance lock: the grid's simplecached must be gone first.
        [ -z "${simplecached_pid:-}" ] || stop_pid "$simplecached_pid" || true
        say "mq_bench"
        timeout 120 "$BIN/mq_bench" -n 20000 >>"$WORK/micro.txt" 2>>"$WORK/micro.log" || say "mq_bench failed"
        timeout 120 "$BIN/mq_bench" -n 20000 -1 >>"$WORK/micro.txt" 2>>"$WORK/micro.log" || say "mq_bench -1 failed"
        timeout 120 "$BIN/mq_bench" -n 5000 -2 >>"$WORK/micro.txt" 2>>"$WORK/micro.log" || say "mq_bench -2 failed"
    fi
fi

# --- 8. report ---------------------------------------------------------------------------------
# Everything but the samples goes to <stamp>.meta, so that `bench/report.py --from
# bench/results/<stamp>` can redo the tables (and --update-doc) without a new run.
cat "$META" >"$OUT_DIR/$STAMP.meta"
[ -f "$WORK/rss.txt" ] && cat "$WORK/rss.txt" >>"$OUT_DIR/$STAMP.meta"
[ -f "$WORK/micro.txt" ] && cat "$WORK/micro.txt" >>"$OUT_DIR/$STAMP.meta"
report_args=(--from "$OUT_DIR/$STAMP")
[ "$UPDATE_DOC" = 1 ] && report_args+=(--update-doc "$SRC_DIR/docs/performance.md")
python3 "$BENCH_DIR/report.py" "${report_args[@]}"
say "wrote $OUT_DIR/$STAMP.md, .png, .tsv and .meta"
