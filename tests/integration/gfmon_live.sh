#!/usr/bin/env bash
# gfmon_live.sh - the live figures of the real daemons, read with gfmon --json and --once:
# every segment FREE at start and IN_USE (with its worker, path and progress) during a held
# transfer, the cache's worker serving it; counters that move by exactly the requests made; a
# reader (stats_hold) that maps the object read-only and is SIGSTOPped slows nothing down and
# keeps no object alive; proxies that start are picked up, one that stops disappears with its
# object, one killed with SIGKILL is shown not running and its object swept by the next start;
# a restarted cache is the new one; gfmon's command-line conventions.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

GFMON=$BIN_DIR/gfmon
BIG=16000000
add_file /small 1000
add_file /big $BIG

# jtrue EXPR: gfmon --json succeeds and the Python expression EXPR holds for its object j
# (helpers: proxy(pid), segs(pid), hits(d)).
jtrue() {
    "$GFMON" --json >"$WORK/j.json" 2>"$WORK/j.err" || return 1
    python3 - "$WORK/j.json" "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
def proxy(pid):
    m = [p for p in j["proxies"] if p["pid"] == pid]
    return m[0] if m else None
def segs(pid):
    return proxy(pid)["segments"]
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
PY
}
# jcheck WHAT EXPR: a check that EXPR holds now (shows the JSON on failure).
jcheck() {
    if jtrue "$2"; then
        CHECKS=$((CHECKS + 1))
    else
        check "$1" false
        cat "$WORK/j.json" "$WORK/j.err" >&2 || true
    fi
}
stats_obj() { echo "/dev/shm/getfile-$UIDN-$1-stats"; }

# --- command line ---------------------------------------------------------------------------
out=$("$GFMON" --help) && grep -q "^usage: gfmon" <<<"$out"
check "gfmon --help: usage, exit 0" test $? -eq 0
check "gfmon --version" test "$("$GFMON" --version)" = \
    "gfmon (getfile) $(sed -n 's/^project(getfile VERSION \([0-9.]*\).*/\1/p' "$SRC_DIR/CMakeLists.txt")"
for bad in "--bogus" "-i 5" "-i x" "--once --json" "extra" "-i"; do
    rc=0
    # shellcheck disable=SC2086 # the words of $bad are separate arguments
    "$GFMON" $bad >"$WORK/cli.out" 2>"$WORK/cli.err" || rc=$?
    check "gfmon $bad: exit 2 (got $rc)" test $rc -eq 2
    check "gfmon $bad: then Try --help" \
        test "$(sed -n 2p "$WORK/cli.err")" = "Try 'gfmon --help' for more information."
    check "gfmon $bad: nothing on stdout" test ! -s "$WORK/cli.out"
done
rc=0
"$GFMON" </dev/null >"$WORK/cli.out" 2>&1 || rc=$?
check "gfmon without a terminal: exit 1 (got $rc)" test $rc -eq 1
check "gfmon without a terminal: says so" grep -q "not a terminal" "$WORK/cli.out"
jcheck "nothing running: cache null, no proxies" 'j["cache"] is None and j["proxies"] == []'
for prog in webproxy simplecached; do
    rc=0
    "$BIN_DIR/$prog" --no-stats --metrics 9 >"$WORK/cli.out" 2>&1 || rc=$?
    check "$prog --no-stats --metrics: exit 2 (got $rc)" test $rc -eq 2
done

# --- the daemons, idle ------------------------------------------------------------------------
start_cache CPID -t 2
PORT=$(free_port)
start_proxy P1 "$PORT" 4 4 8192
jcheck "cache $CPID shown, running, 2 workers, 2 store entries of $((BIG + 1000)) bytes" \
    "j['cache']['pid'] == $CPID and j['cache']['alive'] and len(j['cache']['workers']) == 2
     and j['cache']['store'] == {'entries': 2, 'bytes': $((BIG + 1000))}
     and j['cache']['queue']['capacity'] == 8"
jcheck "proxy $P1 shown with exactly its 4 FREE segments of serials 1..4" \
    "[p['pid'] for p in j['proxies']] == [$P1] and proxy($P1)['alive']
     and [(s['state'], s['serial']) for s in segs($P1)] == [('FREE', i) for i in (1, 2, 3, 4)]
     and proxy($P1)['config']['port'] == $PORT and proxy($P1)['config']['segment_size'] == 8192"
jcheck "no request yet" "proxy($P1)['requests_total'] == 0 and j['cache']['requests_total'] == 0"
"$GFMON" --once >"$WORK/once.txt"
check "gfmon --once: the cache, the proxy and its segments" \
    bash -c "grep -q '^cache  pid $CPID' '$WORK/once.txt' && grep -q '^proxy  pid $P1' \
        '$WORK/once.txt' && grep -qE '^  \[3\] seg4 +FREE' '$WORK/once.txt'"
