#!/usr/bin/env bash
# proxy_origin_gather.sh - origin mode gathers the body into 256 KiB sends (origin_fetch.c):
# bodies of sizes around the buffer's are delivered whole and right; a body that breaks its
# Content-Length never reaches the client complete, also when the buffer fills exactly at the
# last byte; bytes gathered before an origin stalls are passed on, not held until the cut.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENT=(python3 "$SRC_DIR/tests/integration/proxy_client.py")
FAULT=$SRC_DIR/tests/integration/fault_origin.py
BUF=262144 # SEND_BUF_SIZE

# get PORT PATH: one request; sets RC (proxy_client's exit status) and LEN GOT SHA SECS.
get() {
    RC=0
    OUT=$("${CLIENT[@]}" "$1" "$2" --timeout 30) || RC=$?
    read -r _ LEN GOT SHA SECS <<<"$OUT"
}
sha_of() { python3 "$FAULT" --sha256 "$1"; }

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
PPORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t 2 -s "http://127.0.0.1:$OPORT" --low-speed-time 3
wait_port "$PPORT"

# Sizes on either side of one and two buffers, and small ones.
for size in 1 2 16383 16384 $((BUF - 1)) $BUF $((BUF + 1)) $((2 * BUF)) $((2 * BUF + 7)) 3000000; do
    get "$PPORT" "/ok/$size/g"
    check "/ok/$size: complete and right (exit $RC: $OUT)" \
        test "$RC $LEN $GOT $SHA" = "0 $size $size $(sha_of "$size")"
done

# Too long by 10 bytes: libcurl stops at Content-Length, so the gathered buffer is full exactly
# at the last byte; that byte must stay back (a flush of the full buffer would complete it).
for size in $BUF $((2 * BUF)) 1000; do
    get "$PPORT" "/wrong-length-long/$size/g"
    check "too long, $size: never complete (exit $RC, got $GOT of $LEN)" \
        test "$RC" -eq 1 -a "$GOT" -lt "$size"
done
# Too short, or cut mid-body: fewer bytes than announced, whatever the buffer held.
for size in $BUF $((BUF + 1)) 600000; do
    get "$PPORT" "/wrong-length-short/$size/g"
    check "too short, $size: a short transfer (exit $RC, got $GOT of $LEN)" \
        test "$RC" -eq 1 -a "$GOT" -lt "$size"
    get "$PPORT" "/close-mid-body/$size/g"
    check "cut mid-body, $size: a short transfer (exit $RC, got $GOT of $LEN)" \
        test "$RC" -eq 1 -a "$GOT" -lt "$size"
done

# An origin that sends 100000 bytes (less than a buffer) and stalls: those bytes reach the
# client (flushed after SEND_FLUSH_MS) before the low-speed limit cuts the transfer.
get "$PPORT" /stall/1000000/100000
check "stall after 100000 bytes: the client got all 100000 before the cut (exit $RC, got $GOT)" \
    test "$RC" -eq 1 -a "$GOT" -eq 100000

rc=0
stop "$PROXY" TERM 15 || rc=$?
check "webproxy exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
finish
