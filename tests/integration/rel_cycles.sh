#!/usr/bin/env bash
# rel_cycles.sh [posix|sysv|unix|fd] - start/stop cycles of both daemons in alternating orders, each ending with
# SIGTERM or SIGKILL at a random moment (sometimes before a daemon is even ready, sometimes in
# the middle of a transfer). 20 cycles here, 200 with RELIABILITY_FULL=1 (seeded: reproducible).
# Checks: a SIGTERM always ends in exit 0 with no sanitizer report; once both daemons of a cycle
# are up, no IPC object of a dead process is left (each start sweeps its predecessors'); after
# the last cycle a clean cache start/stop leaves nothing at all; and a later run is not degraded
# (the same download takes no more than 3x as long as before the cycles, plus 1 s).
# On another --ipc backend (default posix; docs/reliability.md, "Per backend"): 12 cycles in the
# CI form; "no object of a dead process" also means no System V queue keyed by, or segment
# created by, a dead pid (sysv); on unix and fd the proxy's kept connections (and fd's kept
# descriptors) must follow each new cache, which the transfers and the final download check.
# Variables set here are read by rel_common.sh functions (REL_ENV, DL_RC, ...).
# shellcheck disable=SC2034
if [ -n "${1:-}" ]; then
    export GETFILE_TEST_IPC=$1
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"
[ "$REL_IPC" = posix ] || TEST_NAME="rel_cycles_$REL_IPC"

rel_corpus
WL_SMALL=$(rel_workload small /small)
WL_MIX=$(rel_workload mix /small /multi /missing /empty /road.jpg)
WL_BENCH=$(rel_workload bench /multi /road.jpg /small)
CYCLES=20
[ "$REL_IPC" = posix ] || CYCLES=12 # the CI form on the other backends: a shorter one
[ "$REL_FULL" = 1 ] && CYCLES=200
RANDOM=2024

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# timed_bench PORT: ms taken by 600 requests (200 x /multi, /road.jpg, /small) on 4 threads.
timed_bench() {
    local t0 t1
    t0=$(now_ms)
    rel_get_strict "benchmark download" "$1" "$WL_BENCH" 600 0 600 4
    t1=$(now_ms)
    echo $((t1 - t0)) >"$WORK/bench.ms"
}

