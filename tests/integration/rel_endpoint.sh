#!/usr/bin/env bash
# rel_endpoint.sh sysv|unix|fd - the cache's endpoint removed from under it while it runs (an
# `ipcrm -q` of its System V queue; an `rm` of its socket in the runtime directory): the cache
# notices and makes it again (sysv: at once, its receiver sees EIDRM; unix, fd: its acceptor
# checks the name every second), and the same proxy is served again within 5 s.
# SPDX-License-Identifier: MIT
BE=${1:?usage: rel_endpoint.sh sysv|unix|fd}
export GETFILE_TEST_IPC=$BE
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"
TEST_NAME="rel_endpoint_$BE"

add_file /small 1024
start_cache CACHE -t 2
PORT=$(free_port)
start_proxy PROXY "$PORT" 2 2 65536 --cache-stall 2000
expect_get "$PORT" /small OK
for round in 1 2; do
    if [ "$BE" = sysv ]; then
        id=$(awk -v k=$(((0x67 << 24) | CACHE)) 'NR > 1 && $1 == k { print $2 }' /proc/sysvipc/msg)
        check "round $round: the cache's queue exists" test -n "$id"
        ipcrm -q "$id"
        log "round $round: removed the cache's System V queue $id"
    else
        rm -f "$GF_RUNDIR/getfile-$UIDN-$BE.sock"
        log "round $round: removed the cache's socket"
    fi
    remade() {
        [ "$(grep -c -E "re-created|listening on it again" "$(logfile_of "$CACHE")")" -ge "$round" ]
    }
    check "round $round: the cache made its endpoint again within 5 s" wait_for 5 remade
    check "round $round: served again within 5 s" wait_for 5 get_ok "$PORT" /small
    # A proxy started now must find the cache by its name (the running one may keep its
    # connections: fd and unix proxies do).
    P2=$(free_port)
    start_proxy PROXY2 "$P2" 2 2 65536 --cache-stall 2000
    check "round $round: a new proxy is served within 5 s" wait_for 5 get_ok "$P2" /small
    stop_ok "$PROXY2" TERM webproxy
done
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
