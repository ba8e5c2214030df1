#!/usr/bin/env bash
# rel_signals.sh - signal storms at both daemons while they serve.
#   1. EINTR storm: the daemons' handlers are for SIGINT/SIGTERM (stop) and simplecached's
#      SIGHUP (reload); they ignore SIGPIPE, SIGUSR1, SIGUSR2, and a signal that is ignored
#      interrupts nothing. So the fault-injection builds get a counting SIGUSR1 handler without
#      SA_RESTART (GF_FAULT_SIGNAL=USR1; signals_install leaves it in place) and SIGUSR1 is
#      sent to both, thousands of times, during a concurrent load in cache mode and in origin
#      mode: every blocking call of whichever thread gets one fails with EINTR, and no request
#      may fail because of it; every byte must be right; SIGTERM still stops them cleanly.
#   2. Stop/continue storm (SIGSTOP, SIGCONT: short stalls of either peer) during load on the
#      real binaries: no failure, byte-exact.
#   3. Signals the daemons ignore (SIGPIPE is set to SIG_IGN by both; SIGWINCH, SIGCHLD, SIGURG
#      are ignored by default): they survive and serve.
# Variables set here are read by rel_common.sh functions (REL_ENV, DL_RC, ...).
# rel_signals.sh BACKEND runs the same on that --ipc backend (tests/reliability.cmake).
# shellcheck disable=SC2034
if [ -n "${1:-}" ]; then
    export GETFILE_TEST_IPC=$1
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"
[ "$REL_IPC" = posix ] || TEST_NAME="rel_signals_$REL_IPC"

rel_corpus
WL=$(rel_workload mix /multi /road.jpg /small /empty /missing /unreadable /multi /road.jpg)
WL_ORIGIN=$(rel_workload origin /multi /road.jpg /small /empty /missing /multi)
WL_SMALL=$(rel_workload small /small)
REQS=600
[ "$REL_FULL" = 1 ] && REQS=6000

# storm SIG PID...: sends SIG to each PID in turn, as fast as a shell can, until STORM_STOP
# exists or a PID is no longer ours (checked every 64 rounds: it costs more than a kill); prints
# how many it sent.
storm() {
    local sig=$1 n=0 p i
    shift
    while [ ! -e "$WORK/storm.stop" ]; do
        for p in "$@"; do
            ours "$p" || break 2
        done
        for ((i = 0; i < 64; i++)); do
            for p in "$@"; do
                kill -"$sig" "$p" 2>/dev/null && n=$((n + 1))
            done
        done
    done
    echo "$n"
}

# loaded_storm WHAT PORT WL OK_PER_PASS NF_PER_PASS SIG PID...: load with a storm beside it;
# every request must get its expected answer.
loaded_storm() {
    local what=$1 port=$2 wl=$3 okp=$4 nfp=$5 sig=$6
    shift 6
    rm -f "$WORK/storm.stop"
    storm "$sig" "$@" >"$WORK/storm.count" &
    local spid=$!
    local passes=$((REQS / $(wc -w <"$wl")))
    rel_get "$port" "$wl" $((passes * $(wc -w <"$wl"))) 6 120
    touch "$WORK/storm.stop"
    wait "$spid" || true
    local sent
    sent=$(cat "$WORK/storm.count")
    rel_add signals "$sent"
    rel_add runs
    log "$what: $sent SIG$sig sent; $DL_OK ok, $DL_NF not found, $DL_FAILED failed"
    CHECKS=$((CHECKS + 1))
    [ "$DL_RC" -eq 0 ] && [ "$DL_OK" -eq $((passes * okp)) ] && [ "$DL_NF" -eq $((passes * nfp)) ] ||
        fail "$what: requests failed under a SIG$sig storm: $(head -c 400 "$DL_DIR.err" | tr '\n' ' ')"
    CHECKS=$((CHECKS + 1))
    [ "$sent" -gt 100 ] || fail "$what: only $sent signals sent"
}

caught() { awk '$1 == "signals" {print $2}' "$1"; }