# no_dead_objects: every object named after a pid belongs to a live process.
no_dead_objects() {
    local f name pid
    for f in /dev/shm/getfile-* /dev/mqueue/getfile-*; do
        [ -e "$f" ] || continue
        name=${f##*/}
        pid=$(echo "$name" | sed -n -E "s/^getfile-$REL_UID-([0-9]+)-.*/\1/p")
        [ -n "$pid" ] || continue
        if ! rel_alive "$pid"; then
            echo "$name"
        fi
    done
    [ "$REL_IPC" = sysv ] || return 0
    # System V: a cache's queue keyed 0x67 << 24 | pid, a proxy's segments by creator pid.
    # (Lists read first, no process substitution: see files_under in lib.sh.)
    local key cpid
    for key in $(awk 'NR > 1 { print $1 }' /proc/sysvipc/msg); do
        pid=$((key & 0xffffff))
        if [ $((key >> 24)) -eq $((0x67)) ] && ! rel_alive "$pid"; then
            echo "sysv-msg-of-$pid"
        fi
    done
    for cpid in $(awk 'NR > 1 { print $5 }' /proc/sysvipc/shm); do
        rel_alive "$cpid" || echo "sysv-shm-of-$cpid"
    done
    return 0
}

# ---- baseline speed ---------------------------------------------------------------------------
PORT=$(free_port)
rel_start_cache CACHE
rel_start_proxy PROXY "$PORT" webproxy -n 4 -z 65536
rel_wait_cache "$CACHE" || die "simplecached did not start"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || die "no service"
timed_bench "$PORT"
BASE_MS=$(cat "$WORK/bench.ms")
log "baseline: $BASE_MS ms"
rel_stop_check "webproxy" "$PROXY"
rel_stop_check "simplecached" "$CACHE"

# ---- cycles -----------------------------------------------------------------------------------
# ender NAME PID: SIGTERM (checked: exit 0) or SIGKILL, chosen at random.
ender() {
    local what=$1 pid=$2
    if ((RANDOM % 3 == 0)); then
        rel_signal "$pid" KILL
        wait "$pid" 2>/dev/null || true
        rel_log_clean "$(logfile_of "$pid")" || fail "$what: sanitizer report before SIGKILL"
    elif rel_catches "$pid" 15; then
        rel_stop_check "$what" "$pid"
    else
        # SIGTERM before the daemon installed its handler (it does so before creating any
        # IPC object): the default action ends it, and that is all right.
        local st=0
        rel_add signals
        stop "$pid" TERM 15 || st=$?
        [ "$st" -eq 0 ] || [ "$st" -eq 143 ] || fail "$what: status $st after an early SIGTERM"
        rel_log_clean "$(logfile_of "$pid")" || fail "$what: sanitizer report"
    fi
}

for ((c = 1; c <= CYCLES; c++)); do
    rel_add runs
    PORT=$(free_port)
    if ((c % 2)); then
        rel_start_cache CACHE
        sleep "0.0$((RANDOM % 10))"
        rel_start_proxy PROXY "$PORT" webproxy -n 2 -z 8192
    else
        rel_start_proxy PROXY "$PORT" webproxy -n 2 -z 8192
        sleep "0.0$((RANDOM % 10))"
        rel_start_cache CACHE
    fi
    mode=$((RANDOM % 3))
    if [ "$mode" -ne 0 ]; then
        # Both up: nothing of a dead process may be left, and a transfer may be in flight.
        rel_wait_cache "$CACHE" || fail "cycle $c: the cache did not start"
        wait_port "$PORT"
        left=$(no_dead_objects)
        CHECKS=$((CHECKS + 1))
        [ -z "$left" ] || fail "cycle $c: objects of dead processes after both started: $left"
        if [ "$mode" -eq 2 ]; then
            rel_get_start "$PORT" "$WL_MIX" 20 2 60
            sleep "0.$((RANDOM % 5))"
        fi
    else
        sleep "0.$((RANDOM % 3))" # maybe before either is ready
    fi
    if ((RANDOM % 2)); then
        ender "cycle $c: webproxy" "$PROXY"
        ender "cycle $c: simplecached" "$CACHE"
    else
        ender "cycle $c: simplecached" "$CACHE"
        ender "cycle $c: webproxy" "$PROXY"
    fi
    if [ "$mode" -eq 2 ]; then
        DL_RC=0
        wait "$DL_PID" || DL_RC=$?
        rel_get_check # byte-exact or reported failed
    fi
done

# ---- a clean start/stop sweeps everything; the next run is as fast as the first --------------
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached did not start after the cycles"
rel_stop_check "sweeping simplecached" "$CACHE"
assert_no_ipc_left

PORT=$(free_port)
rel_start_cache CACHE
rel_start_proxy PROXY "$PORT" webproxy -n 4 -z 65536
rel_wait_cache "$CACHE" || die "simplecached did not start"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service after the cycles"
timed_bench "$PORT"
AFTER_MS=$(cat "$WORK/bench.ms")
log "after $CYCLES cycles: $AFTER_MS ms (baseline $BASE_MS ms)"
CHECKS=$((CHECKS + 1))
[ "$AFTER_MS" -le $((BASE_MS * 3 + 1000)) ] || fail "degraded after the cycles: $AFTER_MS ms vs $BASE_MS ms"
rel_stop_check "webproxy" "$PROXY"
rel_stop_check "simplecached" "$CACHE"

assert_no_ipc_left
rel_report
finish
