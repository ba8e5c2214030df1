#!/usr/bin/env bash
# http_syscalls.sh - where an HTTP cache hit's time goes: throughput and the server's system
# calls per request, for Varnish (malloc), nginx proxy_cache, nginx (sendfile) and webproxy
# --http on --ipc posix and --ipc fd, side by side in one run on the same files.
#
# Usage: bench/http_syscalls.sh [--duration S] [--clients N] [--sizes 1m,10m] (1k 1m 2m 4m 10m)
#                               [--systems nginx,nginx_pc,varnish,http,http_fd] [--no-build]
# http_fd2 (not in the default list): a second --ipc fd pair whose webproxy also gets the
# words of $HTTP_FD2_ARGS, e.g. a changed build or option next to http_fd in the same run.
# Per (size, system): one gfload run (-P http -T, one request per connection) for the rate
# and the CPU seconds per GB of the server, its cache (simplecached) and the client, then one under `perf record -a -e raw_syscalls:sys_enter` whose samples are kept for the
# server's processes only (the pid and its children): calls per request by name. Runs in a
# private mount + IPC namespace like run.sh; everything it starts is stopped by PID on exit.
# shellcheck disable=SC2154 # the NAME_pid variables are set by start (printf -v)
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
DURATION=3 CLIENTS=8 SIZES=1m,10m SYSTEMS=nginx,nginx_pc,varnish,http,http_fd BUILD=1
ARGS_ORIG=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "http_syscalls.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
say() { printf '[syscalls %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
BIN=${GF_BENCH_BUILD_DIR:-$SRC_DIR/build/release}/bin
if [ -z "${GF_BENCH_ISOLATED:-}" ]; then
    if [ "$BUILD" = 1 ]; then
        (cd "$SRC_DIR" && cmake --preset release >/dev/null && cmake --build --preset release --target bench -j2 >/dev/null)
    fi
    [ "$(id -u)" = 0 ] || { echo "http_syscalls.sh: needs root (perf -a, namespaces)" >&2; exit 1; }
    export GF_BENCH_ISOLATED=1
    # shellcheck disable=SC2016 # expanded by the inner shell
    exec unshare -m -i --fork --propagation private bash -c '
        set -e
        mount -t tmpfs -o size=1g,mode=1777 tmpfs /dev/shm
        mkdir -p /dev/mqueue && mount -t mqueue mqueue /dev/mqueue
        mkdir -p /run/getfile && mount -t tmpfs -o size=1m,mode=0700 tmpfs /run/getfile
        exec bash "$0" "$@"' "$0" "${ARGS_ORIG[@]}" --no-build
fi

WORK=$(mktemp -d /tmp/gfsysc.XXXXXX)
chmod 755 "$WORK"
declare -a PIDS=()
cleanup() {
    local rc=$? pid i
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || continue
        for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start() { # start NAME CMD...: the PID lands in NAME_pid
    local name=$1
    shift
    (cd "$WORK/files" && exec "$@") >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    printf -v "${name}_pid" '%s' "$!"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() {
    local i
    for ((i = 0; i < 200; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

mkdir -p "$WORK/files/f"
: >"$WORK/files/index.txt"
declare -A BYTES=([1k]=1024 [1m]=1048576 [2m]=2097152 [4m]=4194304 [10m]=10485760)
declare -A COUNT=([1k]=8 [1m]=4 [2m]=4 [4m]=2 [10m]=2)
for s in 1k 1m 2m 4m 10m; do
    : >"$WORK/w$s"
    for ((i = 0; i < COUNT[$s]; i++)); do
        head -c "${BYTES[$s]}" /dev/urandom >"$WORK/files/f/$s$i"
        echo "/f/$s$i f/$s$i" >>"$WORK/files/index.txt"
        echo "/f/$s$i" >>"$WORK/w$s"
    done
done
cp "$WORK/files/index.txt" "$WORK/files/locals.txt"

declare -A PORT=() SPID=() AUX=()
NGX_PORT=$(free_port)
mkdir -p "$WORK/ngx" "$WORK/ngxpc" "$WORK/ngxpc-cache" "$WORK/varnish" "$WORK/rt-fd"
chmod 700 "$WORK/rt-fd"
sed -e "s|@WORKERS@|1|; s|@TMP@|$WORK/ngx|g; s|@PORT@|$NGX_PORT|; s|@ROOT@|$WORK/files|; s|@SENDFILE@|on|" \
    "$SRC_DIR/bench/nginx.conf.in" >"$WORK/ngx/nginx.conf"
start nginx nginx -c "$WORK/ngx/nginx.conf" -p "$WORK/ngx" -e "$WORK/ngx/nginx-error.log"
wait_port "$NGX_PORT" "$nginx_pid"
PORT[nginx]=$NGX_PORT SPID[nginx]=$nginx_pid
p=$(free_port)
sed -e "s|@WORKERS@|1|; s|@TMP@|$WORK/ngxpc|g; s|@PORT@|$p|; s|@ORIGIN@|$NGX_PORT|; s|@CACHE@|$WORK/ngxpc-cache|" \
    "$SRC_DIR/bench/nginx_cache.conf.in" >"$WORK/ngxpc/nginx.conf"
start nginx_pc nginx -c "$WORK/ngxpc/nginx.conf" -p "$WORK/ngxpc" -e "$WORK/ngxpc/nginx-error.log"
wait_port "$p" "$nginx_pc_pid"
PORT[nginx_pc]=$p SPID[nginx_pc]=$nginx_pc_pid
p=$(free_port)
start varnish varnishd -F -n "$WORK/varnish" -a "127.0.0.1:$p" -b "127.0.0.1:$NGX_PORT" -s malloc,1g -p default_ttl=3600
wait_port "$p" "$varnish_pid"
PORT[varnish]=$p SPID[varnish]=$varnish_pid
start simplecached "$BIN/simplecached" -c locals.txt -t 32
p=$(free_port)
start wphttp "$BIN/webproxy" -t 32 -n 32 -z 1048576 -p "$(free_port)" --http "127.0.0.1:$p"
wait_port "$p" "$wphttp_pid"
PORT[http]=$p SPID[http]=$wphttp_pid AUX[http]=$simplecached_pid
start simplecached_fd /usr/bin/env GETFILE_RUNTIME_DIR="$WORK/rt-fd" "$BIN/simplecached" -c locals.txt -t 32 --ipc fd
p=$(free_port)
start wphttpfd /usr/bin/env GETFILE_RUNTIME_DIR="$WORK/rt-fd" "$BIN/webproxy" -t 32 -n 32 -z 1048576 --ipc fd \
    -p "$(free_port)" --http "127.0.0.1:$p"
wait_port "$p" "$wphttpfd_pid"
PORT[http_fd]=$p SPID[http_fd]=$wphttpfd_pid AUX[http_fd]=$simplecached_fd_pid
if [[ ",$SYSTEMS," == *,http_fd2,* ]]; then
    mkdir -m 700 "$WORK/rt-fd2"
    start simplecached_fd2 /usr/bin/env GETFILE_RUNTIME_DIR="$WORK/rt-fd2" "$BIN/simplecached" -c locals.txt -t 32 --ipc fd
    p=$(free_port)
    # shellcheck disable=SC2086 # HTTP_FD2_ARGS: words, on purpose
    start wphttpfd2 /usr/bin/env GETFILE_RUNTIME_DIR="$WORK/rt-fd2" "$BIN/webproxy" -t 32 -n 32 -z 1048576 --ipc fd \
        -p "$(free_port)" --http "127.0.0.1:$p" ${HTTP_FD2_ARGS:-}
    wait_port "$p" "$wphttpfd2_pid"
    PORT[http_fd2]=$p SPID[http_fd2]=$wphttpfd2_pid AUX[http_fd2]=$simplecached_fd2_pid
fi

# descendants PID: PID and every process under it (nginx's worker, Varnish's child).
descendants() {
    local p=$1 c
    echo "$p"
    # shellcheck disable=SC2013 # one pid per word
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do descendants "$c"; done
}
# cpu_ticks PID: user + system clock ticks of PID and its children processes (0 for none).
cpu_ticks() {
    local p t=0
    [ -n "$1" ] || { echo 0; return; }
    for p in $(descendants "$1"); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
# syscall numbers to names, from the kernel headers.
awk '/^#define __NR_/ { sub("__NR_", "", $2); print $3 "\t" $2 }' \
    /usr/include/x86_64-linux-gnu/asm/unistd_64.h >"$WORK/nr.tsv"

IFS=, read -ra SYS_LIST <<<"$SYSTEMS"
IFS=, read -ra SIZE_LIST <<<"$SIZES"
say "load $(cut -d' ' -f1-3 /proc/loadavg); $CLIENTS clients, ${DURATION}s per run"
for s in "${SIZE_LIST[@]}"; do
    for sys in "${SYS_LIST[@]}"; do
        port=${PORT[$sys]}
        "$BIN/curlget" -u "http://127.0.0.1:$port" -c 2 -r 8 -w "$WORK/w$s" >/dev/null 2>&1 || true
        t0=$(cpu_ticks "${SPID[$sys]}") a0=$(cpu_ticks "${AUX[$sys]:-}")
        line=$(/usr/bin/time -f 'client_cpu %U %S' -o "$WORK/time" "$BIN/gfload" -P http -T -p "$port" -c "$CLIENTS" -d "$DURATION" -w "$WORK/w$s" 2>/dev/null | tail -n 1)
        t1=$(cpu_ticks "${SPID[$sys]}") a1=$(cpu_ticks "${AUX[$sys]:-}")
        gb=$(sed -E 's/.* bytes=([0-9]+).*/\1/' <<<"$line")
        cpu=$(awk -v hz="$(getconf CLK_TCK)" -v gb="$gb" -v s=$((t1 - t0)) -v a=$((a1 - a0)) '
            /client_cpu/ { printf "CPU s per GB: server %.3f, its cache %.3f, client %.3f", s / hz / (gb / 1e9), a / hz / (gb / 1e9), ($2 + $3) / (gb / 1e9) }' "$WORK/time")
        pids=$(descendants "${SPID[$sys]}" | tr '\n' ,)
        pline=$(perf record -q -a -e raw_syscalls:sys_enter -o "$WORK/perf.data" -- \
            "$BIN/gfload" -P http -T -p "$port" -c "$CLIENTS" -d "$DURATION" -w "$WORK/w$s" 2>/dev/null | tail -n 1)
        req=$(sed -E 's/.* requests=([0-9]+).*/\1/' <<<"$pline")
        printf '%s %s: %s\n    %s\n' "$s" "$sys" "$(sed -E 's/.*(rps=[^ ]+).*(gbps=[^ ]+).*(p50_us=[^ ]+).*(p99_us=[^ ]+).*/\1 \2 \3 \4/' <<<"$line")" "$cpu"
        perf script -i "$WORK/perf.data" -F pid,trace 2>/dev/null |
            awk -v pids="$pids" -v req="$req" -v nrf="$WORK/nr.tsv" '
                BEGIN { while ((getline l < nrf) > 0) { split(l, a, "\t"); nm[a[1]] = a[2] }
                        n = split(pids, p, ","); for (i = 1; i <= n; i++) if (p[i] != "") want[p[i]] = 1 }
                { pid = $1; if (!(pid in want)) next
                  for (i = 2; i <= NF; i++) if ($i == "NR") { c[$(i + 1)]++; tot++; break } }
                END { printf "    under perf: %d requests; server syscalls per request %.1f:", req, tot / (req ? req : 1)
                      for (k in c) if (c[k] / req >= 0.2) printf " %s=%.1f", (k in nm ? nm[k] : k), c[k] / req
                      printf "\n" }'
    done
done
say "load $(cut -d' ' -f1-3 /proc/loadavg)"
