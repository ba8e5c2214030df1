#!/usr/bin/env bash
# scale_haproxy.sh - deploy/scale_out.sh: three nodes (simplecached filling on miss from one
# HTTP origin into its own store, and webproxy; each pair its own --instance) behind
# HAProxy hashing the GETFILE path. The nodes' access logs prove the placement: each path
# served by exactly one node, every request a HIT after warm-up, and the origin's log shows
# one fetch per path in all; a node stopped under load moves only its own paths (fetched once
# more each, by their new nodes), and no client request started after HAProxy has marked it
# down fails; restarted, it takes exactly its paths back, from its store. Nothing is left
# running or in /dev/shm and /dev/mqueue.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$SRC_DIR/tests/integration/cache_lib.sh"

SCALE=$SRC_DIR/deploy/scale_out.sh
TOOL=(python3 "$SRC_DIR/tests/integration/scale_tool.py")
ST=$WORK/scale
N=3
# The deployment's processes are not children of this shell: stop them through the script
# (by the PIDs it recorded) before lib.sh's cleanup.
# No errexit in the trap: a failing command there (or the (exit $r) that hands the status on)
# would end it before lib.sh's cleanup, leaving our processes and $WORK behind.
trap 'r=$?; set +e; [ -f "$ST/conf" ] && "$SCALE" -d "$ST" stop >/dev/null 2>&1; (exit $r); cleanup' EXIT

PATHS=$WORK/paths
for i in $(seq 1 40); do
    add_file "/f$i.bin" $((1000 + 97 * i))
    echo "/f$i.bin" >>"$PATHS"
done

# The origin: the files over HTTP; each request it gets is a line of its log. The caches start
# with an empty index: everything they serve they fetched.
OPORT=$(free_port)
spawn ORIGIN python3 -m http.server --bind 127.0.0.1 --directory "$CONTENT/files" "$OPORT"
wait_port "$OPORT"
OLOG=$(logfile_of "$ORIGIN")
fetches() { grep -c '"GET /f' "$OLOG" || true; }
mkdir -p "$WORK/idx"
# HAProxy's check path is in the index: checks never reach the origin.
echo ok >"$WORK/idx/health"
echo "/.getfile-health health" >"$WORK/idx/locals.txt"

# BASE..BASE+2N+1 free.
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
check "scale_out.sh starts $N nodes and HAProxy" \
    "$SCALE" -d "$ST" -b "$BASE" -i 300 --origin "http://127.0.0.1:$OPORT" -B "$BIN_DIR" \
    start "$N" "$WORK/idx/locals.txt"
[ -f "$ST/conf" ] || die "no deployment"

# up_states "S1 S2 S3": HAProxy's operational state of node1..N (2 up, 0 down).
states() { "${TOOL[@]}" state "$ST/haproxy.sock" 2>/dev/null | awk '{print $2}' | xargs; }
states_are() { [ "$(states)" = "$1" ]; }
check "HAProxy sees the $N nodes up" wait_for 30 states_are "2 2 2"

# placement: "PATH NODES HITS TOTAL" for the requests after the offsets in $WORK/offsets.
mark() { "${TOOL[@]}" sizes "$ST" "$N" >"$WORK/offsets"; }
placement() { "${TOOL[@]}" placement "$ST" "$N" "$(cat "$WORK/offsets")" "$PATHS"; }
# all_ok: one request per path through HAProxy, every one OK.
all_ok() {
    "${TOOL[@]}" get "$BASE" "$PATHS" >"$WORK/got"
    ! grep -v ' OK$' "$WORK/got"
}
# logged COUNT: every path has COUNT access-log lines since the mark (the logs are written
# after the response: wait for them).
logged() { [ -z "$(placement | awk -v c="$1" '$4 != c')" ]; }

# ---- placement: after a warm-up, three rounds; each path on one node, every request a HIT
check "warm-up: every path OK" all_ok
check "warm-up: one origin fetch per path (got $(fetches))" test "$(fetches)" -eq 40
mark
for r in 1 2 3; do check "round $r: every path OK" all_ok; done
check "after warm-up: no origin fetch (got $(fetches))" test "$(fetches)" -eq 40
check "three access-log lines per path" wait_for 10 logged 3
placement >"$WORK/p0"
check "each path served by exactly one node: $(awk '$2 ~ /,/' "$WORK/p0" | xargs)" \
    test -z "$(awk '$2 ~ /,/ || $2 == "-"' "$WORK/p0")"
