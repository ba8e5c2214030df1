#!/usr/bin/env bash
# rel_faults.sh proxy|cache|origin - fault injection sweep (curl's "torture" style): for every
# wrapped function F the daemon calls c times in a short real scenario, rerun the scenario with
# the k-th call of F failing, for k in a spread of 1..c (every k with RELIABILITY_FULL=1).
#   proxy:  webproxy_fi (cache mode, -n 1 so a lost segment shows) against a real simplecached
#   cache:  simplecached_fi, restarted for every k, against one long-running real webproxy
#   origin: webproxy_fi in origin mode (curl_easy_init, threads, allocations)
# Each run must show: the daemon either refuses to start with a message (non-zero exit, never a
# signal) or keeps serving; no sanitizer report (ASan, LSan leaks, UBSan); every download
# byte-exact or reported failed; once the fault has fired, a full round of hits, misses and a
# multi-chunk file succeeds again (so the segment pool is back to full size); a clean exit on
# SIGTERM; nothing of the daemon's left in /dev/shm or /dev/mqueue. EINTR injected into the
# timed waits must be invisible: every round succeeds.
# Variables set here are read by rel_common.sh functions (REL_ENV, DL_RC, ...).
# shellcheck disable=SC2034
if [ -n "${2:-}" ]; then
    export GETFILE_TEST_IPC=$2
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"

SIDE=${1:?usage: rel_faults.sh proxy|cache|origin [posix|sysv|unix|fd]}
TEST_NAME="rel_faults_$SIDE"
[ "$REL_IPC" = posix ] || TEST_NAME+="_$REL_IPC"
# Distinct k tried per function in the CI form: 4 on posix; 3 (the first, the second and the
# last call) on the other backends, whose sweeps run next to it (docs/reliability.md).
KS_DEFAULT=4
[ "$REL_IPC" = posix ] || KS_DEFAULT=3
KS_MAX=${REL_FAULT_KS:-$KS_DEFAULT}
# REL_FAULT_FNS="F F:EINTR replacement ...": sweep only these (to split a full sweep across
# runs side by side); empty: everything.
want() { [ -z "${REL_FAULT_FNS:-}" ] || [[ " ${REL_FAULT_FNS//,/ } " == *" $1 "* ]]; }

rel_corpus
WL=$(rel_workload mix /small /multi /missing /empty /road.jpg /unreadable)
WL_OK=4 WL_NF=2
WL_PROBE=$(rel_workload probe /small)
# -n 1: a segment lost for good shows as a proxy that serves nothing. --cache-stall 3000: a
# request the cache never answers fails after 3 s instead of the default 30 s.
SEG_ARGS=(-n 1 -z 4096 --cache-stall 3000)

# ks COUNT: the k values to try for a function called COUNT times.
ks() {
    local c=$1
    if [ "$REL_FULL" = 1 ] || [ "$c" -le "$KS_MAX" ]; then
        seq 1 "$c"
        return
    fi
    # 1, 2, then evenly spread up to the last call.
    local n=$KS_MAX i
    {
        echo 1
        echo 2
        for ((i = 1; i <= n - 2; i++)); do
            echo $((2 + (c - 2) * i / (n - 2)))
        done
    } | sort -n -u
}

fired() { grep -c '^gf_fault:' "$1" 2>/dev/null || true; }

# rounds PORT LOG STRICT_ALWAYS: download rounds until one starts after the fault fired (that
# one, after at most 5 s of waiting for service to resume, must fully succeed); at most 3. A
# round during which no fault fired must succeed as well.
rounds() {
    local port=$1 log=$2 always=$3 r before after
    for ((r = 1; r <= 3; r++)); do
        before=$(fired "$log")
        if [ "$before" -gt 0 ] && [ "$always" = 0 ]; then
            # Service must resume by itself, within the proxy's lookup backoff (<= 1 s) and a
            # margin; then everything must work.
            wait_for 5 rel_serves "$port" "$WL_PROBE" || true
        fi
        local t0 t1
        t0=$(date +%s%N)
        rel_get "$port" "$WL" 0 1
        t1=$(date +%s%N)
        after=$(fired "$log")
        local ms=$(((t1 - t0) / 1000000))
        if [ "$ms" -gt 2500 ]; then
            log "SLOW: $CUR: round $r took $ms ms ($DL_FAILED failed)"
        fi
        # A fault must end its request at once (an answer, or a failure the proxy sees), not
        # leave the proxy waiting for its stall limit (3 s here, 30 s by default).
        if [ "$after" -gt "$before" ] && [ "$always" = 0 ]; then
            local stalled=0
            [ "$ms" -ge 3000 ] && [ "$DL_FAILED" -ge 1 ] && stalled=1
            CHECKS=$((CHECKS + 1))
            [ "$stalled" = 0 ] || fail "$CUR: the request waited for the stall limit ($ms ms, $DL_FAILED failed)"
        fi
        if [ "$always" = 1 ] || [ "$after" -eq "$before" ]; then
            CHECKS=$((CHECKS + 1))
            if [ "$DL_RC" -ne 0 ] || [ "$DL_OK" != "$WL_OK" ] || [ "$DL_NF" != "$WL_NF" ]; then
                fail "$CUR: round $r (fault fired before: $before) got $DL_OK ok / $DL_NF nf / $DL_FAILED failed: $(head -c 300 "$DL_DIR.err" | tr '\n' ' ')"
                return 0
            fi
        fi
        [ "$before" -gt 0 ] && return 0
    done
    return 0
}

