#!/usr/bin/env bash
# scale_out.sh - N getfile nodes (simplecached + webproxy each) on loopback behind HAProxy
# (GETFILE, hashing the request path) and optionally nginx (HTTP, hashing the URI). Every
# process is started in the background, its PID kept in the state directory, and stopped by that
# PID (checked against the program it must be) with SIGTERM, SIGKILL after 20 s.
# See docs/scale-out.md.
# SPDX-License-Identifier: MIT
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scale_out.sh [options] start N INDEX [-- WEBPROXY_OPTION...]
       scale_out.sh [options] stop | stop-node I | start-node I | status
Starts N nodes on 127.0.0.1, each a simplecached serving INDEX (run in INDEX's directory)
and a webproxy in front of it, instance nodeI (--instance), plus the balancers:
  HAProxy (GETFILE) on BASE          node I's GETFILE port: BASE + 2*I
  nginx   (HTTP)    on BASE + 1      node I's HTTP port:    BASE + 2*I + 1 (with --nginx)
Options (before the command):
  -d, --dir DIR        state directory: PIDs, configurations, logs, access logs
                       (default ./scale-out)
  -b, --base PORT      first port (default 20000)
  -i, --inter MS       HAProxy health-check interval (default 1000); a node is taken out
                       after 2 failed checks and back in after 2 good ones
      --nginx          also start nginx balancing the nodes' HTTP front ends
      --origin URL     each cache fills on miss from URL into its own store,
                       DIR/nodeI/store (simplecached --origin --store-dir): the
                       index may then be empty
  -B, --bin DIR        where simplecached and webproxy are (default: from PATH)
Each node's access log is DIR/nodeI/access.log; HAProxy's log (path and node of every
connection) is DIR/haproxy.log.
EOF
}

DIR=./scale-out
BASE=20000
INTER=1000
NGINX=0
ORIGIN=
BIN=
HERE=$(cd "$(dirname "$0")" && pwd)

while [ $# -gt 0 ]; do
    case $1 in
    -d | --dir) DIR=$2; shift 2 ;;
    -b | --base) BASE=$2; shift 2 ;;
    -i | --inter) INTER=$2; shift 2 ;;
    --nginx) NGINX=1; shift ;;
    --origin) ORIGIN=$2; shift 2 ;;
    -B | --bin) BIN=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
CMD=$1
shift

