#!/usr/bin/env bash
# rel_peer_death.sh - a peer dies or stalls at an exact point of a transfer, then at random.
#   1. The cache dies (SIGKILL via GF_FAULT=shm_sem_post:N:kill: after N-1 chunks posted): the
#      client's transfer fails promptly and is reported; the proxy lives, its pool is whole, and
#      it serves again once a new cache starts (which sweeps the dead cache's queue).
#   2. The proxy dies the same way (it posts `free` once per chunk consumed): the cache's only
#      worker (-t 1) is freed within ~1 s (a new proxy is served at once), the dead proxy's
#      segment is unmapped from the cache, and the next proxy's start sweeps its segments.
#   3. Either peer stalls (SIGSTOP via GF_FAULT=shm_sem_post:N:stop) for 2 s and resumes: the
#      transfer completes byte-exact.
#   4. kill -9 of the cache or the proxy at random moments under load: every download is
#      byte-exact or reported failed, and after restarting the killed one everything works.
# Variables set here are read by rel_common.sh functions (REL_ENV, DL_RC, ...).
# shellcheck disable=SC2034
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"

rel_corpus
WL_MULTI=$(rel_workload multi /multi)
WL_SMALL=$(rel_workload small /small)
WL_MIX=$(rel_workload mix /small /multi /missing /empty /road.jpg)
SEG=(-n 2 -z 4096) # 4 KiB segments: /multi takes about 80 chunks

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- 1. the cache dies at chunk N --------------------------------------------------------
PORT=$(free_port)
REL_ENV=()
rel_start_proxy PROXY "$PORT" webproxy "${SEG[@]}"
wait_port "$PORT"
# W: the cache's shm_sem_post calls for the warm-up request (/small), so N counts from /multi.
REL_ENV=("GF_FAULT_COUNT_FILE=$WORK/cache.counts")
rel_start_cache CPID simplecached_fi
rel_wait_cache "$CPID" || die "simplecached_fi did not start"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || die "no service from the cache"
rel_stop_check "simplecached_fi (counting)" "$CPID"
W=$(awk '$1 == "shm_sem_post" {print $2}' "$WORK/cache.counts")
log "the cache posts $W time(s) for one /small"
for n in $((W + 1)) $((W + 2)) $((W + 3)) $((W + 40)); do
    REL_ENV=("GF_FAULT=shm_sem_post:$n:kill")
    rel_start_cache CPID simplecached_fi
    rel_add runs
    rel_wait_cache "$CPID" || die "simplecached_fi did not start"
    wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service from the cache"
    t0=$(now_ms)
    rel_get "$PORT" "$WL_MULTI" 0 1 30
    t1=$(now_ms)
    CHECKS=$((CHECKS + 1))
    [ "$DL_FAILED" = 1 ] || fail "cache killed at shm_sem_post $n: the transfer did not fail"
    log "cache killed at shm_sem_post $n: the client's transfer failed after $((t1 - t0)) ms"
    CHECKS=$((CHECKS + 1))
    [ $((t1 - t0)) -lt 5000 ] ||
        fail "cache killed at shm_sem_post $n: the failure took $((t1 - t0)) ms (expected < 5 s)"
    st=0
    wait_for 5 eval '! rel_alive "$CPID"' || fail "cache not killed at shm_sem_post $n"
    wait "$CPID" 2>/dev/null || st=$?
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 137 ] || fail "cache at shm_sem_post $n: status $st, expected 137 (SIGKILL)"
    rel_add faults
    CHECKS=$((CHECKS + 1))
    rel_alive "$PROXY" || fail "the proxy died with the cache"
    CHECKS=$((CHECKS + 1))
    [ "$(rel_segments_of "$PROXY")" -eq 2 ] ||
        fail "after the cache died the proxy has $(rel_segments_of "$PROXY") segments, not 2"
    # A new cache sweeps the dead one's queue; the proxy finds it and serves everything.
    REL_ENV=()
    rel_start_cache C2
    rel_wait_cache "$C2" || die "simplecached did not restart"
    rel_assert_no_objects_of "dead cache $CPID swept by the next start" "$CPID"
    wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service after the cache restart"
    rel_get_strict "after cache death at shm_sem_post $n" "$PORT" "$WL_MIX" 4 1
    rel_stop_check "simplecached" "$C2"
done
rel_stop_check "webproxy" "$PROXY"
assert_no_ipc_left

