#!/usr/bin/env bash
# cache_delay.sh - the -d lookup delay shows the cache's workers run in parallel: T workers serve
# T slow lookups in about one delay, while one worker needs T delays.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_classic_set
T=4
DELAY_US=500000
wl="$WORK/small.txt"
awk '{print $1}' "$CONTENT/locals.txt" | grep 1kb-sample | head -n "$T" >"$wl"
# The reachability probe asks for a file outside the batch: on fd the proxy keeps a looked-up
# descriptor for a moment, and a batch file probed just before would skip its delay.
probe=$(awk '{print $1}' "$CONTENT/locals.txt" | grep 1kb-sample | sed -n "$((T + 1))p")
[ -n "$probe" ] || die "need $((T + 1)) small files"

PORT=$(free_port)
start_proxy PROXY "$PORT" 8 8 65536

# timed_batch THREADS: T requests by T client threads through a cache of THREADS workers;
# sets BATCH_MS to the elapsed milliseconds. (Not run in $(...): spawn and check need this shell.)
timed_batch() {
    local cache t0 ms
    start_cache cache -t "$1" -d "$DELAY_US"
    # Wait until the proxy found this cache (it backs off up to 1 s between lookups).
    wait_for 15 get_ok "$PORT" "$probe" || die "cache with -t $1 not reachable"
    t0=$(date +%s%N)
    check "batch with $1 cache threads succeeds" download "$WORK/dl.$1" "$PORT" "$wl" "$T" "$T"
    ms=$((($(date +%s%N) - t0) / 1000000))
    check "batch with $1 cache threads: bytes match" verify_all "$WORK/dl.$1" "$wl"
    stop_ok "$cache" TERM simplecached
    BATCH_MS=$ms
}

timed_batch "$T"
par=$BATCH_MS
timed_batch 1
ser=$BATCH_MS
log "$T lookups of ${DELAY_US} us: ${par} ms with $T workers, ${ser} ms with 1 worker"
# One worker: T delays at least. T workers: about one delay; allow a lot of noise.
check "one worker serialises the delays (${ser} ms >= $((T * DELAY_US / 1000)) ms)" \
    test "$ser" -ge $((T * DELAY_US / 1000))
check "$T workers overlap the delays (${par} ms >= $((DELAY_US / 1000)) ms)" \
    test "$par" -ge $((DELAY_US / 1000))
check "$T workers are at least twice as fast as one (ratio ${par}/${ser} < 0.5)" \
    test $((par * 2)) -lt "$ser"

stop_ok "$PROXY" TERM webproxy
assert_no_ipc_left
finish
