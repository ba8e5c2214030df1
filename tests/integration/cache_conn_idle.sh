#!/usr/bin/env bash
# cache_conn_idle.sh unix|fd - the cache closes a proxy's connection idle for its limit
# (docs/ipc.md, "Connections": CONN_IDLE_MS, 30 s; GETFILE_CONN_IDLE_MS shortens it for this
# test): with a 1 s limit an idle connection is closed 1 to 5 s after its answer, one that asks
# every 0.3 s stays open and answered for 3 s, and without the variable a connection idle for
# 2.5 s is still open (the default is 30 s). The 50 ms linger is not observable from outside
# (it only saves a hop through the acceptor) and has no check here.
export GETFILE_TEST_IPC=${1:-unix}
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"
TEST_NAME="cache_conn_idle_$REL_IPC"
case $REL_IPC in unix) BE=2 ;; fd) BE=3 ;; *) die "cache_conn_idle: unix or fd, not $REL_IPC" ;; esac

rel_corpus
SOCK="$GF_RUNDIR/getfile-$REL_UID-$REL_IPC.sock"
conn() { timeout 30 python3 "$SRC_DIR/tests/integration/cache_conn_idle.py" "$SOCK" "$BE" /empty "$@"; }

REL_ENV=(GETFILE_CONN_IDLE_MS=1000)
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached did not start"
idle=$(conn idle 8) busy=$(conn busy 3)
log "limit 1 s: idle connection $idle; asking every 0.3 s: $busy"
ms=$(awk -v t="${idle#closed }" 'BEGIN { printf "%d", t * 1000 }')
check "an idle connection is closed after 1 to 5 s (got: $idle)" \
    eval '[[ "$idle" == closed* ]] && [ "$ms" -ge 900 ] && [ "$ms" -le 5000 ]'
check "a connection in use stays open (got: $busy)" eval '[[ "$busy" == open* ]] && [ "${busy#open }" -ge 5 ]'
rel_stop_check "simplecached (limit 1 s)" "$CACHE"

REL_ENV=()
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached did not start"
idle=$(conn idle 2.5)
log "default limit: idle connection after 2.5 s: $idle"
check "with the default limit a connection idle 2.5 s stays open (got: $idle)" test "$idle" = open
rel_stop_check "simplecached" "$CACHE"
assert_no_ipc_left
finish
