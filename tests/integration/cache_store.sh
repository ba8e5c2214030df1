#!/usr/bin/env bash
# cache_store.sh - the store of simplecached --origin: least recently used entries are evicted
# to stay under --store-max, a body larger than the bound is served and not kept; after a
# restart complete entries are hits with no origin request, while a fill cut by kill -9 (a
# temporary file) and a damaged entry are removed and fetched again.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

BOUND=1000000
# entry_of PATH: the store file of PATH (e- and the FNV-1a 64 hash of the path).
entry_of() {
    python3 -c 'import sys
h = 1469598103934665603
for b in sys.argv[1].encode():
    h = ((h ^ b) * 1099511628211) & (2**64 - 1)
print("e-%016x" % h)' "$1"
}
store_bytes() { find "$STORE" -maxdepth 1 -type f -name 'e-*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
under_bound() { [ "$(store_bytes)" -le "$BOUND" ]; }
has_entry() { [ -f "$STORE/$(entry_of "$1")" ]; }

start_origin
start_fill_cache CACHE --store-max "$BOUND"
PPORT=$(free_port)
start_proxy PROXY "$PPORT" 8 8 65536

# Three entries of about 300 kB fit in 1 MB; a fourth needs room.
for p in a b c; do
    fetch_ok "$PPORT" /ok/300000/$p 300000
done
check "three entries kept" test "$(store_files | wc -l)" -eq 3
fetch_ok "$PPORT" /ok/300000/a 300000 # a is now the most recently used; b the least
check "a was a hit" test "$(attempts /ok/300000/a)" -eq 1
fetch_ok "$PPORT" /ok/300000/d 300000
check "the store stays under the bound ($(store_bytes) <= $BOUND)" under_bound
check "the least recently used entry (b) was evicted" bash -c "! test -f '$STORE/$(entry_of /ok/300000/b)'"
check "a, c and d are kept" test "$(has_entry /ok/300000/a && has_entry /ok/300000/c && has_entry /ok/300000/d && echo yes)" = yes
fetch_ok "$PPORT" /ok/300000/a 300000
check "a is still a hit" test "$(attempts /ok/300000/a)" -eq 1
fetch_ok "$PPORT" /ok/300000/b 300000
check "b was fetched again" test "$(attempts /ok/300000/b)" -eq 2
check "... evicting c, now the least recently used" bash -c "! test -f '$STORE/$(entry_of /ok/300000/c)'"
check "still under the bound ($(store_bytes))" under_bound

check "live figures: two evictions (got $(cache_figure evictions))" test "$(cache_figure evictions)" -eq 2
check "live figures: three entries in the store" wait_for 5 figure_is store.entries 3

# A body larger than the whole bound: served whole, not kept, nothing evicted for it.
before=$(store_files)
fetch_ok "$PPORT" /ok/1500000/big 1500000
check "the large body is not kept" bash -c "! test -f '$STORE/$(entry_of /ok/1500000/big)'"
check "nothing was evicted for it" test "$(store_files)" = "$before"
fetch_ok "$PPORT" /ok/1500000/big 1500000
check "so it is fetched each time" test "$(attempts /ok/1500000/big)" -eq 2
check "no temporary file left" test -z "$(store_tmp_files)"

# Restart. First a fill cut by kill -9 (the origin pauses mid-body) leaves a temporary file.
rm -f "$RELEASE"
PROG=$WORK/progress
(gfget "$PPORT" /pause/2000000/500000/k --progress "$PROG" >"$WORK/k.line") &
CLIENT=$!
got_bytes() { [ -s "$PROG" ] && [ "$(cat "$PROG")" -gt 0 ]; }
check "the cut fill had started streaming" wait_for 30 got_bytes
check "its temporary file exists" test -n "$(store_tmp_files)"
stop "$CACHE" KILL 10 || true
wait "$CLIENT" || true
check "the client of the killed cache saw a short transfer ($(cat "$WORK/k.line"))" \
    test "$(status_of "$(cat "$WORK/k.line")")" = SHORT
touch "$RELEASE"
# A damaged entry: d's file loses its last byte.
D=$STORE/$(entry_of /ok/300000/d)
truncate -s -1 "$D"
start_fill_cache CACHE2 --store-max "$BOUND"
CLOG=$(logfile_of "$CACHE2")
check "the partial fill was removed" test -z "$(store_tmp_files)"
check "... and logged" grep -q "did not complete (partial entry)" "$CLOG"
check "the damaged entry was removed" test ! -e "$D"
check "... and logged" grep -q "damaged" "$CLOG"
fetch_ok "$PPORT" /ok/300000/a 300000
fetch_ok "$PPORT" /ok/300000/b 300000
check "complete entries are hits after the restart: no origin request" \
    test "$(attempts /ok/300000/a) $(attempts /ok/300000/b)" = "1 2"
fetch_ok "$PPORT" /ok/300000/d 300000
check "the damaged one was fetched again" test "$(attempts /ok/300000/d)" -eq 2
fetch_ok "$PPORT" /pause/2000000/500000/k 2000000
check "the cut one was fetched again" test "$(attempts /pause/2000000/500000/k)" -eq 2
check "the restarted cache keeps the bound" under_bound

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE2" TERM simplecached
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
