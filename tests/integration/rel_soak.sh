#!/usr/bin/env bash
# rel_soak.sh [posix|sysv|unix|fd] - many concurrent clients for a while (30 s here, 300 s with RELIABILITY_FULL=1)
# over hits, misses, unreadable entries, 0-byte, small, multi-chunk and 5 MiB files, with the
# cache restarted every ~10 s (SIGTERM, and once SIGKILL). Checks: every completed download is
# byte-exact and every failure is reported as one; failures happen only around restarts (a
# client round that overlaps no restart has none); afterwards the proxy's open descriptors,
# its shared memory mappings, its total mappings and the IPC object count are back to their
# starting values, and both daemons exit cleanly with no sanitizer report.
# On another --ipc backend (default posix; docs/reliability.md, "Per backend") the CI form is
# shorter (16 s, a restart every 5 s: the second still a SIGKILL). On sysv the shared memory is
# System V segments (mapped as /SYSV...). On unix and fd the proxy keeps connections to the
# cache (and fd the read-only descriptors of recent answers, each for at most 1 s), whose number
# depends on the load, not on leaks: they are counted apart and bounded (connections: at most
# the proxy's 4 workers + 64 idle, docs/ipc.md "Connections"; kept files: at most one per
# corpus file), and every other descriptor must come back exactly.
# Variables set here are read by rel_common.sh functions (REL_ENV, DL_RC, ...).
# shellcheck disable=SC2034
if [ -n "${1:-}" ]; then
    export GETFILE_TEST_IPC=$1
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"
[ "$REL_IPC" = posix ] || TEST_NAME="rel_soak_$REL_IPC"

rel_corpus big
WL=$(rel_workload soak /big /multi /road.jpg /small /empty /missing /unreadable /multi /small)
WL_SMALL=$(rel_workload small /small)
DURATION=30 RESTART_S=10
[ "$REL_IPC" = posix ] || DURATION=16 RESTART_S=5
[ "$REL_FULL" = 1 ] && DURATION=300 RESTART_S=10
CLIENTS=4 # processes, each with 4 threads

PORT=$(free_port)
rel_start_cache CACHE
rel_start_proxy PROXY "$PORT" webproxy -n 6 -z 65536
rel_wait_cache "$CACHE" || die "simplecached did not start"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || die "no service"
rel_get_strict "warm-up" "$PORT" "$WL" 7 2 0 4

shm_maps() { grep -c -e '/dev/shm/' -e '/SYSV' "/proc/$1/maps" || true; }
# unix_socks PID: PID's descriptors of Unix sockets (its connections to the cache, and the
# cache's listening socket); kept_files PID: its descriptors of corpus files (fd: kept answers).
unix_socks() {
    local inos n=0 l
    inos=" $(awk 'NR > 1 { printf "%s ", $7 }' /proc/net/unix) "
    for l in $(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null); do
        l=${l#socket:[}
        [[ "$inos" == *" ${l%]} "* ]] && n=$((n + 1))
    done
    echo "$n"
}
kept_files() { find "/proc/$1/fd" -lname "$CORPUS/files/*" 2>/dev/null | wc -l; }
# other_fds PID: descriptors besides those two kinds (all of them on posix and sysv).
other_fds() {
    case $REL_IPC in
    unix | fd) echo $(($(rel_fd_count "$1") - $(unix_socks "$1") - $(kept_files "$1"))) ;;
    *) rel_fd_count "$1" ;;
    esac
}
FD0=$(other_fds "$PROXY") MAP0=$(rel_map_count "$PROXY") SHM0=$(shm_maps "$PROXY")
IPC0=$(rel_ipc_count)
# The cache's idle baseline. The cache keeps one attachment (a descriptor and a /dev/shm
# mapping) per proxy segment it has served, so an instance that served fewer segments holds
# fewer: descriptors minus /dev/shm mappings must come back exactly, attachments stay within
# the proxy's 6 segments (plus the registry), other mappings within a few.
NSEG=6
# (A System V attachment has no descriptor: only the posix ones are taken off.)
cache_fds() { echo $(($(other_fds "$1") - $(grep -c '/dev/shm/' "/proc/$1/maps" || true))); }
CFD0=$(cache_fds "$CACHE") CMAP0=$(($(rel_map_count "$CACHE") - $(shm_maps "$CACHE")))
T0=$(date +%s)
log "start: proxy fds $FD0, maps $MAP0 (shm $SHM0), IPC objects $IPC0; cache fds $CFD0, maps $CMAP0 (not counting $(shm_maps "$CACHE") in /dev/shm)"