say() { printf 'scale_out: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# wait_until TIMEOUT_S COMMAND...: polls every 50 ms.
wait_until() {
    local t=$1 i
    shift
    for ((i = 0; i < t * 20; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# is_prog PID NAME: PID runs the program NAME (guards against a PID reused by another one).
is_prog() {
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    [ "$(basename "${exe% (deleted)}")" = "$2" ]
}

# stop_pidfile FILE NAME: SIGTERM to the PID in FILE if it still runs NAME, SIGKILL after 20 s.
stop_pidfile() {
    local f=$1 name=$2 pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if is_prog "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_until 20 eval "! is_prog $pid $name"; then
            say "$name $pid did not stop within 20 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_until 5 eval "! is_prog $pid $name" || true
        fi
    fi
    rm -f "$f"
}

load_conf() {
    [ -f "$DIR/conf" ] || die "no deployment in $DIR (start one first)"
    # shellcheck disable=SC1091
    source "$DIR/conf"
}

gf_port() { echo $((BASE + 2 * $1)); }
http_port() { echo $((BASE + 2 * $1 + 1)); }

start_node() {
    local i=$1 d="$DIR/node$1" pid fill=()
    mkdir -p "$d"
    [ -n "$ORIGIN" ] && fill=(--origin "$ORIGIN" --store-dir "$d/store")
    # Each pair is its own instance: its own registry and one-cache lock (docs/ipc.md).
    (cd "$(dirname "$INDEX")" && exec "$BIN/simplecached" --instance "node$i" \
        -c "$(basename "$INDEX")" -t 2 -g 2000 "${fill[@]}") \
        >>"$d/cache.log" 2>&1 &
    pid=$!
    echo "$pid" >"$d/cache.pid"
    wait_until 30 grep -q "registry in" "$d/cache.log" ||
        die "node $i: simplecached did not start (see $d/cache.log)"
    local http=()
    [ "$NGINX" = 1 ] && http=(--http "127.0.0.1:$(http_port "$i")")
    "$BIN/webproxy" --instance "node$i" -p "$(gf_port "$i")" "${http[@]}" -t 4 -n 4 \
        -z 65536 -G 2000 --access-log "$d/access.log" "${PROXY_ARGS[@]}" \
        >>"$d/proxy.log" 2>&1 &
    pid=$!
    echo "$pid" >"$d/proxy.pid"
    wait_until 30 port_open "$(gf_port "$i")" ||
        die "node $i: webproxy does not listen on $(gf_port "$i") (see $d/proxy.log)"
    say "node $i: GETFILE 127.0.0.1:$(gf_port "$i")${http:+, HTTP ${http[1]}}"
}

# stop_node I: the proxy first (in-flight transfers get its grace), then its cache.
stop_node() {
    stop_pidfile "$DIR/node$1/proxy.pid" webproxy
    stop_pidfile "$DIR/node$1/cache.pid" simplecached
}

start_haproxy() {
    local servers="" i
    for ((i = 1; i <= N; i++)); do
        servers+="    server node$i 127.0.0.1:$(gf_port "$i") id $i check"$'\n'
    done
    python3 - "$HERE/haproxy.cfg.in" "$DIR/haproxy.cfg" "$DIR/haproxy.sock" \
        "127.0.0.1:$BASE" "${INTER}ms" "$servers" <<'PY'
import sys
src, dst, sock, bind, inter, servers = sys.argv[1:]
text = open(src).read()
for k, v in {"STATS_SOCKET": sock, "BIND": bind, "INTER": inter, "LOG": "stdout",
             "SERVERS": servers.rstrip("\n")}.items():
    text = text.replace("@" + k + "@", v)
open(dst, "w").write(text)
PY
    haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy refuses $DIR/haproxy.cfg"
    haproxy -db -f "$DIR/haproxy.cfg" >>"$DIR/haproxy.log" 2>&1 &
    echo $! >"$DIR/haproxy.pid"
    wait_until 30 port_open "$BASE" || die "haproxy does not listen on $BASE (see $DIR/haproxy.log)"
    say "haproxy: GETFILE 127.0.0.1:$BASE, stats socket $DIR/haproxy.sock"
}

start_nginx() {
    local servers="" i
    for ((i = 1; i <= N; i++)); do
        servers+="        server 127.0.0.1:$(http_port "$i") max_fails=1 fail_timeout=$(((INTER + 999) / 1000))s;"$'\n'
    done
    mkdir -p "$DIR/nginx"
    python3 - "$HERE/nginx.conf.in" "$DIR/nginx.conf" "$DIR/nginx" "127.0.0.1:$((BASE + 1))" \
        "$servers" <<'PY'
import sys
src, dst, prefix, bind, servers = sys.argv[1:]
text = open(src).read()
for k, v in {"PREFIX": prefix, "BIND": bind, "SERVERS": servers.rstrip("\n")}.items():
    text = text.replace("@" + k + "@", v)
open(dst, "w").write(text)
PY
    nginx -q -t -p "$DIR/nginx" -c "$DIR/nginx.conf" || die "nginx refuses $DIR/nginx.conf"
    nginx -p "$DIR/nginx" -c "$DIR/nginx.conf" >>"$DIR/nginx/stderr.log" 2>&1 &
    echo $! >"$DIR/nginx.pid"
    wait_until 30 port_open "$((BASE + 1))" || die "nginx does not listen on $((BASE + 1))"
    say "nginx: HTTP 127.0.0.1:$((BASE + 1))"
}

case $CMD in
start)
    [ $# -ge 2 ] || { usage >&2; exit 2; }
    N=$1
    INDEX=$(realpath -- "$2")
    shift 2
    [ "${1:-}" = -- ] && shift
    PROXY_ARGS=("$@")
    [[ "$N" =~ ^[1-9][0-9]?$ ]] || die "N must be 1..99"
    [ -f "$INDEX" ] || die "no index $INDEX"
    if [ -z "$BIN" ]; then
        BIN=$(dirname "$(command -v webproxy)") || die "webproxy not in PATH: use --bin"
    fi
    BIN=$(realpath -- "$BIN")
    [ ! -f "$DIR/conf" ] || die "$DIR already holds a deployment (stop it first)"
    mkdir -p "$DIR"
    DIR=$(realpath -- "$DIR")
    {
        declare -p N INDEX BIN BASE INTER NGINX ORIGIN PROXY_ARGS | sed "s/^declare /declare -g /"
        echo "DIR=$(printf '%q' "$DIR")"
    } >"$DIR/conf"
    # Whatever fails half-way, nothing is left running.
    trap '[ $? -eq 0 ] || "$0" -d "$DIR" stop' EXIT
    for ((i = 1; i <= N; i++)); do start_node "$i"; done
    start_haproxy
    [ "$NGINX" = 1 ] && start_nginx
    trap - EXIT
    ;;
stop)
    load_conf
    stop_pidfile "$DIR/nginx.pid" nginx
    stop_pidfile "$DIR/haproxy.pid" haproxy
    for ((i = 1; i <= N; i++)); do stop_node "$i"; done
    rm -f "$DIR/conf"
    say "stopped"
    ;;
stop-node)
    load_conf
    stop_node "$1"
    say "node $1 stopped"
    ;;
start-node)
    load_conf
    start_node "$1"
    ;;
status)
    load_conf
    for ((i = 1; i <= N; i++)); do
        for p in cache proxy; do
            f=$DIR/node$i/$p.pid
            st=stopped
            [ -f "$f" ] && st="running (pid $(cat "$f"))"
            echo "node$i $p $st"
        done
    done
    [ -S "$DIR/haproxy.sock" ] && python3 - "$DIR/haproxy.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"show servers state nodes\n")
out = b""
while chunk := s.recv(65536):
    out += chunk
print(out.decode(), end="")
PY
    ;;
*)
    usage >&2
    exit 2
    ;;
esac
