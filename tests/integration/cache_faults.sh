#!/usr/bin/env bash
# cache_faults.sh - a filling cache under faults of its store and its origin: an entry damaged
# (same size, one byte changed), truncated or removed under the running cache; a full disk (a
# 1 MiB tmpfs under a larger --store-max); a read-only store; a body whose length does not
# match its Content-Length; a 304 naming another ETag. Each gives a clear log line and a
# correct answer: the right bytes, or a clean ERROR / short transfer, never a complete body of
# wrong bytes, never a hang.
# SPDX-License-Identifier: MIT
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

# lib.sh runs us in a private mount namespace: the tmpfs goes with it, whatever happens.
mkdir -p "$STORE"
mount -t tmpfs -o size=1m,mode=0700 tmpfs "$STORE" || die "cannot mount a tmpfs on $STORE"

start_origin
start_fill_cache CACHE --origin-retry-ms 50 --store-max 100000000
CLOG=$(logfile_of "$CACHE")
PPORT=$(free_port)
start_proxy PROXY "$PPORT" 4 4 65536
logged() { grep -q -F "$1" "$CLOG"; }

# entry_of PATH: the entry file of PATH (the one whose header names it).
entry_of() { grep -l -F -a "$1" "$STORE"/e-* 2>/dev/null | head -n 1; }
# flip FILE OFFSET_FROM_END: changes one byte of FILE (same size).
flip() {
    python3 - "$1" "$2" <<'PY'
import os, sys
path, back = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) - back)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0xFF]))
PY
}
# not_ok PORT PATH: one request answers ERROR or a short transfer, and saves no body.
not_ok() {
    local line out="$WORK/nok.$RANDOM"
    line=$(gfget "$1" "$2" --out "$out")
    check "GET $2: ERROR or SHORT (got: $line)" test "$(status_of "$line")" = ERROR -o "$(status_of "$line")" = SHORT
    check "GET $2: no body saved as complete" test ! -e "$out"
}

# ---- damaged, truncated, removed entries under the running cache ----
# Several chunks (65536-byte segments): the last one is held back, the client sees SHORT.
fetch_ok "$PPORT" /ok/300000/d1 300000
fetch_ok "$PPORT" /ok/300000/d1 300000
check "d1: filled then a hit" test "$(attempts /ok/300000/d1)" -eq 1
E=$(entry_of /ok/300000/d1)
check "d1: its entry file exists" test -n "$E"
flip "$E" 1000
not_ok "$PPORT" /ok/300000/d1
check "d1 damaged: logged" wait_for 10 logged "store: the entry of '/ok/300000/d1' is damaged"
fetch_ok "$PPORT" /ok/300000/d1 300000
check "d1 damaged: fetched again (got $(attempts /ok/300000/d1))" test "$(attempts /ok/300000/d1)" -eq 2
# One chunk: nothing was promised, the answer is ERROR.
fetch_ok "$PPORT" /ok/1000/d2 1000
flip "$(entry_of /ok/1000/d2)" 10
expect_status "$PPORT" /ok/1000/d2 ERROR
fetch_ok "$PPORT" /ok/1000/d2 1000
check "d2 damaged: fetched again (got $(attempts /ok/1000/d2))" test "$(attempts /ok/1000/d2)" -eq 2
# Truncated: the size no longer matches.
fetch_ok "$PPORT" /ok/100000/d3 100000
truncate -s 50000 "$(entry_of /ok/100000/d3)"
fetch_ok "$PPORT" /ok/100000/d3 100000
check "d3 truncated: logged" logged "store: the entry of '/ok/100000/d3' is damaged; fetching it again"
check "d3 truncated: fetched again (got $(attempts /ok/100000/d3))" test "$(attempts /ok/100000/d3)" -eq 2
# Removed.
fetch_ok "$PPORT" /ok/100000/d4 100000
rm -f "$(entry_of /ok/100000/d4)"
fetch_ok "$PPORT" /ok/100000/d4 100000
check "d4 removed: logged" logged "store: the entry of '/ok/100000/d4' is gone"
check "d4 removed: fetched again (got $(attempts /ok/100000/d4))" test "$(attempts /ok/100000/d4)" -eq 2