# started PID PORT: the daemon listens on PORT or has exited (startup failure).
started() { ! rel_alive "$1" || (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; }
queue_or_exit() { ! rel_alive "$1" || rel_cache_ready "$1"; }

# ---- proxy side: a real cache, webproxy_fi restarted for every k ----------------------------
proxy_run() { # FAULT_SPEC STRICT_ALWAYS [COUNT_FILE] [MODE_ARGS...]
    local spec=$1 always=$2 counts=${3:-}
    shift 3
    local port log st=0
    port=$(free_port)
    REL_ENV=()
    [ -n "$spec" ] && REL_ENV+=("GF_FAULT=$spec")
    [ -n "$counts" ] && REL_ENV+=("GF_FAULT_COUNT_FILE=$counts")
    rel_start_proxy FI_PID "$port" webproxy_fi "$@"
    log=$(logfile_of "$FI_PID")
    rel_add runs
    if ! wait_for 20 started "$FI_PID" "$port"; then
        fail "$CUR: webproxy_fi neither listens nor exits"
    fi
    if ! rel_alive "$FI_PID"; then
        wait "$FI_PID" 2>/dev/null || st=$?
        rel_add faults "$(fired "$log")"
        CHECKS=$((CHECKS + 1))
        [ "$st" -ne 0 ] || fail "$CUR: webproxy_fi exited 0 at start"
        rel_check_exit "$CUR (start-up failure)" "$st" "$log" any
        rel_assert_no_objects_of "$CUR" "$FI_PID"
        return 0
    fi
    rounds "$port" "$log" "$always"
    local f_before
    f_before=$(fired "$log")
    CHECKS=$((CHECKS + 1))
    if rel_alive "$FI_PID"; then
        rel_add signals
        stop "$FI_PID" TERM 15 || st=$?
    else
        wait "$FI_PID" 2>/dev/null || st=$?
        fail "$CUR: webproxy_fi exited by itself while serving (status $st)"
    fi
    local mode=clean
    [ "$(fired "$log")" -gt "$f_before" ] && mode=any # the fault hit the shutdown itself
    rel_check_exit "$CUR" "$st" "$log" "$mode"
    rel_add faults "$(fired "$log")"
    rel_assert_no_objects_of "$CUR" "$FI_PID"
    CHECKS=$((CHECKS + 1))
    rel_alive "$CACHE_PID" || fail "$CUR: the cache died"
}

# ---- cache side: a real proxy, simplecached_fi restarted for every k ------------------------
cache_run() { # FAULT_SPEC STRICT_ALWAYS [COUNT_FILE]
    local spec=$1 always=$2 counts=${3:-}
    local log st=0
    REL_ENV=()
    [ -n "$spec" ] && REL_ENV+=("GF_FAULT=$spec")
    [ -n "$counts" ] && REL_ENV+=("GF_FAULT_COUNT_FILE=$counts")
    rel_start_cache FI_PID simplecached_fi
    log=$(logfile_of "$FI_PID")
    rel_add runs
    wait_for 20 queue_or_exit "$FI_PID" || fail "$CUR: simplecached_fi neither ready nor exited"
    # A restarted cache is found again (the proxy backs off at most 1 s between lookups).
    if rel_alive "$FI_PID" &&
        ! wait_for 15 eval 'rel_serves "$PROXY_PORT" "$WL_PROBE" || ! rel_alive "$FI_PID"' &&
        [ "$(fired "$log")" -eq 0 ]; then
        fail "$CUR: the proxy does not serve from the new cache within 15 s"
    fi
    if ! rel_alive "$FI_PID"; then
        # Gave up at start (before or just after creating its queue).
        wait "$FI_PID" 2>/dev/null || st=$?
        rel_add faults "$(fired "$log")"
        CHECKS=$((CHECKS + 1))
        CHECKS=$((CHECKS + 1))
        [ "$st" -ne 0 ] ||
            fail "$CUR: simplecached_fi stopped by itself with exit status 0: $(grep ' E ' "$log" | head -1 | cut -d' ' -f4-)"
        rel_check_exit "$CUR (start-up failure)" "$st" "$log" any
        rel_assert_no_objects_of "$CUR" "$FI_PID"
        # With no cache, the proxy answers at once, and as a failure.
        rel_get "$PROXY_PORT" "$WL_PROBE" 0 1 20
        CHECKS=$((CHECKS + 1))
        [ "$DL_FAILED" = 1 ] || fail "$CUR: with no cache the proxy did not report a failure"
        return 0
    fi
    rounds "$PROXY_PORT" "$log" "$always"
    local f_before
    f_before=$(fired "$log")
    CHECKS=$((CHECKS + 1))
    if rel_alive "$FI_PID"; then
        rel_add signals
        stop "$FI_PID" TERM 15 || st=$?
    else
        wait "$FI_PID" 2>/dev/null || st=$?
        fail "$CUR: simplecached_fi exited by itself while serving (status $st)"
    fi
    local mode=clean
    [ "$(fired "$log")" -gt "$f_before" ] && mode=any
    rel_check_exit "$CUR" "$st" "$log" "$mode"
    rel_add faults "$(fired "$log")"
    rel_assert_no_objects_of "$CUR" "$FI_PID"
    CHECKS=$((CHECKS + 1))
    if rel_alive "$PROXY_PID"; then
        rel_pool_whole "$CUR" "$PROXY_PID" 1
    else
        fail "$CUR: the proxy died"
    fi
}

# sweep RUNFN EINTR_FNS: baseline run with counts, then every selected k of every function.
sweep() {
    local runfn=$1 eintr_fns=$2
    shift 2
    local counts=$WORK/counts.txt fn c k
    CUR="baseline"
    "$runfn" "" 1 "$counts" "$@"
    [ -s "$counts" ] || die "no call counts written by the baseline run"
    log "call counts: $(tr '\n' ' ' <"$counts")"
    while read -r fn c; do
        [ "$fn" != signals ] && [ "$c" -gt 0 ] && want "$fn" || continue
        for k in $(ks "$c"); do
            CUR="$fn:$k"
            "$runfn" "$fn:$k" 0 "" "$@"
        done
    done <"$counts"
    # EINTR in a timed wait is retried: invisible to clients.
    for fn in $eintr_fns; do
        c=$(awk -v f="$fn" '$1 == f {print $2}' "$counts")
        [ "${c:-0}" -gt 0 ] && want "$fn:EINTR" || continue
        for k in $(ks "$c"); do
            CUR="$fn:$k:EINTR"
            "$runfn" "$fn:$k:EINTR" 1 "" "$@"
        done
    done
}

# replacement_run CREATE_FN K: a transfer abandoned mid-way (the 30th chunk wait fails with
# EINVAL) makes the proxy replace its only segment, and the replacement fails once (the K-th
# call of CREATE_FN, the first after start-up). The client's request fails and is reported;
# then, within 5 s, the pool must be whole again and serve everything.
replacement_run() {
    local fn=$1 k=$2 port log st=0
    CUR="replacement $fn:$k"
    port=$(free_port)
    REL_ENV=("GF_FAULT=shm_sem_clockwait:30:EINVAL,$fn:$k")
    rel_start_proxy FI_PID "$port" webproxy_fi "${SEG_ARGS[@]}"
    log=$(logfile_of "$FI_PID")
    rel_add runs
    wait_port "$port"
    WL_M=$(rel_workload multi /multi)
    rel_get "$port" "$WL_M" 0 1
    CHECKS=$((CHECKS + 1))
    [ "$DL_FAILED" = 1 ] || fail "$CUR: the abandoned transfer was not reported as failed"
    CHECKS=$((CHECKS + 1))
    wait_for 5 grep -q "^gf_fault: $fn" "$log" || fail "$CUR: no replacement was attempted"
    rel_add faults "$(fired "$log")"
    CHECKS=$((CHECKS + 1))
    rel_alive "$FI_PID" || fail "$CUR: webproxy_fi died"
    wait_for 5 rel_serves "$port" "$WL_PROBE" || true
    rel_get "$port" "$WL" 0 1
    CHECKS=$((CHECKS + 1))
    [ "$DL_RC" -eq 0 ] && [ "$DL_OK" = "$WL_OK" ] ||
        fail "$CUR: after a failed replacement the pool is not whole again: $DL_OK ok / $DL_NF nf / $DL_FAILED failed, $(rel_segments_of "$FI_PID") of 1 segments"
    rel_stop_check "$CUR" "$FI_PID"
    rel_assert_no_objects_of "$CUR" "$FI_PID"
}

# leak_canary: in a sanitizer build, a daemon that loses memory (GF_FAULT_LEAK=1) must show a
# LeakSanitizer report in its log, or the "no leak" checks above would prove nothing.
leak_canary() {
    # Not "ldd | grep -q": under pipefail, grep leaving early can kill ldd with SIGPIPE and
    # make an ASan build look like a plain one.
    local libs
    libs=$(ldd "$BIN_DIR/simplecached_fi" 2>/dev/null) || true
    if [[ $libs != *libasan* ]]; then
        log "not an ASan build: leak canary skipped"
        return 0
    fi
    local st=0
    REL_ENV=("GF_FAULT_LEAK=1")
    rel_start_cache CANARY simplecached_fi
    REL_ENV=()
    rel_wait_cache "$CANARY" || die "simplecached_fi (leak canary) did not start"
    stop "$CANARY" TERM 15 || st=$?
    CHECKS=$((CHECKS + 1))
    grep -q 'ERROR: LeakSanitizer: detected memory leaks' "$(logfile_of "$CANARY")" ||
        fail "a deliberate leak was not reported (status $st): leak checks cannot be trusted here"
    log "leak canary: the deliberate leak was reported, so leak checks are live"
}

# startup_counts FILE: the proxy's calls of each function from its start to its port (a run
# with no request), so a replacement's call numbers are computed, not assumed.
startup_counts() {
    local port st=0
    port=$(free_port)
    REL_ENV=("GF_FAULT_COUNT_FILE=$1")
    rel_start_proxy FI_PID "$port" webproxy_fi "${SEG_ARGS[@]}"
    REL_ENV=()
    wait_port "$port"
    stop "$FI_PID" TERM 15 || st=$?
    rel_check_exit "webproxy_fi (start-up counts)" "$st" "$(logfile_of "$FI_PID")"
}

# Per backend: the calls whose EINTR must be invisible (every backend also receives on the
# posix command queue, for gfctl), and the calls that make a replacement segment (none on the
# socket backends, which have no segments).
case $REL_IPC in
posix)
    EINTR_FNS="shm_sem_clockwait mq_timedsend mq_timedreceive"
    REPLACE_FNS="shm_open ftruncate posix_fallocate mmap"
    ;;
