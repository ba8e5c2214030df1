#!/usr/bin/env bash
# daemon_signals.sh - no daemon dies of SIGHUP, SIGUSR1, SIGUSR2 or SIGPIPE: simplecached,
# webproxy (cache mode and origin mode) and gfserver_main each get every one, keep serving,
# and still exit 0 on SIGTERM afterwards (a death by one of them would show as 128+N there),
# with no IPC object left. The origin-mode webproxy has an access log, so it catches SIGUSR1
# (reopen) where the cache-mode one, without a log, ignores it.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

FAULT=$SRC_DIR/tests/integration/fault_origin.py
add_file /a.bin 3000
cp "$CONTENT/locals.txt" "$CONTENT/content.txt"

# pending PID SIGNUM: the signal waits for delivery to PID or one of its threads. An ignored
# signal is dropped when sent; a caught or fatal one stays pending until a thread takes it.
pending() {
    local f mask
    for f in "/proc/$1/status" /proc/"$1"/task/*/status; do
        [ -r "$f" ] || continue
        for mask in $(awk '/^(ShdPnd|SigPnd):/ { print $2 }' "$f" 2>/dev/null); do
            (((16#$mask >> ($2 - 1)) & 1)) && return 0
        done
    done
    return 1
}
signum() { kill -l "$1"; }

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
start_cache CACHE -t 2
CPORT=$(free_port)
start_proxy PCACHE "$CPORT" 2 2 8192
OPPORT=$(free_port)
spawn PORIGIN "$BIN_DIR/webproxy" -p "$OPPORT" -t 2 -s "http://127.0.0.1:$OPORT" \
    --access-log "$WORK/access.log"
wait_port "$OPPORT"
GPORT=$(free_port)
pushd "$CONTENT" >/dev/null || die "no $CONTENT"
spawn GFS "$BIN_DIR/gfserver_main" -p "$GPORT" -t 2 -m content.txt
popd >/dev/null || die popd
wait_port "$GPORT"

# serving NAME: one request through the daemon NAME answers OK with the right bytes.
serving() {
    case $1 in
    simplecached | webproxy-cache) get_ok "$CPORT" /a.bin ;;
    webproxy-origin) [ "$(status_of "$(gfget "$OPPORT" /ok/1000 --timeout 20)")" = OK ] ;;
    gfserver_main) get_ok "$GPORT" /a.bin ;;
    esac
}

declare -A PID_OF=([simplecached]=$CACHE [webproxy-cache]=$PCACHE [webproxy-origin]=$PORIGIN
    [gfserver_main]=$GFS)
for name in simplecached webproxy-cache webproxy-origin gfserver_main; do
    pid=${PID_OF[$name]}
    for sig in HUP USR1 USR2 PIPE; do
        kill -"$sig" "$pid"
        n=$(signum "$sig")
        check "$name: SIG$sig was delivered" wait_for 10 eval "! pending $pid $n"
        check "$name: alive after SIG$sig" proc_alive "$pid"
        check "$name: serves after SIG$sig" serving "$name"
    done
done
check "webproxy-origin: its access log has the requests" grep -q " /ok/1000 OK 1000 " \
    "$WORK/access.log"
check "simplecached: SIGHUP re-read the index" grep -q "reloaded: serving 1 of 1 entries" \
    "$(logfile_of "$CACHE")"

stop_ok "$PCACHE" TERM "webproxy (cache mode)"
stop_ok "$PORIGIN" TERM "webproxy (origin mode)"
stop_ok "$GFS" TERM gfserver_main
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 10 || true
assert_no_ipc_left
finish
