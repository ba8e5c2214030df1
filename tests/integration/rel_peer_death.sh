#!/usr/bin/env bash
# rel_peer_death.sh [posix|sysv|unix|fd] - a peer dies or stalls at an exact point of a
# transfer, then at random, on one --ipc backend (default posix). The exact points are the
# backend's own (docs/reliability.md, "Peer death per backend"):
#   posix, sysv (the same ring in a posix or a System V segment): the cache's RESPONSE post and
#     its 1st, 2nd and 39th DATA post (shm_sem_post), the proxy's 1st, 2nd and 30th `free` post;
#   unix: the cache dies before its answer (sendmsg), mid-answer header (sendmsg half),
#     mid-body (sendfile half); the
#     proxy dies before its request (sendmsg), mid-request (sendmsg half), before the answer
#     (recvmsg), mid-body (its 3rd recv);
#   fd: the cache dies before passing the descriptor, after passing it with the first half of
#     the answer header (sendmsg half); the proxy dies before and mid-request, before the
#     answer, mid-send of the passed file to its client.
#   (No backlog point on unix and fd: the proxy keeps its connections, so a request after the
#   warm-up takes no accept; cache_ipc_points_<be> has it.)
#   1. The cache dies (SIGKILL via GF_FAULT=F:N:kill, N counted from a warm-up request): the
#      client's transfer fails promptly and is reported; the proxy lives, its pool is whole, and
#      it serves again once a new cache starts (which sweeps the dead cache's objects).
#      fd: the warm-up's /small, kept by the proxy for up to 1 s, is not served after the
#      cache's death (its pidfd shows it dead): the next /small fails at once too.
#   2. The proxy dies the same way: the cache's only worker (-t 1) is freed within ~1 s (a new
#      proxy is served at once), the dead proxy's segment is let go by the cache (posix, sysv),
#      and the next proxy's start sweeps its segments.
#   3. Either peer stalls (SIGSTOP via GF_FAULT=F:N:stop) for 2 s mid-transfer and resumes: the
#      transfer completes byte-exact.
#   4. kill -9 of the cache or the proxy at random moments under load: every download is
#      byte-exact or reported failed, and after restarting the killed one everything works.
# Variables set here are read by rel_common.sh functions (REL_ENV, DL_RC, ...).
# shellcheck disable=SC2034
if [ -n "${1:-}" ]; then
    export GETFILE_TEST_IPC=$1
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"
[ "$REL_IPC" = posix ] || TEST_NAME="rel_peer_death_$REL_IPC"

rel_corpus big
WL_MULTI=$(rel_workload multi /multi)
WL_SMALL=$(rel_workload small /small)
WL_BIG=$(rel_workload big /big)
WL_MIX=$(rel_workload mix /small /multi /missing /empty /road.jpg)
SEG=(-n 2 -z 4096) # 4 KiB segments: /multi takes about 80 chunks

# The exact points of this backend. CACHE_POINTS: FN:OFFSET[:ACTION] (default kill), the call
# OFFSET after the warm-up /small's W calls of FN. PROXY_POINTS: FN:K[:ACTION] in a fresh proxy
# whose first request is /multi. STALL_*: where each stalls; WL_STALL: what is sent across it.
case $REL_IPC in
posix | sysv)
    CACHE_POINTS="shm_sem_post:1 shm_sem_post:2 shm_sem_post:3 shm_sem_post:40"
    PROXY_POINTS="shm_sem_post:1 shm_sem_post:2 shm_sem_post:30"
    STALL_CACHE=shm_sem_post:20:stop STALL_PROXY=shm_sem_post:20:stop WL_STALL=$WL_MULTI
    ;;
unix)
    # Mid-body is sendfile:half (half the body, then death): how many sendfile calls a body
    # takes depends on how fast the proxy drains the socket, half of the first one does not.
    # No backlog point (accept4) here: since the proxy keeps its connections (fdkeep), /multi
    # goes on the warm-up's connection; cache_ipc_points_unix has the backlog point.
    CACHE_POINTS="sendmsg:1 sendmsg:1:half sendfile:1:half"
    PROXY_POINTS="sendmsg:1 sendmsg:1:half recvmsg:1 recv:3"
    STALL_CACHE=sendfile:3:stop STALL_PROXY=recv:20:stop WL_STALL=$WL_BIG
    ;;
