#!/usr/bin/env bash
# cache_start_order.sh - start orders: cache first; proxy first (ERROR within bounded time while
# no cache runs, then served once the cache starts); cache never started (every request answers
# ERROR within bounded time); a cache restart is noticed. Both exit 0 and leave nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_classic_set
F=/courses/ud923/filecorpus/paraglider.jpg

# expect_error_within PORT MS: one request answers ERROR within MS milliseconds.
expect_error_within() {
    local line st ms
    line=$(gfget "$1" "$F")
    st=$(status_of "$line")
    ms=$(echo "$line" | cut -d' ' -f4)
    check "no cache: ERROR (got: $line)" test "$st" = ERROR
    check "no cache: answered within $2 ms (took $ms)" test "$ms" -lt "$2"
}

log "10a: cache first, then proxy"
start_cache CACHE -t 2
PORT=$(free_port)
start_proxy PROXY "$PORT" 4 4 65536
expect_get "$PORT" "$F" OK
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left

log "10b: proxy first, then cache"
PORT=$(free_port)
start_proxy PROXY "$PORT" 4 4 65536
expect_error_within "$PORT" 5000
expect_error_within "$PORT" 5000
start_cache CACHE -t 2
t0=$(date +%s%N)
check "served once the cache is up" wait_for 15 get_ok "$PORT" "$F"
ms=$((($(date +%s%N) - t0) / 1000000))
log "first success ${ms} ms after the cache started"
check "noticed the new cache within 5 s (took $ms ms)" test "$ms" -lt 5000

log "10b': the cache restarts; the proxy follows it"
stop_ok "$CACHE" TERM simplecached
expect_error_within "$PORT" 5000
start_cache CACHE -t 2
check "served by the restarted cache" wait_for 15 get_ok "$PORT" "$F"
stop_ok "$CACHE" TERM simplecached
stop_ok "$PROXY" TERM webproxy
assert_no_ipc_left

log "10c: the cache is never started"
PORT=$(free_port)
start_proxy PROXY "$PORT" 2 2 4096
for _ in 1 2 3 4 5; do
    expect_error_within "$PORT" 5000
done
stop_ok "$PROXY" INT webproxy
assert_no_ipc_left
finish