# ---- 1. EINTR storm, cache mode ----------------------------------------------------------------
PORT=$(free_port)
REL_ENV=("GF_FAULT_SIGNAL=USR1" "GF_FAULT_COUNT_FILE=$WORK/cache.counts")
rel_start_cache CACHE simplecached_fi
REL_ENV=("GF_FAULT_SIGNAL=USR1" "GF_FAULT_COUNT_FILE=$WORK/proxy.counts")
rel_start_proxy PROXY "$PORT" webproxy_fi -n 4 -z 16384
REL_ENV=()
rel_wait_cache "$CACHE" || die "simplecached_fi did not start"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || die "no service"
loaded_storm "EINTR storm, cache mode" "$PORT" "$WL" 6 2 USR1 "$PROXY" "$CACHE"
rel_stop_check "webproxy_fi after the storm" "$PROXY"
rel_stop_check "simplecached_fi after the storm" "$CACHE"
log "signals caught: proxy $(caught "$WORK/proxy.counts"), cache $(caught "$WORK/cache.counts")"
CHECKS=$((CHECKS + 1))
[ "$(caught "$WORK/proxy.counts")" -gt 10 ] && [ "$(caught "$WORK/cache.counts")" -gt 10 ] ||
    fail "the storm's signals were not caught (the handler is not installed?)"
assert_no_ipc_left

# ---- 1b. EINTR storm, origin mode (libcurl, the spool, gfserver) --------------------------------
OPORT=$(free_port)
spawn ORIGIN python3 -m http.server --bind 127.0.0.1 --directory "$CORPUS/files" "$OPORT"
wait_port "$OPORT"
PORT=$(free_port)
REL_ENV=("GF_FAULT_SIGNAL=USR1" "GF_FAULT_COUNT_FILE=$WORK/origin.counts")
rel_start_proxy PROXY "$PORT" webproxy_fi -s "http://127.0.0.1:$OPORT"
REL_ENV=()
wait_port "$PORT"
loaded_storm "EINTR storm, origin mode" "$PORT" "$WL_ORIGIN" 5 1 USR1 "$PROXY"
rel_stop_check "webproxy_fi (origin) after the storm" "$PROXY"
log "signals caught: proxy (origin) $(caught "$WORK/origin.counts")"
stop "$ORIGIN" TERM 5 || true

# ---- 2. stop/continue storm ----------------------------------------------------------------------
PORT=$(free_port)
rel_start_cache CACHE
rel_start_proxy PROXY "$PORT" webproxy -n 4 -z 16384
rel_wait_cache "$CACHE" || die "simplecached did not start"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || die "no service"
# 60 stop/continue pairs per daemon (120 with RELIABILITY_FULL), 20 ms stopped each; loads
# run back to back meanwhile, each must fully succeed.
PAIRS=60
[ "$REL_FULL" = 1 ] && PAIRS=600
stall_storm() {
    local n=0 i p
    for ((i = 0; i < PAIRS; i++)); do
        for p in "$PROXY" "$CACHE"; do
            ours "$p" || continue
            kill -STOP "$p" 2>/dev/null
            sleep 0.02
            kill -CONT "$p" 2>/dev/null
            n=$((n + 2))
            sleep 0.01
        done
    done
    echo "$n" >"$WORK/stall.count"
}
stall_storm &
SPID=$!
loads=0
while kill -0 "$SPID" 2>/dev/null; do
    rel_get "$PORT" "$WL" 96 6 120
    loads=$((loads + 1))
    CHECKS=$((CHECKS + 1))
    [ "$DL_RC" -eq 0 ] && [ "$DL_OK" -eq 72 ] ||
        fail "requests failed under a stop/continue storm: $(head -c 300 "$DL_DIR.err" | tr '\n' ' ')"
done
wait "$SPID" || true
kill -CONT "$PROXY" "$CACHE" 2>/dev/null || true
rel_add signals "$(cat "$WORK/stall.count")"
rel_add runs
log "stop/continue storm: $(cat "$WORK/stall.count") signals during $loads loads of 96 requests"

# ---- 3. ignored signals ----------------------------------------------------------------------------
REQS=120
for sig in PIPE WINCH CHLD URG; do
    loaded_storm "SIG$sig storm" "$PORT" "$WL" 6 2 "$sig" "$PROXY" "$CACHE"
done
CHECKS=$((CHECKS + 1))
rel_alive "$PROXY" && rel_alive "$CACHE" || fail "a daemon died of an ignored signal"
rel_stop_check "webproxy" "$PROXY"
rel_stop_check "simplecached" "$CACHE"

assert_no_ipc_left
rel_report
finish
