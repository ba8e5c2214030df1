#!/usr/bin/env bash
# proxy_origin_faults.sh - origin mode against a misbehaving origin (fault_origin.py): status
# mapping, refused connections, bodies cut short or too long, stalls, chunked bodies (spooled),
# and a clean stop in the middle of a stalled transfer.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENT=(python3 "$SRC_DIR/tests/integration/proxy_client.py")
FAULT=$SRC_DIR/tests/integration/fault_origin.py
SPOOL=$WORK/spool
mkdir -p "$SPOOL" "$WORK/dl"

# get PORT PATH: one request; sets RC (proxy_client's exit status) and the fields of its line:
# LEN GOT SHA SECS (the status is in RC).
get() {
    RC=0
    OUT=$("${CLIENT[@]}" "$1" "$2" --timeout 30) || RC=$?
    read -r _ LEN GOT SHA SECS <<<"$OUT"
}
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
sha_of() { python3 "$FAULT" --sha256 "$1"; }

# expect PORT PATH RC [SIZE]: the client's exit status, and for a good file its sha256.
expect() {
    local port=$1 path=$2 want=$3 size=${4:-}
    get "$port" "$path"
    check "$path: exit $want (got $RC: $OUT)" test "$RC" -eq "$want"
    if [ -n "$size" ]; then
        check "$path: $size bytes, right content" test "$LEN $GOT $SHA" = "$size $size $(sha_of "$size")"
    fi
}

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
PPORT=$(free_port)
# No retries: each fault is mapped once (proxy_origin_retry tests the retries).
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t 4 -s "http://127.0.0.1:$OPORT" \
    --low-speed-time 1 --spool-max 3000000 --spool-dir "$SPOOL" -G 1000 --origin-retries 0
wait_port "$PPORT"

# Status mapping (exit 0 = complete OK, 3 = FILE_NOT_FOUND, 4 = ERROR, 1 = failed transfer).
expect "$PPORT" /ok/1000 0 1000
expect "$PPORT" /ok/0 0 0
expect "$PPORT" /ok/3000000 0 3000000
expect "$PPORT" /status/500 4
expect "$PPORT" /status/503 4
expect "$PPORT" /status/404 3
expect "$PPORT" /status/403 3
expect "$PPORT" /status/410 3
expect "$PPORT" /redirect 3
expect "$PPORT" /nothing-here 3

# No Content-Length: spooled, then sent with the now-known length; over the limit: ERROR.
expect "$PPORT" /chunked/0 0 0
expect "$PPORT" /chunked/1 0 1
expect "$PPORT" /chunked/100000 0 100000
expect "$PPORT" /chunked/3000000 0 3000000
expect "$PPORT" /close/70000 0 70000
expect "$PPORT" /chunked/3000001 4
check "the spool directory is left empty" test -z "$(ls -A "$SPOOL")"

# Content-Length that libcurl would take for "no length" (over 64 bits) or that contradicts
# itself: ERROR, never the bytes that happened to come as a complete file. Two equal ones
# are legal.
expect "$PPORT" /cl-overflow/5000 4
expect "$PPORT" /cl-conflict/5000 4
expect "$PPORT" /cl-same/5000 0 5000

# Bodies that do not match Content-Length are never a good file.
expect "$PPORT" /close-mid-body/100000 1
check "close mid-body: a short transfer (got $GOT of $LEN)" test "$GOT" -lt "$LEN"
expect "$PPORT" /wrong-length-short/1000 1
check "short body: the client sees fewer bytes (got $GOT of $LEN)" test "$GOT" -lt "$LEN"
expect "$PPORT" /wrong-length-long/1000 1
check "long body: the client sees fewer bytes (got $GOT of $LEN)" test "$GOT" -lt "$LEN"
expect "$PPORT" /wrong-length-long/100000 1
expect "$PPORT" /wrong-length-long/0 4
# ... nor a file on disk for gfclient_download.
printf '/close-mid-body/200000\n/wrong-length-short/5000\n/wrong-length-long/5000\n' >"$WORK/bad.txt"
(cd "$WORK/dl" && "$BIN_DIR/gfclient_download" -p "$PPORT" -t 3 -w "$WORK/bad.txt" \
    >"$WORK/bad.out" 2>"$WORK/bad.err") || true