check "gfmon --once: fits 80 columns" test "$(awk '{ print length }' "$WORK/once.txt" | sort -n |
    tail -n 1)" -le 80

# --- counters move by exactly the requests made -----------------------------------------------
for i in 1 2 3 4 5; do expect_get "$PORT" /small OK; done
for i in 1 2 3; do expect_get "$PORT" /nope FILE_NOT_FOUND; done
# The proxy counts a request when its connection ends, just after the client has its answer.
wait_for 20 jtrue "proxy($P1)['requests_total'] == 8" || fail "the proxy never counted 8 requests"
jcheck "proxy: 5 hits, 3 misses, 5000 bytes, 8 messages, 8 timed, nothing else" \
    "proxy($P1)['requests'] == dict(hit=5, miss=3, fill=0, stale=0, origin=0, not_found=0,
     error=0, cancelled=0) and proxy($P1)['bytes'] == 5000 and proxy($P1)['messages'] == 8
     and proxy($P1)['latency_us']['count'] == 8 and sum(proxy($P1)['latency_us']['buckets']) == 8
     and proxy($P1)['size_bytes']['buckets'][0] == 8 and proxy($P1)['size_bytes']['sum'] == 5000
     and abs(proxy($P1)['hit_ratio'] - 0.625) < 1e-4"
jcheck "cache: 5 hits, 3 misses, 5000 bytes, 8 messages, none rejected" \
    "j['cache']['requests']['hit'] == 5 and j['cache']['requests']['miss'] == 3
     and j['cache']['requests_total'] == 8 and j['cache']['bytes'] == 5000
     and j['cache']['messages'] == 8 and j['cache']['rejected'] == 0"

# --- a held transfer: IN_USE with its worker, path and progress ---------------------------------
touch "$WORK/hold"
spawn G python3 "$WORK/gfget.py" "$PORT" /big --hold "$WORK/hold" --timeout 60
wait_for 30 jtrue "[s['path'] for s in segs($P1) if s['state'] == 'IN_USE'] == ['/big']
    and [s for s in segs($P1) if s['state'] == 'IN_USE'][0]['worker'] > 0
    and 0 < [s for s in segs($P1) if s['state'] == 'IN_USE'][0]['done'] < $BIG
    and [s for s in segs($P1) if s['state'] == 'IN_USE'][0]['total'] == $BIG
    and proxy($P1)['active'] == 1" ||
    fail "the held transfer's segment was never shown IN_USE with /big, a worker and progress"
jcheck "the cache's worker serving it: IN_USE for proxy $P1, /big, active 1" \
    "[(w['peer'], w['path']) for w in j['cache']['workers'] if w['state'] == 'IN_USE']
     == [($P1, '/big')] and j['cache']['active'] == 1"
jcheck "the other three segments FREE" \
    "sorted(s['state'] for s in segs($P1)) == ['FREE', 'FREE', 'FREE', 'IN_USE']"
rm -f "$WORK/hold"
rc=0
wait "$G" || rc=$?
check "the held transfer completes once released (exit $rc)" test $rc -eq 0
check "the held transfer got every byte" grep -q "^OK $BIG $BIG " "$(logfile_of "$G")"
wait_for 20 jtrue "all(s['state'] == 'FREE' for s in segs($P1)) and proxy($P1)['active'] == 0
    and proxy($P1)['requests']['hit'] == 6 and j['cache']['active'] == 0" ||
    fail "after the transfer: segments not all FREE, or the hit not counted"

# --- a reader that maps the object and is stopped harms nothing ---------------------------------
spawn H "$BIN_DIR/stats_hold" "$P1"
wait_for 20 grep -q '^attached 6$' "$(logfile_of "$H")" || fail "stats_hold did not attach"
check "the reader's mapping of the stats object is read-only (r--s)" \
    grep -qE "^[0-9a-f]+-[0-9a-f]+ r--s .*/getfile-$UIDN-$P1-stats" "/proc/$H/maps"
is_stopped() {
    local st
    proc_state "$1" st
    [ "$st" = T ]
}
kill -STOP "$H"
check "the reader is stopped" wait_for 10 is_stopped "$H"
for i in $(seq 1 20); do
    line=$(gfget "$PORT" /small --timeout 10)
    [ "$(status_of "$line")" = OK ] || fail "request $i with a stopped reader: $line"
done
wait_for 20 jtrue "proxy($P1)['requests']['hit'] == 26" ||
    fail "with a stopped reader the 20 hits were not all counted"
