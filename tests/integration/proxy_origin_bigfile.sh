#!/usr/bin/env bash
# proxy_origin_bigfile.sh - origin mode streams: a 1 GiB body (and a 128 MiB chunked one,
# spooled to disk) pass through with the proxy's peak RSS staying small and bounded.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENT=(python3 "$SRC_DIR/tests/integration/proxy_client.py")
FAULT=$SRC_DIR/tests/integration/fault_origin.py
BIG=$((1 << 30))
CHUNKED=$((128 << 20))
LIMIT_KB=$((64 << 10)) # peak RSS allowed, whole process
GROWTH_KB=$((32 << 10)) # peak RSS growth allowed from the big transfers

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
PPORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t 2 -s "http://127.0.0.1:$OPORT" \
    --spool-dir "$WORK" -S 60000
wait_port "$PPORT"
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$PROXY/status"; }

check "a small file first" "${CLIENT[@]}" "$PPORT" /ok/100000
base=$(hwm_kb)

want=$(python3 "$FAULT" --sha256 "$BIG")
out=$("${CLIENT[@]}" "$PPORT" "/gen/$BIG" --timeout 400) || true
log "1 GiB: $out"
read -r st len got sha _ <<<"$out"
check "1 GiB body: complete and right ($out)" test "$st $len $got $sha" = "OK $BIG $BIG $want"
hwm1=$(hwm_kb)

want=$(python3 "$FAULT" --sha256 "$CHUNKED")
out=$("${CLIENT[@]}" "$PPORT" "/chunked/$CHUNKED" --timeout 300) || true
log "128 MiB chunked: $out"
read -r st len got sha _ <<<"$out"
check "128 MiB chunked body: complete and right ($out)" test "$st $len $got $sha" = "OK $CHUNKED $CHUNKED $want"
hwm2=$(hwm_kb)

log "proxy peak RSS: ${base} KiB after a small file, ${hwm1} KiB after 1 GiB, ${hwm2} KiB after chunked"
if [ -z "$TEST_WRAPPER" ]; then # under valgrind the process's RSS is mostly the tool's
    check "peak RSS ${hwm2} KiB < ${LIMIT_KB} KiB" test "$hwm2" -lt "$LIMIT_KB"
fi
check "peak RSS grew $((hwm2 - base)) KiB < ${GROWTH_KB} KiB" test $((hwm2 - base)) -lt "$GROWTH_KB"

rc=0
stop "$PROXY" TERM 15 || rc=$?
check "webproxy exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
finish
