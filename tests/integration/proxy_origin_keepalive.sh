#!/usr/bin/env bash
# proxy_origin_keepalive.sh - origin mode reuses its connections: N sequential requests through
# one worker open at most 2 origin connections (counted at the origin), and a restarted origin
# (the kept connection is dead) costs no failed request. With 8 workers the same sequential
# requests still use one connection (the workers share their libcurl handles, last used first),
# and 2 concurrent clients use at most 4 handles (see below for why not 2).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

FAULT=$SRC_DIR/tests/integration/fault_origin.py
N=20
mkdir -p "$WORK/dl"

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
# origin_stats: "CONNECTIONS REQUESTS" so far at the origin, this poll's own connection and
# request included.
origin_stats() {
    curl -s "http://127.0.0.1:$OPORT/_stats" |
        python3 -c "import json,sys; d=json.load(sys.stdin); print(d['connections'], d['requests'])"
}

PPORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t 1 -s "http://127.0.0.1:$OPORT" -l debug
wait_port "$PPORT"

: >"$WORK/wl"
for ((i = 0; i < N; i++)); do
    echo "/ok/$((1000 + i))/f$i" >>"$WORK/wl"
done
read -r c0 r0 <<<"$(origin_stats)"
(cd "$WORK/dl" && "$BIN_DIR/gfclient_download" -p "$PPORT" -t 1 -w "$WORK/wl" >"$WORK/out" 2>&1) ||
    true
read -r c1 r1 <<<"$(origin_stats)"
conns=$((c1 - c0 - 1))
reqs=$((r1 - r0 - 1))
log "$reqs requests over $conns origin connections"
check "all $N requests ok" grep -q "^ok: $N$" "$WORK/out"
check "the origin saw the $N requests (saw $reqs)" test "$reqs" -eq "$N"
check "$N sequential requests used <= 2 origin connections (used $conns)" test "$conns" -le 2

# Restart the origin on the same port: the kept connection is now dead; the next requests
# must still succeed (libcurl notices and reconnects).
rc=0
stop "$ORIGIN" TERM 10 || rc=$?
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
printf '/ok/777/after-restart\n/ok/778/after-restart\n' >"$WORK/wl2"
(cd "$WORK/dl" && "$BIN_DIR/gfclient_download" -p "$PPORT" -t 1 -w "$WORK/wl2" >"$WORK/out2" 2>&1) ||
    true
check "after an origin restart: both requests ok" grep -q '^ok: 2$' "$WORK/out2"

rc=0
stop "$PROXY" TERM 15 || rc=$?
check "webproxy exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
check "webproxy reports its connection reuse" grep -q "origin: $((N + 2)) requests over" \
    "$(logfile_of "$PROXY")"

# Eight workers, one client at a time: the last handle given back is taken again, so one
# connection serves them all (with a handle per worker, up to 8 would open).
PPORT=$(free_port)
spawn PROXY8 "$BIN_DIR/webproxy" -p "$PPORT" -t 8 -s "http://127.0.0.1:$OPORT"
wait_port "$PPORT"
read -r c0 r0 <<<"$(origin_stats)"
rm -rf "$WORK/dl8" && mkdir -p "$WORK/dl8"
for ((i = 0; i < N; i++)); do # one connection to the proxy per request, one at a time
    (cd "$WORK/dl8" && "$BIN_DIR/gfclient_download" -p "$PPORT" -t 1 -r 1 -w "$WORK/wl" \
        >>"$WORK/out8" 2>&1) || true
done
read -r c1 r1 <<<"$(origin_stats)"
conns=$((c1 - c0 - 1))
log "-t 8, $N sequential clients: $((r1 - r0 - 1)) requests over $conns origin connections"
check "-t 8: all $N requests ok" test "$(grep -c '^ok: 1$' "$WORK/out8")" -eq "$N"
check "-t 8: $N sequential requests used <= 2 origin connections (used $conns)" test "$conns" -le 2
# Two concurrent clients. A worker gives its handle back only after the transfer returns,
# which can be after its client already has the last byte and sent the next request to
# another worker: each client can briefly account for two handles, so the bound is 2 x 2.
(cd "$WORK/dl8" && "$BIN_DIR/gfclient_download" -p "$PPORT" -t 2 -r 40 -w "$WORK/wl" \
    >"$WORK/out8c" 2>&1) || true
check "-t 8, 2 concurrent clients: all 40 requests ok" grep -q '^ok: 40$' "$WORK/out8c"
rc=0
stop "$PROXY8" TERM 15 || rc=$?
check "webproxy -t 8 exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
used=$(sed -n 's/.*origin: [0-9]* requests over [0-9]* connections, by \([0-9]*\) of 8 handles.*/\1/p' \
    "$(logfile_of "$PROXY8")")
log "-t 8: ${used:-?} of 8 handles used"
check "-t 8: at most 4 of the 8 handles were ever used (${used:-none})" \
    test -n "$used" -a "${used:-9}" -ge 1 -a "${used:-9}" -le 4
finish