fd)
    CACHE_POINTS="sendmsg:1 sendmsg:1:half"
    PROXY_POINTS="sendmsg:1 sendmsg:1:half recvmsg:1 sendfile:1:half"
    # A fresh cache's warm-up /small costs it 2 sendmsg (the generation object, then the
    # answer): its 3rd is /big's answer. The proxy's warm-up sends /small (1 KiB) with its
    # header in one write, no sendfile; /big (5 MiB, not kept) goes in 64 KiB sendfile pieces,
    # so the proxy's 3rd is /big's third piece. (A stall point inside the warm-up, as sendmsg:2
    # once was, stops the cache before /big is asked at all.)
    STALL_CACHE=sendmsg:3:stop STALL_PROXY=sendfile:3:stop WL_STALL=$WL_BIG
    ;;
*) die "unknown backend '$REL_IPC'" ;;
esac

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- 1. the cache dies at an exact point ----------------------------------------------------
KEPT_REFUSED=0 # fd: kept hits refused after the cache's death within their keep time
PORT=$(free_port)
REL_ENV=()
rel_start_proxy PROXY "$PORT" webproxy "${SEG[@]}"
wait_port "$PORT"
# W: the cache's calls of each function for the warm-up request (/small), so N counts from /multi.
REL_ENV=("GF_FAULT_COUNT_FILE=$WORK/cache.counts")
rel_start_cache CPID simplecached_fi
rel_wait_cache "$CPID" || die "simplecached_fi did not start"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || die "no service from the cache"
rel_stop_check "simplecached_fi (counting)" "$CPID"
log "the cache's calls for one /small: $(tr '\n' ' ' <"$WORK/cache.counts")"
for point in $CACHE_POINTS; do
    IFS=: read -r fn off act <<<"$point"
    W=$(awk -v f="$fn" '$1 == f {print $2}' "$WORK/cache.counts")
    n=$((W + off))
    at="$fn:$n:${act:-kill}"
    REL_ENV=("GF_FAULT=$at")
    rel_start_cache CPID simplecached_fi
    rel_add runs
    rel_wait_cache "$CPID" || die "simplecached_fi did not start"
    tw=$(now_ms)
    wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service from the cache"
    t0=$(now_ms)
    rel_get "$PORT" "$WL_MULTI" 0 1 30
    t1=$(now_ms)
    CHECKS=$((CHECKS + 1))
    [ "$DL_FAILED" = 1 ] || fail "cache killed at $at: the transfer did not fail"
    log "cache killed at $at: the client's transfer failed after $((t1 - t0)) ms"
    CHECKS=$((CHECKS + 1))
    [ $((t1 - t0)) -lt 5000 ] ||
        fail "cache killed at $at: the failure took $((t1 - t0)) ms (expected < 5 s)"
    st=0
    # Never a bare wait on a process that may still run: a point that did not fire would hang.
    if wait_for 5 eval '! rel_alive "$CPID"'; then
        wait "$CPID" 2>/dev/null || st=$?
    else
        fail "cache not killed at $at"
        stop "$CPID" KILL 5 || st=$?
    fi
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 137 ] || fail "cache at $at: status $st, expected 137 (SIGKILL)"
    rel_add faults
    if [ "$REL_IPC" = fd ]; then
        # The warm-up's /small is kept by the proxy (answered after tw, kept 1 s): a kept hit
        # now would serve a dead cache's answer. It must fail as the request above did.
        rel_get "$PORT" "$WL_SMALL" 0 1 30
        t2=$(now_ms)
        CHECKS=$((CHECKS + 1))
        if [ "$DL_FAILED" != 1 ]; then
            fail "cache killed at $at: the kept /small was still served $((t2 - tw)) ms after the warm-up"
        elif [ $((t2 - tw)) -lt 1000 ]; then
            log "cache killed at $at: the kept /small refused $((t2 - tw)) ms after the warm-up (within its keep time)"
            KEPT_REFUSED=$((KEPT_REFUSED + 1))
        else
            log "cache killed at $at: /small failed $((t2 - tw)) ms after the warm-up (past its keep time: no kept-hit check)"
        fi
    fi
    CHECKS=$((CHECKS + 1))
    rel_alive "$PROXY" || fail "the proxy died with the cache"
    rel_pool_whole "after the cache died at $at" "$PROXY" 2
    # A new cache sweeps the dead one's objects; the proxy finds it and serves everything.
    REL_ENV=()
    rel_start_cache C2
    rel_wait_cache "$C2" || die "simplecached did not restart"
    rel_assert_no_objects_of "dead cache $CPID swept by the next start" "$CPID"
    wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service after the cache restart"
    rel_get_strict "after cache death at $at" "$PORT" "$WL_MIX" 4 1
    rel_stop_check "simplecached" "$C2"
