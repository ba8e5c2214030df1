#!/usr/bin/env bash
# cache_both.sh - webproxy's both mode (-n/-z with -s) in front of a cache that fills itself:
# every miss makes exactly one origin request (the cache's), a 404 included; the proxy's own
# origin serves only while the cache is down, or for a cache that does not fill.
# SPDX-License-Identifier: MIT
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

start_origin
start_fill_cache CACHE --origin-retry-ms 50
PPORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t 4 -n 4 -z 65536 -s "$OURL"
wait_port "$PPORT" 30

# A miss: the cache fetches it, the proxy does not; then a hit.
fetch_ok "$PPORT" /ok/300000/a 300000
check "miss: one origin request (got $(attempts /ok/300000/a))" test "$(attempts /ok/300000/a)" -eq 1
fetch_ok "$PPORT" /ok/300000/a 300000
check "then a hit: still one (got $(attempts /ok/300000/a))" test "$(attempts /ok/300000/a)" -eq 1

# The origin's 404, through the cache: FILE_NOT_FOUND with one request, not a second from the
# proxy.
expect_status "$PPORT" /missing/b FILE_NOT_FOUND
check "404: one origin request (got $(attempts /missing/b))" test "$(attempts /missing/b)" -eq 1
expect_status "$PPORT" /missing/b FILE_NOT_FOUND
check "404 again: asked again once (got $(attempts /missing/b))" test "$(attempts /missing/b)" -eq 2

# A 503 the cache retried and gave up on: ERROR, and the proxy does not start over (3 attempts,
# the cache's, not 6).
expect_status "$PPORT" /status/503/c ERROR
check "503: the cache's three attempts only (got $(attempts /status/503/c))" \
    test "$(attempts /status/503/c)" -eq 3

# The cache down: the proxy's origin is the fallback.
stop_ok "$CACHE" TERM simplecached
fetch_ok "$PPORT" /ok/200000/d 200000
check "cache down: the proxy's origin served it, one request (got $(attempts /ok/200000/d))" \
    test "$(attempts /ok/200000/d)" -eq 1
expect_status "$PPORT" /missing/e FILE_NOT_FOUND
check "cache down, 404: one request (got $(attempts /missing/e))" test "$(attempts /missing/e)" -eq 1

# A cache that does not fill (no --origin): its NOT_FOUND still sends the proxy to its origin.
start_cache CACHE -t 4 --store-dir "$STORE"
fetch_ok "$PPORT" /ok/300000/a 300000
check "the store still has /ok/300000/a: a hit, no request (got $(attempts /ok/300000/a))" \
    test "$(attempts /ok/300000/a)" -eq 1
fetch_ok "$PPORT" /ok/100000/f 100000
check "a cache that does not fill: the proxy's origin, one request (got $(attempts /ok/100000/f))" \
    test "$(attempts /ok/100000/f)" -eq 1

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