# ---- 2. the proxy dies at chunk N --------------------------------------------------------
REL_ENV=()
rel_start_cache CACHE simplecached -t 1 # one worker: if it stayed stuck, nobody else would be served
rel_wait_cache "$CACHE" || die "simplecached did not start"
for n in 1 2 30; do
    PORT=$(free_port)
    REL_ENV=("GF_FAULT=shm_sem_post:$n:kill")
    rel_start_proxy P1 "$PORT" webproxy_fi -n 1 -z 4096
    wait_port "$PORT"
    rel_add runs
    rel_get "$PORT" "$WL_MULTI" 0 1 30
    CHECKS=$((CHECKS + 1))
    [ "$DL_FAILED" = 1 ] || fail "proxy killed at shm_sem_post $n: the client saw no failure"
    st=0
    wait "$P1" 2>/dev/null || st=$?
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 137 ] || fail "proxy at shm_sem_post $n: status $st, expected 137 (SIGKILL)"
    rel_add faults
    t0=$(now_ms)
    # The worker notices the death within a wait slice and unmaps the segment.
    mapped() { grep -q "getfile-$REL_UID-$P1-seg" "/proc/$CACHE/maps"; }
    wait_for 3 eval '! mapped' || fail "the cache still maps dead proxy $P1's segment after 3 s"
    PORT2=$(free_port)
    REL_ENV=()
    rel_start_proxy P2 "$PORT2" webproxy -n 1 -z 4096
    wait_port "$PORT2"
    rel_assert_no_objects_of "dead proxy $P1 swept by the next proxy's start" "$P1"
    rel_get_strict "after proxy death at shm_sem_post $n" "$PORT2" "$WL_SMALL" 1 0
    t1=$(now_ms)
    log "proxy killed at shm_sem_post $n: the single cache worker served a new proxy $((t1 - t0)) ms later"
    CHECKS=$((CHECKS + 1))
    [ $((t1 - t0)) -lt 4000 ] ||
        fail "after proxy death the single cache worker served again only after $((t1 - t0)) ms"
    rel_stop_check "webproxy" "$P2"
done
CHECKS=$((CHECKS + 1))
rel_alive "$CACHE" || fail "the cache died with a proxy"
rel_stop_check "simplecached" "$CACHE"
ABORTED=$(sed -n -E 's/.* ([0-9]+) aborted.*/\1/p' "$(logfile_of "$CACHE")" | tail -1)
log "the cache counted ${ABORTED:-?} aborted transfers"
CHECKS=$((CHECKS + 1))
[ "${ABORTED:-0}" -ge 3 ] || fail "the cache counted ${ABORTED:-no} aborted transfers, expected 3"
assert_no_ipc_left

# ---- 3. a stalled peer resumes ----------------------------------------------------------
for who in cache proxy; do
    PORT=$(free_port)
    if [ "$who" = cache ]; then
        REL_ENV=("GF_FAULT=shm_sem_post:20:stop")
        rel_start_cache CACHE simplecached_fi
        REL_ENV=()
        rel_start_proxy PROXY "$PORT" webproxy "${SEG[@]}"
        STALLED=$CACHE
    else
        REL_ENV=()
        rel_start_cache CACHE
        REL_ENV=("GF_FAULT=shm_sem_post:20:stop")
        rel_start_proxy PROXY "$PORT" webproxy_fi "${SEG[@]}"
        STALLED=$PROXY
    fi
    rel_wait_cache "$CACHE" || die "simplecached did not start"
    wait_port "$PORT"
    wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service before the stall"
    rel_add runs
    (
        d=$WORK/stall
        mkdir -p "$d"
        cd "$d" && exec timeout 60 "$BIN_DIR/gfclient_download" -s 127.0.0.1 -p "$PORT" \
            -w "$WL_MULTI" -t 1 -R 5 >"$d.out" 2>&1
    ) &
    CLIENT=$!
    stopped() {
        local st
        proc_state "$STALLED" st
        [ "$st" = T ]
    }
    wait_for 20 stopped || fail "the $who never stopped at shm_sem_post 20"
    rel_add faults
    sleep 2 # the stall itself: shorter than every timeout, so the transfer must survive it
    rel_signal "$STALLED" CONT
    st=0
    wait "$CLIENT" || st=$?
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 0 ] || fail "transfer across a 2 s stall of the $who failed: $(cat "$WORK/stall.out")"
    CHECKS=$((CHECKS + 1))
    if cmp -s "$WORK/stall/multi" "$CORPUS/files/multi"; then
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