sysv)
    EINTR_FNS="shm_sem_clockwait msgsnd msgrcv mq_timedreceive"
    REPLACE_FNS="shmget shmat"
    ;;
unix | fd)
    EINTR_FNS="sendmsg recvmsg recv connect mq_timedreceive"
    REPLACE_FNS=""
    ;;
*) die "unknown backend '$REL_IPC'" ;;
esac
case "$SIDE" in
proxy)
    REL_ENV=()
    rel_start_cache CACHE_PID
    rel_wait_cache "$CACHE_PID" || die "simplecached did not start"
    sweep proxy_run "$EINTR_FNS" "${SEG_ARGS[@]}"
    # The replacement's call of each function is the first after start-up (-n 1: on posix the
    # stats object and the pool made one call each of shm_open, ftruncate, ...: the third).
    if want replacement && [ -n "$REPLACE_FNS" ]; then
        startup_counts "$WORK/startup.counts"
        for fn in $REPLACE_FNS; do
            c=$(awk -v f="$fn" '$1 == f {print $2}' "$WORK/startup.counts")
            replacement_run "$fn" $((c + 1))
        done
    fi
    rel_stop_check "simplecached" "$CACHE_PID"
    ;;
cache)
    PROXY_PORT=$(free_port)
    REL_ENV=()
    rel_start_proxy PROXY_PID "$PROXY_PORT" webproxy "${SEG_ARGS[@]}"
    wait_port "$PROXY_PORT"
    leak_canary
    sweep cache_run "$EINTR_FNS"
    rel_stop_check "webproxy" "$PROXY_PID"
    ;;
origin)
    ORIGIN_PORT=$(free_port)
    spawn ORIGIN_PID python3 -m http.server --bind 127.0.0.1 --directory "$CORPUS/files" \
        "$ORIGIN_PORT"
    wait_port "$ORIGIN_PORT"
    CACHE_PID=$ORIGIN_PID # "the cache died" check: the origin must stay up
    WL=$(rel_workload mix /small /multi /missing /empty /road.jpg)
    WL_OK=4 WL_NF=1
    sweep proxy_run "" -s "http://127.0.0.1:$ORIGIN_PORT"
    stop "$ORIGIN_PID" TERM 5 || true
    ;;
*) die "unknown side '$SIDE'" ;;
esac

assert_no_ipc_left
rel_report
finish
