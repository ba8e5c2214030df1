#!/usr/bin/env bash
# http_wrk.sh - wrk against webproxy --http in cache mode (a real simplecached): keep-alive and
# one request per connection, 1 KB and 1 MB files; every response is 200 with the whole body,
# no socket error, and each one is in the access log; SIGTERM leaves nothing behind.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$SRC_DIR/tests/integration/cache_lib.sh"

command -v wrk >/dev/null || die "wrk is not installed (scripts/deps.sh test)"
add_file /small.txt 1000
add_file /big.bin 1000000
start_cache CACHE -t 2

GPORT=$(free_port)
HPORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$GPORT" --http "127.0.0.1:$HPORT" -t 4 -n 4 \
    --access-log "$WORK/access.log"
wait_port "$HPORT"
wait_for 15 test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/small.txt")" = 200 ||
    die "the cache is not reachable through --http"

# run NAME PATH BYTES [wrk options]: 2 s of wrk with 8 connections; checks its totals.
run() {
    local name=$1 path=$2 bytes=$3 res before after
    shift 3
    before=$(grep -c " $path OK $bytes " "$WORK/access.log" || true)
    res=$(timeout 30 wrk -t 2 -c 8 -d 2s --timeout 5s "$@" -s "$SRC_DIR/tests/integration/http_wrk.lua" \
        "http://127.0.0.1:$HPORT$path" -- "$bytes" | grep '^responses' || true)
    log "$name: $res"
    check "$name: wrk ran and got responses ($res)" \
        test "$(awk '{ print ($2 > 0) }' <<<"$res")" = 1
    check "$name: every response 200 with $bytes bytes, no socket error" \
        test "$(awk '{ print $3 + $5 + $6 + $7 + $8 + $9 }' <<<"$res")" = 0
    # Each response wrk counted went through webproxy: the access log has at least as many.
    after_has() { after=$(grep -c " $path OK $bytes " "$WORK/access.log" || true)
        test $((after - before)) -ge "$(awk '{ print $2 }' <<<"$res")"; }
    check "$name: each response is in the access log" wait_for 10 after_has
}

# The script's check itself: told to expect 999 bytes, it counts every response bad.
res=$(timeout 30 wrk -t 1 -c 1 -d 1s -s "$SRC_DIR/tests/integration/http_wrk.lua" \
    "http://127.0.0.1:$HPORT/small.txt" -- 999 | grep '^responses' || true)
check "a wrong length is counted bad ($res)" test "$(awk '{ print ($2 > 0 && $4 == $2) }' <<<"$res")" = 1

run "keep-alive, 1 KB" /small.txt 1000
run "keep-alive, 1 MB" /big.bin 1000000
run "one request per connection, 1 KB" /small.txt 1000 -H "Connection: close"
run "one request per connection, 1 MB" /big.bin 1000000 -H "Connection: close"

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