# ---- a full disk: 1 MiB of tmpfs under a 100 MB bound ----
check "the store emptied (gfctl ban /)" "$BIN_DIR/gfctl" ban /
fetch_ok "$PPORT" /ok/400000/f1 400000
fetch_ok "$PPORT" /ok/400000/f2 400000
fetch_ok "$PPORT" /ok/400000/f3 400000
check "full disk: the least recently used entry evicted for room" \
    logged "store: evicted '/ok/400000/f1' (400"
check "full disk: ... logged as the disk being full" logged "the disk is full"
fetch_ok "$PPORT" /ok/400000/f3 400000
check "full disk: the new entry was kept (a hit)" test "$(attempts /ok/400000/f3)" -eq 1
# Larger than the whole disk (but not the bound): served from memory, not kept.
fetch_ok "$PPORT" /ok/3000000/big 3000000
check "larger than the disk: logged" logged "store: no room for '/ok/3000000/big'"
check "... served from memory, not kept" wait_for 10 logged "store: '/ok/3000000/big' served from memory, not kept"
fetch_ok "$PPORT" /ok/3000000/big 3000000
check "... and nothing evicted for it" test -n "$(entry_of /ok/400000/f3)"
check "... so the next request fetches it again (got $(attempts /ok/3000000/big))" \
    test "$(attempts /ok/3000000/big)" -eq 2
check "no temporary file left" test -z "$(store_tmp_files)"

# ---- a read-only store ----
mount -o remount,ro "$STORE"
fetch_ok "$PPORT" /ok/200000/r1 200000
check "read-only store: logged" logged "store: cannot create a file for '/ok/200000/r1'"
fetch_ok "$PPORT" /ok/400000/f3 400000
check "read-only store: kept entries are still hits" test "$(attempts /ok/400000/f3)" -eq 1
mount -o remount,rw "$STORE"
fetch_ok "$PPORT" /ok/200000/r1 200000
fetch_ok "$PPORT" /ok/200000/r1 200000
check "writable again: kept (2 fetches, then a hit; got $(attempts /ok/200000/r1))" \
    test "$(attempts /ok/200000/r1)" -eq 2

# ---- lengths that do not match Content-Length ----
not_ok "$PPORT" /wrong-length-short/200000/l1
not_ok "$PPORT" /wrong-length-long/200000/l2
check "wrong length (short): logged" wait_for 10 logged "wrong-length-short/200000/l1' failed: transfer closed"
check "wrong length (long): logged" wait_for 10 logged "wrong-length-long/200000/l2': the origin sent more than Content-Length"
check "wrong lengths: nothing kept" test -z "$(entry_of /wrong-length)"

# ---- a 304 naming another ETag than the kept entry's ----
fetch_ok "$PPORT" "/cv-other/max-age=1/5000/t" 5000
sleep 2
fetch_ok "$PPORT" "/cv-other/max-age=1/5000/t" 5000
check "304 with another ETag: logged" logged "names ETag \"other\", the kept entry has \"v5000\""
check "... one conditional request" \
    test "$(cond_attempts "/cv-other/max-age=1/5000/t" 'if-none-match="v5000"')" -eq 1
check "... then the body fetched again without conditions (got $(attempts "/cv-other/max-age=1/5000/t"))" \
    test "$(attempts "/cv-other/max-age=1/5000/t")" -eq 2

# ---- damaged while the cache was stopped: the first hit after the restart checks it ----
fetch_ok "$PPORT" /ok/300000/z 300000
stop_ok "$CACHE" TERM simplecached
flip "$(entry_of /ok/300000/z)" 5000
start_fill_cache CACHE --origin-retry-ms 50 --store-max 100000000
CLOG=$(logfile_of "$CACHE")
not_ok "$PPORT" /ok/300000/z
check "damaged before the restart: logged" wait_for 10 logged "store: the entry of '/ok/300000/z' is damaged"
fetch_ok "$PPORT" /ok/300000/z 300000
fetch_ok "$PPORT" /ok/300000/z 300000
check "... fetched again once, then a hit (got $(attempts /ok/300000/z))" test "$(attempts /ok/300000/z)" -eq 2

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 5 || true
umount "$STORE"
assert_no_ipc_left
finish
