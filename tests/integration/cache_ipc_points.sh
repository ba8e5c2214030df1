#!/usr/bin/env bash
# cache_ipc_points.sh BACKEND - the socket backends (--ipc unix or fd) when a peer dies or stalls
# at an exact point (GF_FAULT on simplecached_fi / webproxy_fi, tests/rel/fault.h):
#   1. the cache dies with the request's connection in its backlog (accept4:N:kill: a second
#      proxy's first connection, the first proxy keeps its own) or just before its answer
#      (sendmsg:1:kill): the client gets ERROR at once, never a hang;
#   2. unix: the cache dies mid-body (sendfile:3:kill): the client sees a short transfer;
#   3. fd: the proxy dies mid-send (sendfile:3:kill): the cache is untouched and serves the next
#      proxy at once;
#   4. the cache stalls (SIGSTOP) just before its answer, for 2 s: the transfer completes
#      byte-exact;
# after each, a fresh start serves again, and nothing is left at the end.
# SPDX-License-Identifier: MIT
BE=${1:?usage: cache_ipc_points.sh unix|fd}
export GETFILE_TEST_IPC=$BE
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"
TEST_NAME="cache_ipc_points_$BE"

add_file /small.bin 1024
add_file /big.bin $((8 * 1024 * 1024 + 3))
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# fi_cache VAR FAULT: simplecached_fi on this backend with GF_FAULT=FAULT; waits for its socket.
fi_cache() {
    local __p
    pushd "$CONTENT" >/dev/null || die "no $CONTENT"
    spawn __p env GF_FAULT="$2" "$BIN_DIR/simplecached_fi" --ipc "$BE" -c locals.txt -t 2
    popd >/dev/null || die popd
    wait_for 30 cache_socket_exists "$BE" || die "simplecached_fi has no $BE socket"
    printf -v "$1" '%s' "$__p"
}

# timed_get PORT PATH: one request; sets LINE and MS.
timed_get() {
    local t0
    t0=$(now_ms)
    LINE=$(gfget "$1" "$2" --out "$WORK/got" --timeout 30)
    MS=$(($(now_ms) - t0))
}

# dead PID: the process has ended (reaped here).
dead() {
    wait_for 10 eval "! proc_alive $1" && { wait "$1" 2>/dev/null || true; }
}

PORT=$(free_port)
start_proxy PROXY "$PORT" 4 2 65536

for fault in accept4:2:kill sendmsg:1:kill; do
    log "the cache dies at $fault"
    fi_cache CACHE "$fault"
    qport=$PORT
    if [ "${fault%%:*}" = accept4 ]; then
        expect_get "$PORT" /small.bin OK # the first accept is fine
        # The first proxy keeps its connection: a second proxy's is the cache's second accept.
        qport=$(free_port)
        start_proxy QPROXY "$qport" 2 2 65536
    fi
    timed_get "$qport" /small.bin
    check "$fault: ERROR (got: $LINE)" test "$(status_of "$LINE")" = ERROR
    check "$fault: within 3 s (took $MS ms)" test "$MS" -lt 3000
    check "$fault: the cache died there" dead "$CACHE"
    check "$fault: the fault was injected" grep -q "gf_fault: ${fault%%:*} call" "$(logfile_of "$CACHE")"
    start_cache CACHE -t 2
    check "$fault: service resumes" wait_for 15 get_ok "$PORT" /small.bin
    [ "$qport" != "$PORT" ] && stop_ok "$QPROXY" TERM webproxy
    stop_ok "$CACHE" TERM simplecached
done

if [ "$BE" = unix ]; then
    log "the cache dies mid-body (its third sendfile)"
    fi_cache CACHE sendfile:3:kill
    timed_get "$PORT" /big.bin
    check "a short transfer, not success (got: $LINE)" test "$(status_of "$LINE")" = SHORT
    check "within 3 s (took $MS ms)" test "$MS" -lt 3000
    check "the cache died there" dead "$CACHE"
else
    log "the proxy dies mid-send (its third sendfile)"
    fi_cache CACHE ""
    P2=$(free_port)
    spawn PROXY2 env GF_FAULT=sendfile:3:kill "$BIN_DIR/webproxy_fi" --ipc fd -p "$P2" -t 2
    wait_port "$P2" 30
    timed_get "$P2" /big.bin
    check "the client of the dead proxy sees a short transfer (got: $LINE)" \
        test "$(status_of "$LINE")" = SHORT
    check "the proxy died there" dead "$PROXY2"
    timed_get "$PORT" /big.bin
    check "the cache serves the other proxy at once (got: $LINE, $MS ms)" \
        test "$(status_of "$LINE")" = OK -a "$MS" -lt 5000
    check "... byte-exact" cmp -s "$WORK/got" "$CONTENT/files/big.bin"
    stop_ok "$CACHE" TERM simplecached_fi
fi

log "the cache stalls for 2 s just before its answer"
fi_cache CACHE sendmsg:1:stop
spawn CLIENT python3 "$WORK/gfget.py" "$PORT" /big.bin --out "$WORK/stalled" --timeout 30
stopped() { local st; proc_state "$CACHE" st; [ "$st" = T ]; }
check "the cache is stopped at its answer" wait_for 15 stopped
sleep 2
kill -CONT "$CACHE"
check "the client ends" wait_for 30 eval "! proc_alive $CLIENT"
wait "$CLIENT" 2>/dev/null || true
line=$(tail -n 1 "$(logfile_of "$CLIENT")")
check "the stalled transfer completes (got: $line)" test "$(status_of "$line")" = OK
check "... byte-exact" cmp -s "$WORK/stalled" "$CONTENT/files/big.bin"
stop_ok "$CACHE" TERM simplecached_fi

stop_ok "$PROXY" TERM webproxy
assert_no_ipc_left
finish
