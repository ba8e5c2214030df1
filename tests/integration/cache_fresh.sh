#!/usr/bin/env bash
# cache_fresh.sh - freshness of the store of simplecached --origin: Cache-Control no-store,
# private and no-cache are never kept; s-maxage, max-age and Expires set how long an entry is a
# hit, and a stale entry is fetched again, or revalidated (If-None-Match, 304) when it has
# validators; an entry of an earlier format is removed at start; --ttl covers responses that say nothing, and
# without it they stay fresh. Expiry survives a restart.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

start_origin
start_fill_cache CACHE
PPORT=$(free_port)
start_proxy PROXY "$PPORT" 8 8 65536

# twice PATH SIZE: two requests, both OK with the origin's bytes.
twice() {
    fetch_ok "$PPORT" "$1" "$2"
    fetch_ok "$PPORT" "$1" "$2"
}

for cc in no-store private no-cache "no-store, max-age=60" "max-age=0"; do
    twice "/cc/$cc/5000/n" 5000
    check "Cache-Control: $cc: never kept (2 origin requests, got $(attempts "/cc/$cc/5000/n"))" \
        test "$(attempts "/cc/$cc/5000/n")" -eq 2
done
check "nothing of them in the store" test -z "$(store_files)"

# Fresh for what the origin says.
twice "/cc/max-age=3600/5000/f" 5000
check "max-age=3600: the second request is a hit" test "$(attempts "/cc/max-age=3600/5000/f")" -eq 1
twice "/cc/s-maxage=60, max-age=0/5000/s" 5000
check "s-maxage wins over max-age" test "$(attempts "/cc/s-maxage=60, max-age=0/5000/s")" -eq 1
twice /expires/60/5000/e 5000
check "Expires in a minute: a hit" test "$(attempts /expires/60/5000/e)" -eq 1
twice /expires/-60/5000/p 5000
check "Expires in the past: never kept" test "$(attempts /expires/-60/5000/p)" -eq 2
twice /expires/bad/5000/b 5000
check "an invalid Expires: stale at once, never kept" test "$(attempts /expires/bad/5000/b)" -eq 2
twice /ok/5000/nothing 5000
check "no freshness said, no --ttl: kept" test "$(attempts /ok/5000/nothing)" -eq 1

# Stale after max-age: fetched again. The entry is 1 s fresh; waiting 2 s passes that. The
# second request is normally a hit (on --ipc fd the proxy then keeps its descriptor, at most as
# long as the entry is fresh: docs/ipc.md, "Kept descriptors"); on a loaded machine it may come
# after the second and fetch again, so the count is taken after it.
fetch_ok "$PPORT" "/cc/max-age=1/5000/x" 5000
fetch_ok "$PPORT" "/cc/max-age=1/5000/x" 5000
n=$(attempts "/cc/max-age=1/5000/x")
sleep 2
fetch_ok "$PPORT" "/cc/max-age=1/5000/x" 5000
check "max-age=1, 2 s later: fetched again (after $n)" \
    test "$(attempts "/cc/max-age=1/5000/x")" -eq $((n + 1))
check "... logged as expired" grep -q "'/cc/max-age=1/5000/x' expired" "$(logfile_of "$CACHE")"

# Revalidation: a stale entry that has validators is asked about with If-None-Match (and
# If-Modified-Since); the origin's 304 sends no body, and the kept bytes are served.
fetch_ok "$PPORT" "/cv/max-age=1/5000/r" 5000
sleep 2
fetch_ok "$PPORT" "/cv/max-age=1/5000/r" 5000
check "revalidated: one full GET only" test "$(attempts "/cv/max-age=1/5000/r")" -eq 1
check "exactly one conditional request, with If-None-Match" \
    test "$(cond_attempts "/cv/max-age=1/5000/r" 'if-none-match="v5000"')" -eq 1
check "... and If-Modified-Since" \
    test "$(cond_attempts "/cv/max-age=1/5000/r" 'if-modified-since=Tue, 01 Dec 2026')" -eq 1
check "... answered 304, logged" grep -q "'/cv/max-age=1/5000/r': revalidated (304" \
    "$(logfile_of "$CACHE")"
check "... counted as not_modified" test "$(cache_figure not_modified)" -eq 1

# The expiry is kept in the entry: a restart still knows max-age=60 is fresh and max-age=1 goes.
fetch_ok "$PPORT" "/cc/max-age=1/5000/y" 5000
stop_ok "$CACHE" TERM simplecached
# An entry of an earlier format (no validators) is removed at start, logged.
printf 'GFSTORE2%024d/old' 0 >"$STORE/e-00000000000000aa"
sleep 2
start_fill_cache CACHE --ttl 1
check "an old-format entry is removed at start" test ! -e "$STORE/e-00000000000000aa"
check "... logged" grep -q "e-00000000000000aa': an entry of an older format" "$(logfile_of "$CACHE")"
fetch_ok "$PPORT" "/cc/max-age=3600/5000/f" 5000
check "after a restart, a fresh entry is a hit" test "$(attempts "/cc/max-age=3600/5000/f")" -eq 1
fetch_ok "$PPORT" "/cc/max-age=1/5000/y" 5000
check "after a restart, a stale one is fetched again" test "$(attempts "/cc/max-age=1/5000/y")" -eq 2

# --ttl 1: responses that say nothing are fresh for 1 s; what the origin says still wins.
fetch_ok "$PPORT" /ok/5000/t 5000
fetch_ok "$PPORT" "/cc/max-age=60/5000/g" 5000
sleep 2
fetch_ok "$PPORT" /ok/5000/t 5000
check "--ttl 1, 2 s later: fetched again" test "$(attempts /ok/5000/t)" -eq 2
fetch_ok "$PPORT" "/cc/max-age=60/5000/g" 5000
check "--ttl 1 does not shorten max-age=60" test "$(attempts "/cc/max-age=60/5000/g")" -eq 1

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
