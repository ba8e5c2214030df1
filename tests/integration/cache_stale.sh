#!/usr/bin/env bash
# cache_stale.sh - simplecached --stale-if-error: while the origin is down, a stale entry within
# the window past its expiry is served byte-exact (logged as stale); outside it, ERROR.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

P="/cc/max-age=1/5000/s"
start_origin
start_fill_cache CACHE --stale-if-error 3600 --origin-retries 1
PPORT=$(free_port)
start_proxy PROXY "$PPORT" 8 8 65536

fetch_ok "$PPORT" "$P" 5000
check "filled once" test "$(attempts "$P")" -eq 1
# The entry is 1 s fresh: 2 s later it is stale (and within the 3600 s window).
sleep 2
stop "$ORIGIN" TERM 5 || true
fetch_ok "$PPORT" "$P" 5000
check "origin down: the stale entry is served, logged as stale" \
    grep -q "'$P': served stale" "$(logfile_of "$CACHE")"
check "... counted as stale" test "$(cache_figure requests.stale)" -eq 1

# A window of 1 s: the entry is at least 2 s past its expiry by now, so it is not served.
stop_ok "$CACHE" TERM simplecached
sleep 1
start_fill_cache CACHE --stale-if-error 1 --origin-retries 1
expect_status "$PPORT" "$P" ERROR

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