stop_ok "$P1" TERM "webproxy (while a stopped reader maps its stats object)"
check "the stats object is removed although a stopped reader still maps it" \
    test ! -e "$(stats_obj "$P1")"
stop "$H" KILL 5 || true
jcheck "the stopped proxy is gone from gfmon" 'j["proxies"] == []'

# --- proxies that start and stop are picked up --------------------------------------------------
PORT2=$(free_port)
start_proxy P2 "$PORT2" 2 2 4096
jcheck "a new proxy $P2 is picked up with its 2 segments" \
    "[p['pid'] for p in j['proxies']] == [$P2] and len(segs($P2)) == 2"
PORT3=$(free_port)
start_proxy P3 "$PORT3" 2 3 4096
jcheck "two proxies listed" "sorted(p['pid'] for p in j['proxies']) == sorted([$P2, $P3])"
stop_ok "$P2" TERM "webproxy $P2"
check "stopped proxy's stats object removed" test ! -e "$(stats_obj "$P2")"
jcheck "the stopped proxy disappears, the other stays" "[p['pid'] for p in j['proxies']] == [$P3]"

# --- kill -9: shown not running, then swept by the next start -----------------------------------
stop "$P3" KILL 10 || true
check "a killed proxy leaves its stats object" test -e "$(stats_obj "$P3")"
jcheck "the killed proxy is shown not running" "proxy($P3) is not None and not proxy($P3)['alive']"
PORT4=$(free_port)
start_proxy P4 "$PORT4" 2 2 4096
check "the next proxy's start swept the killed one's stats object" test ! -e "$(stats_obj "$P3")"
jcheck "only the new proxy is listed" "[p['pid'] for p in j['proxies']] == [$P4]"
expect_get "$PORT4" /small OK

# --- --no-stats: no object, not listed, still serving ---------------------------------------------
PORT6=$(free_port)
spawn P6 "$BIN_DIR/webproxy" -p "$PORT6" -t 2 -n 2 -z 4096 --no-stats
wait_port "$PORT6" 30
expect_get "$PORT6" /small OK
check "webproxy --no-stats makes no stats object" \
    test -z "$(ls -A /dev/shm | grep -E "^getfile-$UIDN-$P6-stats" || true)"
jcheck "webproxy --no-stats is not listed" "proxy($P6) is None"
stop_ok "$P6" TERM "webproxy --no-stats"

# --- an origin-mode proxy: no segments; its fetch counted --------------------------------------
PORT5=$(free_port)
DEAD=$(free_port) # nothing listens there: the origin cannot be reached
spawn P5 "$BIN_DIR/webproxy" -p "$PORT5" -t 2 -s "http://127.0.0.1:$DEAD" --connect-timeout 2000
wait_port "$PORT5" 30
jcheck "the origin-mode proxy: listed, no segments, mode=origin" \
    "proxy($P5)['segments'] == [] and proxy($P5)['config']['text'] == 'mode=origin'"
expect_get "$PORT5" /small ERROR
wait_for 20 jtrue "proxy($P5)['requests_total'] == 1" || fail "the origin-mode request was not counted"
jcheck "one origin fetch, counted as an error" \
    "proxy($P5)['origin_fetches'] == 1 and proxy($P5)['requests']['error'] == 1"
stop_ok "$P5" TERM "webproxy $P5 (origin mode)"

# --- the cache stops and restarts -----------------------------------------------------------------
stop_ok "$CPID" TERM simplecached
check "the cache's stats object is removed" test ! -e "$(stats_obj "$CPID")"
jcheck "no cache shown" 'j["cache"] is None'
start_cache C2 -t 3
jcheck "the restarted cache $C2 is shown, with its 3 workers and fresh counters" \
    "j['cache']['pid'] == $C2 and len(j['cache']['workers']) == 3
     and j['cache']['requests_total'] == 0"
wait_for 20 get_ok "$PORT4" /small || fail "the proxy never reached the new cache"
wait_for 20 jtrue "j['cache']['requests']['hit'] >= 1 and proxy($P4)['requests']['hit'] >= 2" ||
    fail "the new cache's hits were not counted"

stop_ok "$P4" TERM "webproxy $P4"
stop_ok "$C2" TERM "simplecached $C2"
start_cache C3 -t 2 --no-stats
check "simplecached --no-stats makes no stats object" \
    test -z "$(ls -A /dev/shm | grep -E "^getfile-$UIDN-$C3-stats" || true)"
jcheck "simplecached --no-stats is not shown" 'j["cache"] is None'
stop_ok "$C3" TERM "simplecached --no-stats"
assert_no_ipc_left
finish
