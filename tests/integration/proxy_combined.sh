#!/usr/bin/env bash
# proxy_combined.sh - webproxy with both -s and -n/-z: the cache first, the origin on a miss or
# while no cache runs; and the mode chosen by the flags (-n/-z alone: cache only).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENT=(python3 "$SRC_DIR/tests/integration/proxy_client.py")
FAULT=$SRC_DIR/tests/integration/fault_origin.py
mkdir -p "$WORK/cache"
cd "$WORK/cache"
make_file "$WORK/cache/files/only-cached.bin" 70000
make_file "$WORK/cache/files/ok-1000" 1000 # cached copy differs from the origin's /ok/1000
printf '/only-cached.bin files/only-cached.bin\n/ok/1000 files/ok-1000\n' >locals.txt

# get PORT PATH: sets RC, and LEN and SHA from the client's line.
get() {
    RC=0
    OUT=$("${CLIENT[@]}" "$1" "$2" --timeout 30) || RC=$?
    read -r _ LEN _ SHA _ <<<"$OUT"
}
sha_file() { sha256sum "$1" | cut -d' ' -f1; }
sha_origin() { python3 "$FAULT" --sha256 "$1"; }

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
PPORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t 4 -n 2 -z 65536 -s "http://127.0.0.1:$OPORT" \
    --cache-wait 2000
wait_port "$PPORT"
CPORT=$(free_port)
spawn CONLY "$BIN_DIR/webproxy" -p "$CPORT" -t 2 -n 2 -z 65536 --cache-wait 2000
wait_port "$CPORT"

# No cache running: the combined proxy falls back to the origin; cache-only answers ERROR.
get "$PPORT" /ok/2000
check "no cache: origin answers (rc $RC: $OUT)" test "$RC $LEN $SHA" = "0 2000 $(sha_origin 2000)"
get "$PPORT" /only-cached.bin
check "no cache, not at origin: FILE_NOT_FOUND (rc $RC)" test "$RC" -eq 3
get "$CPORT" /ok/2000
check "cache-only, no cache: ERROR (rc $RC: $OUT)" test "$RC" -eq 4

spawn CACHE "$BIN_DIR/simplecached" -c locals.txt -t 2
cache_up() {
    get "$PPORT" /only-cached.bin
    [ "$RC" -eq 0 ]
}
check "the cache comes up and serves /only-cached.bin" wait_for 20 cache_up
check "cached bytes are right" test "$SHA" = "$(sha_file files/only-cached.bin)"
# A path both have: the cache wins.
get "$PPORT" /ok/1000
check "cache first: /ok/1000 is the cache's copy (rc $RC)" test "$RC $SHA" = "0 $(sha_file files/ok-1000)"
# A cache miss: the origin answers.
get "$PPORT" /ok/3000
check "cache miss: origin answers (rc $RC: $OUT)" test "$RC $SHA" = "0 $(sha_origin 3000)"
get "$PPORT" /status/404
check "miss at both: FILE_NOT_FOUND (rc $RC)" test "$RC" -eq 3
# Cache-only mode: a miss is FILE_NOT_FOUND; a hit is served.
get "$CPORT" /ok/3000
check "cache-only miss: FILE_NOT_FOUND (rc $RC: $OUT)" test "$RC" -eq 3
get "$CPORT" /only-cached.bin
check "cache-only hit (rc $RC)" test "$RC $SHA" = "0 $(sha_file files/only-cached.bin)"

for pid in "$PROXY" "$CONLY" "$CACHE"; do
    rc=0
    stop "$pid" TERM 15 || rc=$?
    check "process $pid exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
done
assert_no_ipc_left
finish
