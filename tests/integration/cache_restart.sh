#!/usr/bin/env bash
# cache_restart.sh - a stop followed at once by a start, as test harnesses do: the stopping
# simplecached gives its names up at once and drains its transfers while the new one starts and
# the proxy sends new requests to it; a start that finds a running cache waits (-w) for it to
# stop, and exits 3 if it does not; 50 stop-start cycles with traffic in between.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_classic_set
# Larger than every buffer between the cache and a client that stops reading (the socket
# buffers at their maxima, the proxy's segment), so its transfer stays open in the cache.
big=$((64 << 20))
add_file /big.bin "$big"
small=/courses/ud923/filecorpus/road.jpg
wl="$WORK/wl.txt"
awk '{print $1}' "$CONTENT/locals.txt" | grep filecorpus >"$wl"

# registry_pid: the pid the registry names now ("" when there is none).
registry_pid() {
    od -An -t u4 -j 8 -N 4 "$GF_RUNDIR/getfile-$UIDN-cache" 2>/dev/null | tr -d ' '
}
# cache_published PID: PID created its queue and published itself in the registry.
cache_published() { cache_queue_exists "$1" && [ "$(registry_pid)" = "$1" ]; }
# cache_ready VAR [options]: start_cache, then waits until the registry names the new cache.
cache_ready() {
    start_cache "$@"
    wait_for 30 cache_published "${!1}" || die "simplecached ${!1} did not publish itself"
}
logged() { grep -q -- "$2" "$1"; }
progress_at_least() { [ "$(cat "$WORK/big.prog" 2>/dev/null || echo 0)" -ge "$1" ]; }
gone() { ! proc_alive "$1"; }
# reap PID: waits (bounded) for a process that is stopping by itself; returns its status.
reap() {
    wait_for 60 gone "$1" || {
        log "pid $1 still running after 60 s"
        return 124
    }
    local rc=0
    wait "$1" 2>/dev/null || rc=$?
    return $rc
}

PORT=$(free_port)
# -S: the held client below must not be cut for stalling while the test looks at the caches.
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 8 -n 8 -z 1048576 -S 600000
wait_port "$PORT" 30

# 1. Deterministic overlap: cache A is in the middle of a transfer the client holds open when it
# is stopped; it gives its names up at once, B starts beside it without waiting, the proxy's next
# request goes to B, and A's transfer still completes byte-exact afterwards.
cache_ready A -t 2 -g 120000
wait_for 15 get_ok "$PORT" "$small" || die "cache A not reachable"
hold="$WORK/hold"
: >"$hold"
spawn SLOW python3 "$WORK/gfget.py" "$PORT" /big.bin --out "$WORK/big.out" \
    --progress "$WORK/big.prog" --hold "$hold" --timeout 100
wait_for 60 progress_at_least 1 || die "the big transfer did not start"
alog=$(logfile_of "$A")
kill -TERM "$A"
check "A logs that it gave its names up" \
    wait_for 20 logged "$alog" "stopping: gave up the command queue and registry names"
cache_ready B -t 2
blog=$(logfile_of "$B")
check "B started without waiting for A" bash -c "! grep -q 'waiting up to' '$blog'"
# fd: the proxy sends the held file from A's descriptor, so A holds no transfer and may end
# at once; the held transfer must complete all the same.
held_in_cache=1
[ "${GETFILE_TEST_IPC:-posix}" = fd ] && held_in_cache=0
[ $held_in_cache = 1 ] && check "A is still running, draining the held transfer" proc_alive "$A"
expect_get "$PORT" "$small" OK
[ $held_in_cache = 1 ] && check "A is still running after B served a request" proc_alive "$A"
rm -f "$hold"
rc=0
reap "$SLOW" || rc=$?
line=$(tail -n 1 "$(logfile_of "$SLOW")")
check "the held transfer completes (got: $line, client status $rc)" \
    test "$(status_of "$line")" = OK
check "the held transfer is byte-exact" cmp -s "$WORK/big.out" "$CONTENT/files/big.bin"
rm -f "$WORK/big.out"
rc=0
reap "$A" || rc=$?
check "A exits 0 after draining (got $rc)" test "$rc" -eq 0
check "A's stop left B's registry" test "$(registry_pid)" = "$B"
check "A's stop left B's queue" cache_queue_exists "$B"
expect_get "$PORT" "$small" OK

