#!/usr/bin/env bash
# cache_instances.sh - two instances side by side under one uid: the default one (no option)
# and "blue" (--instance blue), each a simplecached with its own index and a webproxy. The same
# path has different content in each, so each proxy is proven served by its own cache. A second
# cache of an instance is refused (exit 3) while one of another instance starts; gfmon shows
# one instance at a time; a kill -9'd cache is swept at its instance's next start without
# touching the other instance's live objects; bad instance names exit 2; nothing is left.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

GFMON=$BIN_DIR/gfmon
add_file /same 3000
add_file /only-default 100
BLUE="$WORK/blue"
mkdir -p "$BLUE/files"
make_file "$BLUE/files/same" 5000 # same path, other bytes and size
printf '/same files/same\n' >"$BLUE/locals.txt"

# start_blue_cache VAR: simplecached --instance blue on the blue index; waits for its queue.
start_blue_cache() {
    local __pid
    pushd "$BLUE" >/dev/null || die "no $BLUE"
    spawn __pid "$BIN_DIR/simplecached" --instance blue -c locals.txt -t 2
    popd >/dev/null || die "popd"
    wait_for 30 cache_queue_exists "$__pid" || die "simplecached $__pid did not create its queue"
    printf -v "$1" '%s' "$__pid"
}

# get_bytes PORT PATH FILE: one request saved, OK with exactly FILE's bytes (for wait_for).
get_bytes() {
    local out="$WORK/probe.$$" line rc
    line=$(gfget "$1" "$2" --out "$out" --timeout 10)
    [ "$(status_of "$line")" = OK ] && cmp -s "$out" "$3"
    rc=$?
    rm -f "$out"
    return $rc
}

# jtrue EXPR [gfmon options]: gfmon --json succeeds and the Python expression EXPR holds for
# its object j.
jtrue() {
    local expr=$1
    shift
    "$GFMON" --json "$@" >"$WORK/j.json" 2>"$WORK/j.err" || return 1
    python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$WORK/j.json" "$expr"
}
jcheck() {
    local what=$1
    shift
    if jtrue "$@"; then
        CHECKS=$((CHECKS + 1))
    else
        check "$what" false
        cat "$WORK/j.json" "$WORK/j.err" >&2 || true
    fi
}

# --- bad names: exit 2 with a clear message, nothing started ------------------------------------
long=$(printf 'a%.0s' $(seq 33))
for prog in simplecached webproxy gfmon; do
    for bad in "" "a/b" "a.b" "../x" "a b" "é" "$long" "x!"; do
        rc=0
        "$BIN_DIR/$prog" --instance "$bad" >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
        check "$prog --instance '$bad': exit 2 (got $rc)" test $rc -eq 2
        check "$prog --instance '$bad': says why" grep -q "not an instance name" "$WORK/bad.err"
        check "$prog --instance '$bad': then Try --help" \
            test "$(sed -n 2p "$WORK/bad.err")" = "Try '$prog --help' for more information."
    done
done
rc=0
"$BIN_DIR/simplecached" --instance >/dev/null 2>&1 || rc=$?
check "simplecached --instance without a name: exit 2 (got $rc)" test $rc -eq 2
check "bad names created nothing" test -z "$(ipc_objects)"

# --- two pairs side by side ----------------------------------------------------------------------
start_cache CD -t 2
start_blue_cache CB
check "a cache of another instance starts beside the default one" proc_alive "$CD"
check "the blue instance has its own directory with its registry" \
    test -f "$GF_RUNDIR/instance-blue/getfile-$UIDN-cache"
check "the default instance's registry stays where it was" test -f "$GF_RUNDIR/getfile-$UIDN-cache"

for args in "--instance blue" "" "--instance default"; do
    rc=0
    # shellcheck disable=SC2086 # the words of $args are separate arguments
    (cd "$BLUE" && timeout 30 "$BIN_DIR/simplecached" $args -c locals.txt -t 1 -w 0) \
        >"$WORK/second.log" 2>&1 || rc=$?
    check "a second cache of the same instance ($args): exit 3 (got $rc)" test $rc -eq 3
    check "a second cache ($args): says which one runs" grep -q "already running" \
        "$WORK/second.log"
done
check "both first caches untouched" bash -c "kill -0 $CD && kill -0 $CB"