done
rel_stop_check "webproxy" "$PROXY"
[ "$REL_IPC" != fd ] || log "kept hits refused after the cache's death: $KEPT_REFUSED of 2"
assert_no_ipc_left

# ---- 2. the proxy dies at an exact point --------------------------------------------------
# cache_holds PID: the cache still maps dead proxy PID's segment (posix: by name; sysv: any
# System V mapping, which shows as /SYSV... and only this proxy had segments). The socket
# backends map nothing of a proxy's: the freed worker below is their check.
cache_holds() {
    case $REL_IPC in
    posix) grep -q "getfile-$REL_UID-$1-seg" "/proc/$CACHE/maps" ;;
    sysv) grep -q "/SYSV" "/proc/$CACHE/maps" ;;
    *) return 1 ;;
    esac
}
REL_ENV=()
rel_start_cache CACHE simplecached -t 1 # one worker: if it stayed stuck, nobody else would be served
rel_wait_cache "$CACHE" || die "simplecached did not start"
for at in $PROXY_POINTS; do
    [[ "$at" == *:*:* ]] || at="$at:kill"
    PORT=$(free_port)
    REL_ENV=("GF_FAULT=$at")
    rel_start_proxy P1 "$PORT" webproxy_fi -n 1 -z 4096
    wait_port "$PORT"
    rel_add runs
    rel_get "$PORT" "$WL_MULTI" 0 1 30
    CHECKS=$((CHECKS + 1))
    [ "$DL_FAILED" = 1 ] || fail "proxy killed at $at: the client saw no failure"
    st=0
    if wait_for 5 eval '! rel_alive "$P1"'; then
        wait "$P1" 2>/dev/null || st=$?
    else
        stop "$P1" KILL 5 || st=$?
    fi
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 137 ] || fail "proxy at $at: status $st, expected 137 (SIGKILL)"
    rel_add faults
    t0=$(now_ms)
    # The worker notices the death within a wait slice and lets the segment go.
    wait_for 3 eval '! cache_holds "$P1"' || fail "the cache still maps dead proxy $P1's segment after 3 s"
    PORT2=$(free_port)
    REL_ENV=()
    rel_start_proxy P2 "$PORT2" webproxy -n 1 -z 4096
    wait_port "$PORT2"
    rel_assert_no_objects_of "dead proxy $P1 swept by the next proxy's start" "$P1"
    # The request alone is timed: a new proxy's start under ASan on a loaded machine can take
    # seconds by itself, while a worker left stuck would hold the request for a stall limit.
    tr=$(now_ms)
    rel_get_strict "after proxy death at $at" "$PORT2" "$WL_SMALL" 1 0
    t1=$(now_ms)
    log "proxy killed at $at: the single cache worker served a new proxy $((t1 - t0)) ms later (the request: $((t1 - tr)) ms)"
    CHECKS=$((CHECKS + 1))
    [ $((t1 - tr)) -lt 4000 ] ||
        fail "after proxy death the single cache worker served again only after $((t1 - tr)) ms"
    rel_stop_check "webproxy" "$P2"
done
CHECKS=$((CHECKS + 1))
rel_alive "$CACHE" || fail "the cache died with a proxy"
rel_stop_check "simplecached" "$CACHE"
ABORTED=$(sed -n -E 's/.* ([0-9]+) aborted.*/\1/p' "$(logfile_of "$CACHE")" | tail -1)
log "the cache counted ${ABORTED:-?} aborted transfers"
# On the socket backends a proxy that dies before its request, or after the descriptor was
# passed, costs the cache no transfer: only the ring backends count one per point.
if [ "$REL_IPC" = posix ] || [ "$REL_IPC" = sysv ]; then
    CHECKS=$((CHECKS + 1))
    [ "${ABORTED:-0}" -ge 3 ] || fail "the cache counted ${ABORTED:-no} aborted transfers, expected 3"
fi
assert_no_ipc_left