# 2. A start while a cache runs and does not stop: it waits -w, says so, and exits 3.
rc=0
(cd "$CONTENT" && timeout 60 "$BIN_DIR/simplecached" -c locals.txt -w 300) \
    >"$WORK/second.log" 2>&1 || rc=$?
check "a second simplecached exits 3 after -w 300 (got $rc)" test "$rc" -eq 3
check "it said it waited for the running pid" logged "$WORK/second.log" "(pid $B) is running"
check "it said why it did not start" logged "$WORK/second.log" "did not stop; not starting"
rc=0
(cd "$CONTENT" && timeout 60 "$BIN_DIR/simplecached" -c locals.txt -w 0) \
    >"$WORK/second0.log" 2>&1 || rc=$?
check "with -w 0 it exits 3 at once (got $rc)" test "$rc" -eq 3
check "with -w 0 it does not wait" bash -c "! grep -q 'waiting up to' '$WORK/second0.log'"
check "B still serves" cache_published "$B"
for bad in "-w -1" "-w 600001" "-w x" "-g 0" "-g 600001"; do
    rc=0
    # shellcheck disable=SC2086 # split on purpose
    (cd "$CONTENT" && timeout 20 "$BIN_DIR/simplecached" -c locals.txt $bad) \
        >/dev/null 2>&1 || rc=$?
    check "simplecached $bad exits 2 (got $rc)" test "$rc" -eq 2
done

# 3. A waiting start proceeds when the running cache stops: C waits (logged), B is stopped, C
# says it starts, and serves.
pushd "$CONTENT" >/dev/null || die "no $CONTENT"
spawn C "$BIN_DIR/simplecached" -c locals.txt -w 60000
popd >/dev/null || die "popd"
clog=$(logfile_of "$C")
check "C waits for B" wait_for 30 logged "$clog" "(pid $B) is running"
rc=0
stop "$B" TERM 30 || rc=$?
check "B exits 0 (got $rc)" test "$rc" -eq 0
check "C starts once B gave its names up" \
    wait_for 30 logged "$clog" "the other simplecached gave its names up; starting"
check "C publishes itself" wait_for 30 cache_published "$C"
expect_get "$PORT" "$small" OK
rc=0
stop "$C" TERM 30 || rc=$?
check "C exits 0 (got $rc)" test "$rc" -eq 0

# 4. Stop-then-start cycles, as a test harness runs them: SIGTERM and a new start at once, then
# traffic. Every request of every batch must be served byte-exact, every cache must exit 0.
cache_ready cur -t 2
cycles=${CACHE_RESTART_CYCLES:-50}
bad_exit=0 bad_batch=0
for ((i = 1; i <= cycles; i++)); do
    old=$cur
    kill -TERM "$old"
    cache_ready cur -t 2
    if ! download "$WORK/dl.$i" "$PORT" "$wl" 2 "$(wc -l <"$wl")" || ! verify_all "$WORK/dl.$i" "$wl"; then
        bad_batch=$((bad_batch + 1))
        log "cycle $i: batch failed: $(tail -n 3 "$WORK/dl.$i.log" | tr '\n' ' ')"
    fi
    check "cycle $i: nothing saved is corrupt" verify_present "$WORK/dl.$i" >/dev/null
    rm -rf "$WORK/dl.$i" "$WORK/dl.$i.log"
    rc=0
    reap "$old" || rc=$?
    if [ "$rc" -ne 0 ]; then
        bad_exit=$((bad_exit + 1))
        log "cycle $i: cache $old exited $rc"
    fi
done
check "every batch of the $cycles cycles served byte-exact ($bad_batch failed)" test "$bad_batch" -eq 0
check "every stopped cache exited 0 ($bad_exit did not)" test "$bad_exit" -eq 0
waiting=$(cat "$WORK"/simplecached.*.log | grep -c "waiting up to" || true)
log "$cycles cycles; $waiting start(s) found the previous cache not yet stopped and waited"

rc=0
stop "$cur" TERM 30 || rc=$?
check "the last cache exits 0 (got $rc)" test "$rc" -eq 0
stop_ok "$PROXY" TERM webproxy
assert_no_ipc_left
finish
