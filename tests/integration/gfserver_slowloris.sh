#!/usr/bin/env bash
# gfserver_slowloris.sh - 300 clients dripping their request header one byte a second hold no
# worker: against gfserver_main and webproxy (origin mode on a real HTTP server, cache mode on
# a real simplecached) a normal client's downloads all succeed meanwhile, close to its own
# baseline, and every dripping client is served byte-exact. Then the per-client limit (-C) and
# the capacity (-W, which evicts the oldest waiting connection) of gfserver_main.
# gfserver_slowloris.sh BACKEND (posix, sysv, unix, fd; label ipc_<backend>): part 3 only, both
# daemons on --ipc BACKEND (the defence is the server core's, so one short run per backend).
# SPDX-License-Identifier: MIT
BE=${1:-}
[ -z "$BE" ] || export GETFILE_TEST_IPC=$BE
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"
RAW="$SRC_DIR/tests/integration/gfserver_raw.py"
NDRIP=300

add_file /small $((64 << 10))
REF="$CONTENT/files/small"
mkdir -p "$WORK/origin"
cp "$REF" "$WORK/origin/small"
printf '/small %s\n' "$REF" >"$WORK/content.txt"

# timed PORT N: N sequential downloads of /small; prints "SECONDS FAILED".
timed() {
    python3 "$RAW" timed "$1" /small "$REF" "$2" | awk '/^timed /{print $2, $3}'
}

# slowloris NAME PORT: the dripping clients against one server while the normal client
# measures itself.
slowloris() {
    local name=$1 port=$2 t0 f0 t1 f1 drip line
    read -r t0 f0 < <(timed "$port" 20)
    check "$name: baseline downloads succeed" test "$f0" -eq 0
    rm -f "$WORK/ready"
    spawn drip python3 "$RAW" drip "$port" /small "$REF" "$NDRIP" 1 "$WORK/ready"
    wait_for 60 test -e "$WORK/ready" || fail "$name: dripping clients did not start"
    read -r t1 f1 < <(timed "$port" 20)
    log "$name: 20 downloads in ${t1}s beside $NDRIP dripping clients (baseline ${t0}s)"
    check "$name: normal downloads succeed beside $NDRIP dripping clients" test "$f1" -eq 0
    check "$name: the dripping clients were still sending meanwhile" proc_alive "$drip"
    check "$name: normal client not slowed down much (${t1}s vs ${t0}s, ratio < 20)" \
        awk -v a="$t1" -v b="$t0" 'BEGIN { exit !(a < 20 * b + 0.5) }'
    wait "$drip" || true
    line=$(grep -E '^drip [0-9]+ [0-9]+ [0-9]+$' "$(logfile_of "$drip")" || echo "drip $NDRIP 0 $NDRIP")
    log "$name: $line"
    check "$name: every client sending one header byte a second is served ($line)" \
        test "$line" = "drip $NDRIP $NDRIP 0"
}

# 3 alone: webproxy in cache mode on simplecached, both on --ipc BACKEND (spawn adds it).
if [ -n "$BE" ]; then
    start_cache CACHE -t 4
    port=$(free_port)
    spawn PROXY "$BIN_DIR/webproxy" -p "$port" -t 4 -n 4 -z 8192 -C 1000
    wait_port "$port" 30
    check "the cache runs on --ipc $BE" grep -q -- "(--ipc $BE)" "$(logfile_of "$CACHE")"
    slowloris "webproxy cache --ipc $BE" "$port"
    stop_ok "$PROXY" TERM webproxy
    stop_ok "$CACHE" TERM simplecached
    assert_no_ipc_left
    finish
    exit
fi

# 1. gfserver_main, 4 workers.
port=$(free_port)
spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 4 -m "$WORK/content.txt" -C 1000
wait_port "$port"
slowloris gfserver_main "$port"
stop_ok "$SRV" TERM gfserver_main

# 2. webproxy in origin mode against python's http.server.
OPORT=$(free_port)
spawn ORIGIN python3 -m http.server --bind 127.0.0.1 "$OPORT" --directory "$WORK/origin"
wait_port "$OPORT"
port=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$port" -t 4 -C 1000 -s "http://127.0.0.1:$OPORT/"
wait_port "$port"
slowloris "webproxy origin" "$port"
stop_ok "$PROXY" TERM webproxy
stop "$ORIGIN" TERM 10 || true

# 3. webproxy in cache mode on simplecached.
start_cache CACHE -t 4
port=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$port" -t 4 -n 4 -z 8192 -C 1000
wait_port "$port" 30
slowloris "webproxy cache" "$port"
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached

# 4. Limits: 20 incomplete headers from one address with -C 8: the first 8 stay, the rest are
# closed at once. With -W 16 (and no per-client limit in the way) the 4 oldest are evicted.
port=$(free_port)
spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 2 -m "$WORK/content.txt" -C 8
wait_port "$port"
line=$(python3 "$RAW" hold "$port" 20 1)
check "-C 8: 8 held, 12 closed, the first ones kept ($line)" test "$line" = "hold 8 12 0"
read -r t1 f1 < <(timed "$port" 5)
check "-C 8: a normal client is still served" test "$f1" -eq 0
stop_ok "$SRV" TERM gfserver_main
port=$(free_port)
spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 2 -m "$WORK/content.txt" -W 16 -C 100
wait_port "$port"
line=$(python3 "$RAW" hold "$port" 20 1)
check "-W 16: the 4 oldest evicted, 16 held ($line)" test "$line" = "hold 16 4 4"
stop_ok "$SRV" TERM gfserver_main
assert_no_ipc_left
finish