# ---- 3. a stalled peer resumes ----------------------------------------------------------
for who in cache proxy; do
    PORT=$(free_port)
    if [ "$who" = cache ]; then
        REL_ENV=("GF_FAULT=$STALL_CACHE")
        rel_start_cache CACHE simplecached_fi
        REL_ENV=()
        rel_start_proxy PROXY "$PORT" webproxy "${SEG[@]}"
        STALLED=$CACHE STALLED_AT=$STALL_CACHE
    else
        REL_ENV=()
        rel_start_cache CACHE
        REL_ENV=("GF_FAULT=$STALL_PROXY")
        rel_start_proxy PROXY "$PORT" webproxy_fi "${SEG[@]}"
        STALLED=$PROXY STALLED_AT=$STALL_PROXY
    fi
    rel_wait_cache "$CACHE" || die "simplecached did not start"
    wait_port "$PORT"
    stopped() {
        local st
        proc_state "$STALLED" st
        [ "$st" = T ]
    }
    # Bounded in time (a probe can take 10 s): a stall point that fires in the warm-up stops it.
    warm_end=$((SECONDS + 20))
    until rel_serves "$PORT" "$WL_SMALL"; do
        ! stopped || die "the $who stopped in the warm-up: the stall point is too early"
        [ $SECONDS -lt $warm_end ] || die "no service before the stall"
        nap
    done
    rel_add runs
    (
        d=$WORK/stall
        mkdir -p "$d"
        cd "$d" && exec timeout 60 "$BIN_DIR/gfclient_download" -s 127.0.0.1 -p "$PORT" \
            -w "$WL_STALL" -t 1 -R 5 >"$d.out" 2>&1
    ) &
    CLIENT=$!
    wait_for 20 stopped || fail "the $who never stopped (GF_FAULT=$STALL_CACHE / $STALL_PROXY)"
    rel_add faults
    log "the $who stopped at ${STALLED_AT:-?} mid-transfer of $(sed -n 1p "$WL_STALL"); resumed after 2 s"
    sleep 2 # the stall itself: shorter than every timeout, so the transfer must survive it
    rel_signal "$STALLED" CONT
    st=0
    wait "$CLIENT" || st=$?
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 0 ] || fail "transfer across a 2 s stall of the $who failed: $(cat "$WORK/stall.out")"
    CHECKS=$((CHECKS + 1))
    stalled_file=$(sed -n 1p "$WL_STALL")
    if cmp -s "$WORK/stall$stalled_file" "$CORPUS/files$stalled_file"; then
        rel_add downloads
    else
        fail "transfer across a 2 s stall of the $who is not byte-exact"
    fi
    rm -rf "$WORK/stall"
    rel_stop_check "webproxy ($who stalled)" "$PROXY"
    rel_stop_check "simplecached ($who stalled)" "$CACHE"
done
assert_no_ipc_left

# ---- 4. kill -9 at random moments under load -----------------------------------------------
ITER=6
[ "$REL_IPC" = posix ] || ITER=4 # docs/reliability.md: fewer random kills on the other backends
[ "$REL_FULL" = 1 ] && ITER=40
RANDOM=4242 # reproducible
PORT=$(free_port)
REL_ENV=()
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached did not start"
rel_start_proxy PROXY "$PORT" webproxy "${SEG[@]}"
wait_port "$PORT"
WL_LOAD=$(rel_workload load /multi /road.jpg /small /empty /missing /multi)
for ((i = 0; i < ITER; i++)); do
    rel_add runs
    rel_get_start "$PORT" "$WL_LOAD" 30 4 60
    LOADER=$DL_PID LOADER_DIR=$DL_DIR
    sleep "0.$((RANDOM % 9 + 1))"
    if ((RANDOM % 2)); then
        victim=cache
        rel_signal "$CACHE" KILL
        wait "$CACHE" 2>/dev/null || true
        REL_ENV=()
        rel_start_cache CACHE
        rel_wait_cache "$CACHE" || die "simplecached did not restart"
    else
        victim=proxy
        rel_signal "$PROXY" KILL
        wait "$PROXY" 2>/dev/null || true
        PORT=$(free_port)
        rel_start_proxy PROXY "$PORT" webproxy "${SEG[@]}"
        wait_port "$PORT"
    fi
    rel_add faults
    DL_RC=0
    wait "$LOADER" || DL_RC=$?
    DL_DIR=$LOADER_DIR
    rel_get_check # byte-exact or reported failed, never hung
    wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service after killing the $victim"
    rel_get_strict "after kill -9 of the $victim (#$i)" "$PORT" "$WL_MIX" 4 1 0 2
done
rel_stop_check "webproxy" "$PROXY"
rel_stop_check "simplecached" "$CACHE"

assert_no_ipc_left
rel_report
finish
