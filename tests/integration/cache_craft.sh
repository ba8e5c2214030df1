#!/usr/bin/env bash
# cache_craft.sh - a running simplecached receives malformed, truncated, oversized and lying
# requests (cmdq_craft): each is rejected without writing into any segment, the cache counts
# exactly those rejections, and it keeps serving (a normal download through webproxy after).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_classic_set
F=/courses/ud923/filecorpus/yellowstone.jpg

start_cache CACHE -t 1 # one worker: requests are handled in order (cmdq_craft relies on it)
out="$WORK/craft.out"
rc=0
timeout 60 "$BIN_DIR/cmdq_craft" "$CACHE" "$F" "$CONTENT/files$F" >"$out" 2>&1 || rc=$?
cat "$out"
check "cmdq_craft passed (rc $rc)" test "$rc" -eq 0
check "the cache still runs" kill -0 "$CACHE"

PORT=$(free_port)
start_proxy PROXY "$PORT" 2 2 4096
expect_get "$PORT" "$F" OK
expect_get "$PORT" /courses/ud923/filecorpus/road.jpg OK
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached

# The cache's closing counters match what the tool sent: every lie was noticed.
expect=$(grep '^expect ' "$out" | sed 's/^expect //')
want_rej=$(echo "$expect" | sed -n 's/.*rejected=\([0-9]*\).*/\1/p')
want_stale=$(echo "$expect" | sed -n 's/.*stale=\([0-9]*\).*/\1/p')
stats=$(grep 'stopped:' "$(logfile_of "$CACHE")" | tail -n1)
log "cache: $stats"
got_rej=$(echo "$stats" | sed -n 's/.* \([0-9]*\) rejected.*/\1/p')
got_stale=$(echo "$stats" | sed -n 's/.* \([0-9]*\) stale.*/\1/p')
check "rejected: cache counted ${got_rej:-?}, tool sent ${want_rej:-?}" test -n "$want_rej" -a "${got_rej:-x}" = "$want_rej"
check "stale: cache counted ${got_stale:-?}, tool sent ${want_stale:-?}" test -n "$want_stale" -a "${got_stale:-x}" = "$want_stale"
check "rejections were logged" grep -q "rejected" "$(logfile_of "$CACHE")"
assert_no_ipc_left
finish
