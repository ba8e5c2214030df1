#!/usr/bin/env bash
# cache_reload.sh - SIGHUP makes simplecached re-read its index: new requests see the new one,
# a transfer in flight finishes byte-exact; an index with a malformed line, or one that cannot
# be read, is refused with a log line saying why and the old one keeps serving.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_file /a.bin 3000
add_file /big.bin $((16 * 1024 * 1024))
make_file "$CONTENT/files/a2.bin" 4000
make_file "$CONTENT/files/b.bin" 5000
INDEX=$CONTENT/locals.txt
cp "$INDEX" "$WORK/index.1"

progress_at_least() { [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
# get_is PORT PATH FILE: one request returns OK with the bytes of FILE.
get_is() {
    local out="$WORK/got.$$" line rc
    line=$(gfget "$1" "$2" --out "$out" --timeout 20)
    [ "$(status_of "$line")" = OK ] && cmp -s "$out" "$3"
    rc=$?
    rm -f "$out"
    return $rc
}
status_is() { [ "$(status_of "$(gfget "$1" "$2" --timeout 20)")" = "$3" ]; }
log_count() { grep -c -- "$2" "$CLOG" || true; } # CLOG PATTERN
logged_n() { [ "$(log_count "$CLOG" "$1")" -ge "$2" ]; }

start_cache CACHE -t 2
CLOG=$(logfile_of "$CACHE")
PORT=$(free_port)
start_proxy PROXY "$PORT" 4 4 8192
check "before: /a.bin is the first file" get_is "$PORT" /a.bin "$CONTENT/files/a.bin"
check "before: /b.bin is not in the index" status_is "$PORT" /b.bin FILE_NOT_FOUND

# A slow transfer of /big.bin is under way when the index changes under it.
rm -f "$WORK/progress"
spawn SLOW python3 "$WORK/gfget.py" "$PORT" /big.bin --rate 8000000 --progress "$WORK/progress" \
    --out "$WORK/big.out"
check "a transfer is mid-way" wait_for 30 progress_at_least "$WORK/progress" 1048576

# A new index: /a.bin now names another file, /b.bin is added, /big.bin is gone.
printf '/a.bin files/a2.bin\n/b.bin files/b.bin\n' >"$INDEX.new"
mv "$INDEX.new" "$INDEX"
kill -HUP "$CACHE"
check "the reload is logged" wait_for 10 logged_n "reloaded: serving 2 of 2 entries" 1
check "after: /a.bin is the new file" get_is "$PORT" /a.bin "$CONTENT/files/a2.bin"
check "after: /b.bin is served" get_is "$PORT" /b.bin "$CONTENT/files/b.bin"
check "after: /big.bin is no longer in the index" status_is "$PORT" /big.bin FILE_NOT_FOUND
check "the transfer in flight ends" wait_for 60 eval "! proc_alive $SLOW"
wait "$SLOW" 2>/dev/null || true
line=$(tail -n 1 "$(logfile_of "$SLOW")")
check "the transfer in flight completed (got: $line)" test "$(status_of "$line")" = OK
check "... byte-exact" cmp -s "$WORK/big.out" "$CONTENT/files/big.bin"

# A bad index (a malformed line) is refused whole: the old entries keep being served.
printf '/a.bin files/a.bin\nthis-line-has-one-field\n' >"$INDEX.new"
mv "$INDEX.new" "$INDEX"
kill -HUP "$CACHE"
check "a malformed index is refused, saying why" \
    wait_for 10 logged_n "reload refused: the cache index 'locals.txt' has 1 malformed line" 1
check "refused: /a.bin is still the second file" get_is "$PORT" /a.bin "$CONTENT/files/a2.bin"
check "refused: /b.bin is still served" get_is "$PORT" /b.bin "$CONTENT/files/b.bin"

# An index that cannot be read is refused too.
rm -f "$INDEX"
kill -HUP "$CACHE"
check "a missing index is refused, saying why" \
    wait_for 10 logged_n "reload refused: cannot read the cache index 'locals.txt'" 1
check "missing: /b.bin is still served" get_is "$PORT" /b.bin "$CONTENT/files/b.bin"
check "no reload was taken but the first" test "$(log_count "$CLOG" "reloaded:")" -eq 1

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