# Client rounds run back to back in CLIENTS background slots until the end time; each round is
# checked as it finishes. A restart marks the rounds running across it as "may fail".
END=$(($(date +%s) + DURATION))
declare -a SLOT_PID SLOT_DIR SLOT_EPOCH
EPOCH=0 # incremented at every cache restart
rounds_ok=0 rounds_hit=0 restarts=0
start_round() {
    rel_get_start "$PORT" "$WL" 45 4 120
    SLOT_PID[$1]=$DL_PID SLOT_DIR[$1]=$DL_DIR SLOT_EPOCH[$1]=$EPOCH
}
check_round() {
    DL_RC=0
    wait "${SLOT_PID[$1]}" || DL_RC=$?
    DL_DIR=${SLOT_DIR[$1]}
    rel_get_check
    rel_add runs
    if [ "${SLOT_EPOCH[$1]}" = "$EPOCH" ]; then
        CHECKS=$((CHECKS + 1))
        if [ "$DL_RC" -ne 0 ] || [ "$DL_FAILED" -ne 0 ]; then
            fail "a round with no cache restart had $DL_FAILED failure(s): $(head -c 300 "$DL_DIR.err" | tr '\n' ' ')"
        fi
        rounds_ok=$((rounds_ok + 1))
    else
        rounds_hit=$((rounds_hit + 1))
    fi
}
for ((i = 0; i < CLIENTS; i++)); do start_round "$i"; done
next_restart=$(($(date +%s) + RESTART_S))
while [ "$(date +%s)" -lt "$END" ]; do
    for ((i = 0; i < CLIENTS; i++)); do
        if ! kill -0 "${SLOT_PID[$i]}" 2>/dev/null; then
            check_round "$i"
            start_round "$i"
        fi
    done
    if [ "$(date +%s)" -ge "$next_restart" ]; then
        restarts=$((restarts + 1))
        EPOCH=$((EPOCH + 1))
        if [ "$restarts" -eq 2 ]; then
            rel_signal "$CACHE" KILL
            wait "$CACHE" 2>/dev/null || true
        else
            rel_stop_check "simplecached (restart $restarts)" "$CACHE"
        fi
        rel_start_cache CACHE
        rel_wait_cache "$CACHE" || die "simplecached did not restart"
        wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service after restart $restarts"
        log "restart $restarts done at +$(($(date +%s) - T0)) s"
        EPOCH=$((EPOCH + 1)) # rounds started while the cache was away may fail too
        next_restart=$(($(date +%s) + RESTART_S))
    fi
    sleep 0.2
done
log "load ends at +$(($(date +%s) - T0)) s; waiting for the last rounds"
for ((i = 0; i < CLIENTS; i++)); do check_round "$i"; done
log "last rounds done at +$(($(date +%s) - T0)) s"
log "rounds: $rounds_ok without a restart (all must pass), $rounds_hit across one; $restarts restarts"
CHECKS=$((CHECKS + 1))
[ "$rounds_ok" -ge 1 ] || fail "no round ran without a restart"

# ---- resources back to where they started ------------------------------------------------------
settled() {
    [ "$(other_fds "$PROXY")" -eq "$FD0" ] && [ "$(shm_maps "$PROXY")" -eq "$SHM0" ] &&
        [ "$(rel_map_count "$PROXY")" -eq "$MAP0" ] && [ "$(rel_ipc_count)" -eq "$IPC0" ] &&
        [ "$(cache_fds "$CACHE")" -eq "$CFD0" ]
}
wait_for 10 settled || true
FD1=$(other_fds "$PROXY") MAP1=$(rel_map_count "$PROXY") SHM1=$(shm_maps "$PROXY")
IPC1=$(rel_ipc_count)
CFD1=$(cache_fds "$CACHE") CMAP1=$(($(rel_map_count "$CACHE") - $(shm_maps "$CACHE")))
CSHM1=$(shm_maps "$CACHE")
log "end: proxy fds $FD1, maps $MAP1 (shm $SHM1), IPC objects $IPC1; cache fds $CFD1, maps $CMAP1 (not counting $CSHM1 in /dev/shm)"
CHECKS=$((CHECKS + 1))
# Descriptors exactly; mappings of two different cache processes may differ by a few (the
# sanitizer runtime's own), while a leak per request would add hundreds.
[ "$CFD1" -eq "$CFD0" ] && [ "$CMAP1" -le $((CMAP0 + 4)) ] && [ "$CSHM1" -le $((NSEG + 1)) ] ||
    fail "cache descriptors/mappings besides /dev/shm: $CFD0/$CMAP0 idle at the start, $CFD1/$CMAP1 at the end; $CSHM1 in /dev/shm for $NSEG segments"
if [ "$REL_IPC" = unix ] || [ "$REL_IPC" = fd ]; then
    SOCK1=$(unix_socks "$PROXY") KEPT1=$(kept_files "$PROXY") NFILES=$(find "$CORPUS/files" -type f | wc -l)
    log "end: the proxy holds $SOCK1 connection(s) to the cache and $KEPT1 kept descriptor(s)"
    CHECKS=$((CHECKS + 1))
    [ "$SOCK1" -le 68 ] || fail "the proxy holds $SOCK1 connections to the cache (at most 4 + 64)"
    CHECKS=$((CHECKS + 1))
    [ "$KEPT1" -le "$NFILES" ] || fail "the proxy holds $KEPT1 descriptors of $NFILES corpus files"
fi
CHECKS=$((CHECKS + 1))
[ "$FD1" -eq "$FD0" ] || fail "proxy descriptors: $FD0 at start, $FD1 at the end: $(ls -l /proc/$PROXY/fd | tail -n +2 | awk '{print $NF}' | sort | uniq -c | sort -rn | head -5 | tr '\n' ' ')"
CHECKS=$((CHECKS + 1))
[ "$SHM1" -eq "$SHM0" ] || fail "proxy shared memory mappings: $SHM0 at start, $SHM1 at the end"
CHECKS=$((CHECKS + 1))
[ "$MAP1" -eq "$MAP0" ] || fail "proxy mappings: $MAP0 at start, $MAP1 at the end"
CHECKS=$((CHECKS + 1))
[ "$IPC1" -eq "$IPC0" ] || fail "IPC objects: $IPC0 at start, $IPC1 at the end: $(ipc_objects | tr '\n' ' ')"
rel_stop_check "webproxy" "$PROXY"
rel_stop_check "simplecached" "$CACHE"

assert_no_ipc_left
rel_report
finish