hits=$(awk '{h += $3; t += $4} END {print h "/" t}' "$WORK/p0")
check "hit ratio after warm-up 100 % (got $hits)" test "$hits" = "120/120"
for i in $(seq 1 $N); do
    check "node $i has some paths" test -n "$(awk -v n="$i" '$2 == n' "$WORK/p0")"
done
log "placement: $(awk '{print $2}' "$WORK/p0" | sort | uniq -c | xargs)"

# ---- node 2 stopped under load
LOAD=$WORK/load.txt
: >"$LOAD"
spawn LOADER "${TOOL[@]}" load "$BASE" "$PATHS" "$LOAD" "$WORK/stop-load" --workers 4
loaded() { [ "$(wc -l <"$LOAD" 2>/dev/null || echo 0)" -ge "$1" ]; }
check "the load runs" wait_for 30 loaded 100
check "stop-node 2" "$SCALE" -d "$ST" stop-node 2
check "HAProxy marks node 2 down" wait_for 30 states_are "2 0 2"
t_down=$(date +%s.%N)
before=$(wc -l <"$LOAD")
check "the load goes on after node 2 is down" wait_for 60 loaded $((before + 200))
touch "$WORK/stop-load"
check "the load client ends" wait_for 30 eval "! proc_alive $LOADER"
stop "$LOADER" TERM 5 || true
late=$(awk -v t="$t_down" '$1 > t && $4 != "OK"' "$LOAD" | head -5)
check "no failed request after node 2 was marked down: $late" test -z "$late"
n_late=$(awk -v t="$t_down" '$1 > t' "$LOAD" | wc -l)
check "requests after node 2 was marked down ($n_late)" test "$n_late" -ge 200
awk '$4 != "OK" {print "  failed:", $0}' "$LOAD" | head -5
early=$(awk '$4 != "OK"' "$LOAD" | wc -l)
log "load: $(wc -l <"$LOAD") requests, $early failed (none after node 2 was marked down)"

mark
check "node 2 down: every path OK" all_ok
check "one access-log line per path" wait_for 10 logged 1
placement >"$WORK/p1"
moved_wrong=$(join <(sort "$WORK/p0") <(sort "$WORK/p1") | awk '$2 != 2 && $2 != $5')
check "the paths of nodes 1 and 3 stay where they were: $moved_wrong" test -z "$moved_wrong"
gone=$(join <(sort "$WORK/p0") <(sort "$WORK/p1") | awk '$2 == 2 && ($5 == 2 || $5 ~ /,/ || $5 == "-")')
check "node 2's paths each moved to one other node: $gone" test -z "$gone"
# Fetches per path since the warm-up: node 2's paths again (once by their new node; a request
# redispatched while node 2 was going down may have filled a second node), no other path.
grep -o '"GET /f[0-9]*\.bin' "$OLOG" | cut -c6- | sort | uniq -c | awk '{print $2, $1}' >"$WORK/fetched"
refetched=$(join "$WORK/fetched" <(sort "$WORK/p0") | awk '$2 > 1 && $3 != 2 {print $1}' | xargs)
check "no path of nodes 1 and 3 fetched again: $refetched" test -z "$refetched"
notfetched=$(join "$WORK/fetched" <(sort "$WORK/p0") | awk '$2 == 1 && $3 == 2 {print $1}' | xargs)
check "every path of node 2 fetched again by its new node: $notfetched" test -z "$notfetched"
after_stop=$(fetches)

# ---- node 2 back: it takes exactly its paths back
check "start-node 2" "$SCALE" -d "$ST" start-node 2
check "HAProxy marks node 2 up again" wait_for 30 states_are "2 2 2"
mark
check "node 2 back: every path OK" all_ok
check "one access-log line per path" wait_for 10 logged 1
placement >"$WORK/p2"
check "the placement is the one before the stop" \
    test "$(awk '{print $1, $2}' "$WORK/p0")" = "$(awk '{print $1, $2}' "$WORK/p2")"
check "node 2 serves its paths from its store: no origin fetch (got $(fetches))" \
    test "$(fetches)" -eq "$after_stop"
hits=$(awk '{h += $3; t += $4} END {print h "/" t}' "$WORK/p2")
check "node 2 back: every request a HIT (got $hits)" test "$hits" = "40/40"

# ---- stop: every process of the deployment gone, nothing left
pids=$(cat "$ST"/*.pid "$ST"/node*/*.pid)
check "scale_out.sh stop" "$SCALE" -d "$ST" stop
for p in $pids; do
    check "pid $p stopped" eval "! proc_alive $p"
done
check "no PID file left" test -z "$(find "$ST" -name '*.pid')"
assert_no_ipc_left
finish