check "gfclient_download: 3 failed transfers" grep -q '^failed: 3$' "$WORK/bad.out"
check "gfclient_download: no file left behind" test -z "$(find "$WORK/dl" -type f)"
# The proxy keeps serving good files afterwards.
expect "$PPORT" /ok/5000 0 5000

# Surplus arriving after a complete response (here a whole smuggled response) is never read as
# the next one: the proxy drops that connection before reuse. One worker, so one handle.
KPORT=$(free_port)
spawn ONE "$BIN_DIR/webproxy" -p "$KPORT" -t 1 -s "http://127.0.0.1:$OPORT"
wait_port "$KPORT"
smuggled() {
    [ "$(curl -s "http://127.0.0.1:$OPORT/_stats" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["smuggled"])')" -ge 1 ]
}
expect "$KPORT" /smuggle/1000 0 1000
check "the origin sent its extra response" wait_for 10 smuggled
expect "$KPORT" /ok/5 0 5
rc=0
stop "$ONE" TERM 15 || rc=$?
check "webproxy (one worker) exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0

# Stalls: the low-speed timeout (1 s here) fires within bounds, before and after the header.
expect "$PPORT" /stall-headers 4
check "stall before the header: ERROR after ${SECS}s (0.8..10)" between "$SECS" 0.8 10
expect "$PPORT" /stall/1000/10 1
check "stall mid-body: cut after ${SECS}s (0.8..10), $GOT bytes" between "$SECS" 0.8 10

# An origin that refuses connections, and one whose name does not resolve: ERROR, quickly.
CPORT=$(free_port)
RPORT=$(free_port)
spawn REFUSED "$BIN_DIR/webproxy" -p "$RPORT" -t 2 -s "http://127.0.0.1:$CPORT/base"
wait_port "$RPORT"
expect "$RPORT" /x 4
check "refused connection: ERROR in ${SECS}s (< 5)" between "$SECS" 0 5
NPORT=$(free_port)
spawn NXDOMAIN "$BIN_DIR/webproxy" -p "$NPORT" -t 2 -s "http://no-such-host.invalid" \
    --connect-timeout 2000
wait_port "$NPORT"
expect "$NPORT" /x 4
check "unresolvable origin: ERROR in ${SECS}s (< 10)" between "$SECS" 0 10

for pid in "$REFUSED" "$NXDOMAIN"; do
    rc=0
    stop "$pid" TERM 15 || rc=$?
    check "webproxy $pid exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
done

# SIGTERM while a worker waits on a stalled origin (no low-speed limit in sight): the
# transfer is cancelled after the grace period and the proxy exits 0, promptly.
SPORT=$(free_port)
spawn STALLED "$BIN_DIR/webproxy" -p "$SPORT" -t 2 -s "http://127.0.0.1:$OPORT" \
    --low-speed-time 120 -G 500
wait_port "$SPORT"
before=$(curl -s "http://127.0.0.1:$OPORT/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
"${CLIENT[@]}" "$SPORT" /stall-headers --timeout 30 >"$WORK/stalled.out" 2>&1 &
client=$!
origin_has_request() {
    local n
    n=$(curl -s "http://127.0.0.1:$OPORT/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
    [ "$n" -ge $((before + 2)) ] # this poll, and the stalled request
}
check "the stalled request reached the origin" wait_for 10 origin_has_request
t0=$(date +%s%N)
rc=0
stop "$STALLED" TERM 15 || rc=$?
t1=$(date +%s%N)
check "stalled proxy exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
check "... within 5 s (took $(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 5000
crc=0
wait "$client" || crc=$?
check "the stalled client gets no file (exit $crc: $(cat "$WORK/stalled.out"))" test "$crc" -ne 0

rc=0
stop "$PROXY" TERM 15 || rc=$?
check "webproxy exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
finish
