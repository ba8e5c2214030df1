#!/usr/bin/env bash
# proxy_cache_fallback.sh - webproxy with both the cache and -s: the origin takes a request only
# while nothing was sent to the client. The cache killed mid-stream (after the OK header) means
# a short transfer for the client and no request at the origin; a miss still goes there.
# GETFILE_TEST_IPC picks the backend (tests/ipc.cmake runs it on unix and fd too).
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

FAULT=$SRC_DIR/tests/integration/fault_origin.py
BIG=/ok/67108864 # a path the origin serves too (fault_origin.py: /ok/SIZE)
add_file "$BIG" $((64 * 1024 * 1024))
progress_at_least() { [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
# origin_got PATH: the origin's access log (--verbose) has a GET for PATH.
origin_got() { grep -qF "\"GET $1 HTTP/1.1\"" "$(logfile_of "$ORIGIN")"; }

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT" --verbose
wait_port "$OPORT"
start_cache CACHE -t 2
PORT=$(free_port)
# Small segments and a slow reader: the 64 MiB file is far from done when the cache dies.
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 2 -n 2 -z 8192 -s "http://127.0.0.1:$OPORT"
wait_port "$PORT"

# The origin's log records what the proxy asks it: a cache miss goes there.
line=$(gfget "$PORT" /ok/1000)
check "a cache miss is served by the origin (got: $line)" test "$(status_of "$line")" = OK
check "... and is in the origin's log" wait_for 10 origin_got /ok/1000

spawn CLIENT python3 "$WORK/gfget.py" "$PORT" "$BIG" --rate 4000000 --progress "$WORK/progress" \
    --out "$WORK/big.out"
check "the client is mid-transfer from the cache" wait_for 30 progress_at_least "$WORK/progress" 1048576
kill -KILL "$CACHE"
wait "$CACHE" 2>/dev/null || true
check "the client ends" wait_for 60 eval "! proc_alive $CLIENT"
wait "$CLIENT" 2>/dev/null || true
line=$(tail -n 1 "$(logfile_of "$CLIENT")")
if [ "$(ipc_of)" = fd ]; then
    # --ipc fd: the proxy holds the file's descriptor, the transfer needs the cache no more.
    check "fd: the transfer in flight completes (got: $line)" test "$(status_of "$line")" = OK
    check "fd: ... with the right bytes" cmp -s "$WORK/big.out" "$CONTENT/files$BIG"
else
    check "the client saw a short transfer (got: $line)" test "$(status_of "$line")" = SHORT
fi
# The worker that had the transfer has returned (the client saw the close); a request after it
# on the same proxy shows the origin is reachable, so silence about $BIG is not a dead origin.
line=$(gfget "$PORT" /ok/2000)
check "the origin still answers through the proxy (got: $line)" test "$(status_of "$line")" = OK
check "... and logged it" wait_for 10 origin_got /ok/2000
check "the origin never got a request for $BIG" eval "! origin_got $BIG"

# A fresh cache sweeps the dead one's queue; then everything stops cleanly.
start_cache CACHE -t 2
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 10 || true
assert_no_ipc_left
finish
