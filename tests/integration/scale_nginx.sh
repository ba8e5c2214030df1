#!/usr/bin/env bash
# scale_nginx.sh - deploy/scale_out.sh --nginx: three nodes' HTTP front ends (webproxy --http)
# behind nginx hashing the URI consistently. nginx's access log (the node that answered each
# request) proves the placement: each path on exactly one node; a node stopped under load moves
# only its own paths and no request started after the stop fails (nginx moves on to the next
# node); restarted, it takes exactly its paths back. Nothing is left running or in /dev/shm and
# /dev/mqueue.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$SRC_DIR/tests/integration/cache_lib.sh"

SCALE=$SRC_DIR/deploy/scale_out.sh
TOOL=(python3 "$SRC_DIR/tests/integration/scale_tool.py")
ST=$WORK/scale
N=3
# No errexit in the trap: a failing command there (or the (exit $r) that hands the status on)
# would end it before lib.sh's cleanup, leaving our processes and $WORK behind.
trap 'r=$?; set +e; [ -f "$ST/conf" ] && "$SCALE" -d "$ST" stop >/dev/null 2>&1; (exit $r); cleanup' EXIT

PATHS=$WORK/paths
for i in $(seq 1 40); do
    add_file "/f$i.bin" $((1000 + 97 * i))
    echo "/f$i.bin" >>"$PATHS"
done
BASE=$(python3 -c '
import random, socket
for _ in range(200):
    b = random.randrange(20000, 60000, 2)
    try:
        ss = []
        for p in range(b, b + 2 * '"$N"' + 2):
            s = socket.socket(); s.bind(("127.0.0.1", p)); ss.append(s)
        print(b); break
    except OSError:
        pass
')
HPORT=$((BASE + 1))
check "scale_out.sh --nginx starts $N nodes, HAProxy and nginx" \
    "$SCALE" -d "$ST" -b "$BASE" -i 300 --nginx -B "$BIN_DIR" start "$N" "$CONTENT/locals.txt"
[ -f "$ST/conf" ] || die "no deployment"
NLOG=$ST/nginx/access.log

mark() { stat -c %s "$NLOG" >"$WORK/offset"; }
placement() { "${TOOL[@]}" nginx-placement "$NLOG" "$(cat "$WORK/offset")" "$BASE" "$PATHS"; }
all_ok() {
    "${TOOL[@]}" get "$HPORT" "$PATHS" --http >"$WORK/got"
    ! grep -v ' OK$' "$WORK/got"
}
logged() { [ -z "$(placement | awk '$2 == "-"')" ]; }

check "warm-up: every path OK over HTTP" all_ok
mark
for r in 1 2 3; do check "round $r: every path OK" all_ok; done
check "every path logged" wait_for 10 logged
placement >"$WORK/p0"
check "each path served by exactly one node: $(awk '$2 ~ /,/' "$WORK/p0" | xargs)" \
    test -z "$(awk '$2 ~ /,/ || $2 == "-"' "$WORK/p0")"
for i in $(seq 1 $N); do
    check "node $i has some paths" test -n "$(awk -v n="$i" '$2 == n' "$WORK/p0")"
done
log "placement: $(awk '{print $2}' "$WORK/p0" | sort | uniq -c | xargs)"
cmp -s "$CONTENT/files/f7.bin" <(curl -sS --max-time 20 "http://127.0.0.1:$HPORT/f7.bin") ||
    fail "curl through nginx: the bytes of /f7.bin"
CHECKS=$((CHECKS + 1))

# ---- node 2 stopped under load
LOAD=$WORK/load.txt
: >"$LOAD"
spawn LOADER "${TOOL[@]}" load "$HPORT" "$PATHS" "$LOAD" "$WORK/stop-load" --http --workers 4
loaded() { [ "$(wc -l <"$LOAD")" -ge "$1" ]; }
check "the load runs" wait_for 30 loaded 100
check "stop-node 2" "$SCALE" -d "$ST" stop-node 2
t_down=$(date +%s.%N)
before=$(wc -l <"$LOAD")
check "the load goes on after node 2 stopped" wait_for 60 loaded $((before + 200))
touch "$WORK/stop-load"
check "the load client ends" wait_for 30 eval "! proc_alive $LOADER"
stop "$LOADER" TERM 5 || true
late=$(awk -v t="$t_down" '$1 > t && $4 != "OK"' "$LOAD" | head -5)
check "no failed request after node 2 stopped: $late" test -z "$late"
awk '$4 != "OK" {print "  failed:", $0}' "$LOAD" | head -5
log "load: $(wc -l <"$LOAD") requests, $(awk '$4 != "OK"' "$LOAD" | wc -l) failed"

mark
check "node 2 down: every path OK" all_ok
check "every path logged" wait_for 10 logged
placement >"$WORK/p1"
moved_wrong=$(join <(sort "$WORK/p0") <(sort "$WORK/p1") | awk '$2 != 2 && $2 != $3')
check "the paths of nodes 1 and 3 stay where they were: $moved_wrong" test -z "$moved_wrong"
gone=$(join <(sort "$WORK/p0") <(sort "$WORK/p1") | awk '$2 == 2 && ($3 == 2 || $3 ~ /,/ || $3 == "-")')
check "node 2's paths each moved to one other node: $gone" test -z "$gone"

# ---- node 2 back: nginx tries it again after fail_timeout and it takes its paths back
check "start-node 2" "$SCALE" -d "$ST" start-node 2
same_as_before() {
    mark
    all_ok >/dev/null && wait_for 10 logged &&
        [ "$(placement)" = "$(awk '{print $1, $2}' "$WORK/p0")" ]
}
check "the placement is the one before the stop" wait_for 20 same_as_before

pids=$(cat "$ST"/*.pid "$ST"/node*/*.pid)
check "scale_out.sh stop" "$SCALE" -d "$ST" stop
for p in $pids; do
    check "pid $p stopped" eval "! proc_alive $p"
done
assert_no_ipc_left
finish