PD_PORT=$(free_port)
start_proxy PD "$PD_PORT" 2 2 4096
PB_PORT=$(free_port)
spawn PB "$BIN_DIR/webproxy" --instance blue -p "$PB_PORT" -t 2 -n 3 -z 4096
wait_port "$PB_PORT" 30
check "default proxy: /same from the default cache" \
    get_bytes "$PD_PORT" /same "$CONTENT/files/same"
check "blue proxy: /same from the blue cache" get_bytes "$PB_PORT" /same "$BLUE/files/same"
expect_get "$PD_PORT" /only-default OK
line=$(gfget "$PB_PORT" /only-default)
check "blue proxy: /only-default is not in the blue index (got $line)" \
    test "$(status_of "$line")" = FILE_NOT_FOUND

# --- gfmon: one instance at a time ---------------------------------------------------------------
jcheck "gfmon --instance blue: the blue cache and proxy only" \
    "j['instance'] == 'blue' and j['cache']['pid'] == $CB
     and [p['pid'] for p in j['proxies']] == [$PB] and len(j['proxies'][0]['segments']) == 3" \
    --instance blue
jcheck "gfmon without --instance: the default instance only" \
    "j['instance'] == 'default' and j['cache']['pid'] == $CD
     and [p['pid'] for p in j['proxies']] == [$PD]"
jcheck "gfmon --instance default: the same" \
    "j['instance'] == 'default' and j['cache']['pid'] == $CD
     and [p['pid'] for p in j['proxies']] == [$PD]" --instance default
jcheck "gfmon --instance red: nothing" \
    "j['instance'] == 'red' and j['cache'] is None and j['proxies'] == []" --instance red
"$GFMON" --once --instance blue >"$WORK/once.txt"
check "gfmon --once --instance blue: names the instance, shows its cache only" \
    bash -c "grep -q 'instance blue' '$WORK/once.txt' && grep -q '^cache  pid $CB' \
        '$WORK/once.txt' && ! grep -q 'pid $CD' '$WORK/once.txt'"

# --- kill -9 of the blue cache: swept at blue's next start, the default pair untouched ---------
default_objects() {
    {
        find /dev/mqueue -maxdepth 1 -name "getfile-$UIDN-$CD-*" -printf '%f\n'
        find /dev/shm -maxdepth 1 \( -name "getfile-$UIDN-$CD-*" -o -name "getfile-$UIDN-$PD-*" \
            -o -name "getfile-$UIDN-$PB-*" \) -printf '%f\n'
    } | sort
}
before=$(default_objects)
# The default cache's queue and stats object, each proxy's segments (2 and 3) and stats object.
check "the live objects: the default cache's and both proxies' (got: ${before//$'\n'/ })" \
    test "$(wc -l <<<"$before")" -eq $((1 + 1 + 2 + 1 + 3 + 1))
kill -KILL "$CB"
wait "$CB" 2>/dev/null || true
check "the killed blue cache left its queue" cache_queue_exists "$CB"
check "the killed blue cache left its stats object" test -e "/dev/shm/getfile-$UIDN-$CB-stats"
start_blue_cache CB2
queue_gone() { ! cache_queue_exists "$1"; }
check "blue's next start swept the dead cache's queue" queue_gone "$CB"
check "... and its stats object" test ! -e "/dev/shm/getfile-$UIDN-$CB-stats"
check "the default instance's and the proxies' live objects untouched" \
    test "$(default_objects)" = "$before"
check "the default cache still runs" proc_alive "$CD"
check "the default proxy still served by the default cache" \
    get_bytes "$PD_PORT" /same "$CONTENT/files/same"
wait_for 30 get_bytes "$PB_PORT" /same "$BLUE/files/same" ||
    fail "the blue proxy never served /same from the restarted blue cache"
jcheck "gfmon --instance blue: the new blue cache" \
    "j['cache']['pid'] == $CB2 and [p['pid'] for p in j['proxies']] == [$PB]" --instance blue

# --- clean stop ----------------------------------------------------------------------------------
stop_ok "$PB" TERM "blue webproxy"
stop_ok "$PD" TERM "default webproxy"
stop_ok "$CB2" TERM "blue simplecached"
stop_ok "$CD" TERM "default simplecached"
# The instance's directory stays, empty, like the runtime directory itself (ipc_objects skips
# it only when empty).
check "the blue instance's directory is left, empty" \
    test -d "$GF_RUNDIR/instance-blue" -a -z "$(ls -A "$GF_RUNDIR/instance-blue")"
assert_no_ipc_left
finish
