#!/usr/bin/env bash
# proxy_origin_parallel.sh - origin mode: T workers fetch T slow (D ms) responses at once, in
# about D, not T x D; a one-worker proxy, the control, takes about T x D.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

FAULT=$SRC_DIR/tests/integration/fault_origin.py
T=8
D=500
mkdir -p "$WORK/dl"

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"

# run_batch PROXY_PORT N TAG: N concurrent requests, each delayed D ms at the origin; prints
# the elapsed milliseconds; the files must all arrive.
run_batch() {
    local port=$1 n=$2 tag=$3 t0 t1
    : >"$WORK/wl.$tag"
    for ((i = 0; i < n; i++)); do
        echo "/delay/$D/4096/$tag$i" >>"$WORK/wl.$tag"
    done
    t0=$(date +%s%N)
    (cd "$WORK/dl" && "$BIN_DIR/gfclient_download" -p "$port" -t "$n" -w "$WORK/wl.$tag" \
        >"$WORK/out.$tag" 2>&1) || true
    t1=$(date +%s%N)
    check "$tag: all $n requests ok" grep -q "^ok: $n$" "$WORK/out.$tag"
    echo $(((t1 - t0) / 1000000))
}

PPORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t "$T" -s "http://127.0.0.1:$OPORT"
wait_port "$PPORT"
run_batch "$PPORT" 1 warm >/dev/null # first connections, page faults
ms=$(run_batch "$PPORT" "$T" par)
log "$T requests of $D ms through $T workers: $ms ms"
check "$T workers: $T x $D ms requests in $ms ms < 0.5 x $T x $D" test "$ms" -lt $((T * D / 2))

# Control: one worker serialises them, so the measure above can tell.
CPORT=$(free_port)
spawn SERIAL "$BIN_DIR/webproxy" -p "$CPORT" -t 1 -s "http://127.0.0.1:$OPORT"
wait_port "$CPORT"
ms1=$(run_batch "$CPORT" 4 ser)
log "4 requests of $D ms through 1 worker: $ms1 ms"
check "control: 1 worker takes >= 0.9 x 4 x $D ms (took $ms1)" test "$ms1" -ge $((4 * D * 9 / 10))

for pid in "$PROXY" "$SERIAL"; do
    rc=0
    stop "$pid" TERM 15 || rc=$?
    check "webproxy $pid exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
done
finish
