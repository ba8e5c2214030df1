#!/usr/bin/env bash
# rel_limits.sh - system limits and IPC objects pulled from under running processes. Every case
# runs in this test's own IPC and mount namespace (lib.sh), where fs.mqueue.* and /dev/shm are
# private, so changing them is safe. The daemons run without CAP_SYS_RESOURCE (dropped from the
# bounding set), as an ordinary user would, since that capability lifts the mqueue limits.
#   1. fs.mqueue.msg_max below our queue depth, msgsize_max below our message size,
#      RLIMIT_MSGQUEUE too small, queues_max 0: the cache adapts (and serves) or exits 1 with a
#      message naming the limit; the running proxy reports failures meanwhile (no hang) and
#      serves again once a cache can start.
#   2. /dev/shm too small for the segment pool: webproxy exits 1 at start with a message, never
#      SIGBUS; /dev/shm full while running: a segment that must be replaced cannot be, the proxy
#      lives on, and once space is back the pool is whole again.
#   3. IPC objects removed while running: the cache's queue, the cache's registry, a proxy
#      segment. Failures are reported (never a hang or crash), service recovers, exits are clean.
#   4. Out of file descriptors on accept (ulimit -n small, many idle connections): webproxy
#      pauses accepting (no busy loop: little CPU over the interval), and serves once they close.
# rel_limits.sh sysv: the System V counterparts instead (docs/reliability.md, "Per backend"):
#   kernel.msgmni 0 (no queue can be made): simplecached exits 3 naming kernel.msgmni, the
#   running proxy's requests fail at once; kernel.msgmax below our request message: each request
#   fails at once (never after the stall limit); kernel.shmmni too small for the pool: webproxy
#   exits 3 with a message, nothing of it left; with each limit back the same proxy serves.
# rel_limits.sh unix|fd: the socket backends' limit is descriptors: the cache under
#   RLIMIT_NOFILE a few above its descriptors (prlimit on the running cache), with 150
#   connections to its socket held open without a request: its
#   acceptor meets EMFILE and sleeps instead of spinning (little CPU over 3 s), warns, and
#   once they close the same proxy is served. (§4, the front end out of descriptors, is the
#   same code on every backend: posix only.)
# Variables set here are read by rel_common.sh functions (REL_ENV, DL_RC, ...).
# shellcheck disable=SC2034
if [ -n "${1:-}" ]; then
    export GETFILE_TEST_IPC=$1
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"
[ "$REL_IPC" = posix ] || TEST_NAME="rel_limits_$REL_IPC"
case $REL_IPC in posix | sysv | unix | fd) ;; *) die "rel_limits: no form for --ipc $REL_IPC" ;; esac

rel_corpus
WL_SMALL=$(rel_workload small /small)
WL_MIX=$(rel_workload mix /small /multi /missing /empty /road.jpg)
MQ=/proc/sys/fs/mqueue
NOCAP=(setpriv --bounding-set=-sys_resource)

PORT=$(free_port)
REL_PREFIX=("${NOCAP[@]}")
rel_start_proxy PROXY "$PORT" webproxy -n 2 -z 8192 --cache-stall 3000
wait_port "$PORT"

# idle_while_out_of_fds PID NAME: PID, out of descriptors, used under 3/4 of a CPU second in a
# 3 s window: its accept loop pauses instead of spinning (a busy one burns ~3 s).
idle_while_out_of_fds() {
    local t0 t1 hz
    t0=$(rel_proc_cpu_ticks "$1")
    sleep 3 # the measuring window, not a wait for a condition
    t1=$(rel_proc_cpu_ticks "$1")
    hz=$(getconf CLK_TCK)
    log "out of fds: $2 used $((t1 - t0)) ticks of CPU in 3 s (${hz}/s)"
    CHECKS=$((CHECKS + 1))
    [ $((t1 - t0)) -lt $((hz * 3 / 4)) ] ||
        fail "$2's accept loop busy while out of fds: $((t1 - t0)) ticks in 3 s"
}

# ---- sysv: System V limits ------------------------------------------------------------------
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# fails_at_once WHAT: one request fails, is reported, and takes well under the stall limit (3 s).
fails_at_once() {
    local t0 t1
    t0=$(now_ms)
    rel_get "$PORT" "$WL_SMALL" 0 1 20
    t1=$(now_ms)
    CHECKS=$((CHECKS + 1))
    [ "$DL_FAILED" = 1 ] || fail "$1: the request did not fail"
    CHECKS=$((CHECKS + 1))
    [ $((t1 - t0)) -lt 2500 ] || fail "$1: the failure took $((t1 - t0)) ms (the stall limit is 3 s)"
    log "$1: the request failed after $((t1 - t0)) ms"
}
if [ "$REL_IPC" = unix ] || [ "$REL_IPC" = fd ]; then
    rel_add runs
    rel_start_cache CACHE
    rel_wait_cache "$CACHE" || die "simplecached did not start"
    wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service before the descriptor test"
    # Its own descriptors + 3: the acceptor's queue of connections (bounded, docs/ipc.md
    # "Connections") would stop it long before a fixed limit such as 64.
    nofile=$(($(rel_fd_count "$CACHE") + 3))
    prlimit --pid "$CACHE" --nofile="$nofile"
    log "the cache's RLIMIT_NOFILE set to $nofile while it runs"
    python3 - "$GF_RUNDIR/getfile-$REL_UID-$REL_IPC.sock" 150 "$WORK/conns.ready" <<'PY' &
import socket, sys, time
path, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
    except OSError:
        break
    socks.append(s)
open(ready, "w").write(str(len(socks)))
time.sleep(4)
for s in socks:
    s.close()
PY
    HOLDER=$!
    wait_for 20 test -s "$WORK/conns.ready" || fail "connections to the cache not opened"
    log "$(cat "$WORK/conns.ready") connections to the cache held open without a request"
    idle_while_out_of_fds "$CACHE" simplecached
    CHECKS=$((CHECKS + 1))
    grep -q 'socket: accept failed' "$(logfile_of "$CACHE")" ||
        fail "no warning about a failed accept (did descriptors run out?)"
    wait "$HOLDER" || true
    wait_for 20 rel_serves "$PORT" "$WL_SMALL" || fail "no service after the connections closed"
    rel_get_strict "after the cache ran out of descriptors" "$PORT" "$WL_MIX" 4 1
    CHECKS=$((CHECKS + 1))
    rel_alive "$PROXY" || fail "the proxy died"
    rel_stop_check "webproxy" "$PROXY"
    rel_stop_check "simplecached (fd limit)" "$CACHE"
    assert_no_ipc_left
    rel_report
    finish
    exit 0
fi
if [ "$REL_IPC" = sysv ]; then
    K=/proc/sys/kernel
    orig_msgmni=$(cat $K/msgmni) orig_msgmax=$(cat $K/msgmax) orig_shmmni=$(cat $K/shmmni)

    rel_add runs
    echo 0 >$K/msgmni
    rel_start_cache LPID
    st=0
    wait_for 20 eval '! rel_alive "$LPID"' || fail "kernel.msgmni=0: the cache runs without a queue"
    wait "$LPID" 2>/dev/null || st=$?
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 3 ] || fail "kernel.msgmni=0: cache exit status $st, expected 3 (cannot start)"
    rel_check_exit "kernel.msgmni=0" "$st" "$(logfile_of "$LPID")" any
    CHECKS=$((CHECKS + 1))
    grep -q "kernel.msgmni" "$(logfile_of "$LPID")" ||
        fail "kernel.msgmni=0: the cache's message does not name it: $(grep ' E ' "$(logfile_of "$LPID")" | head -2)"
    log "kernel.msgmni=0: $(grep ' E ' "$(logfile_of "$LPID")" | head -1 | cut -d' ' -f4-)"
    fails_at_once "kernel.msgmni=0, no cache"
    rel_assert_no_objects_of "kernel.msgmni=0" "$LPID"
    echo "$orig_msgmni" >$K/msgmni

    rel_add runs
    rel_start_cache CACHE
    rel_wait_cache "$CACHE" || die "simplecached does not start with kernel.msgmni restored"
    wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service with kernel.msgmni restored"
    echo 32 >$K/msgmax # below the request message: msgsnd fails with EINVAL
    fails_at_once "kernel.msgmax=32"
    echo "$orig_msgmax" >$K/msgmax
    rel_get_strict "kernel.msgmax restored" "$PORT" "$WL_MIX" 4 1

    rel_add runs
    echo $(($(awk 'NR > 1' /proc/sysvipc/shm | wc -l) + 3)) >$K/shmmni # 3 more: not 8
    P3PORT=$(free_port)
    rel_start_proxy P3 "$P3PORT" webproxy -n 8 -z 65536
    st=0
    wait_for 20 eval '! rel_alive "$P3"' || fail "webproxy with a pool over kernel.shmmni keeps running"
    wait "$P3" 2>/dev/null || st=$?
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 3 ] || fail "pool over kernel.shmmni: webproxy status $st, expected 3"
    rel_check_exit "webproxy, pool over kernel.shmmni" "$st" "$(logfile_of "$P3")" any
    log "pool over kernel.shmmni: $(grep ' E ' "$(logfile_of "$P3")" | head -1 | cut -d' ' -f4-)"
    rel_assert_no_objects_of "webproxy, pool over kernel.shmmni" "$P3"
    echo "$orig_shmmni" >$K/shmmni
    rel_get_strict "kernel.shmmni restored" "$PORT" "$WL_MIX" 4 1

    CHECKS=$((CHECKS + 1))
    rel_alive "$PROXY" || fail "the proxy died under the System V limits"
    rel_stop_check "webproxy" "$PROXY"
    rel_stop_check "simplecached" "$CACHE"
    assert_no_ipc_left
    rel_report
    finish
    exit 0
fi

# cache_under_limit WHAT WORD SETUP... : SETUP is run first (eval), then a cache is started;
# it must serve (adapted) or exit 3 (cannot start) with WORD in its log. The limit is restored by RESTORE.
cache_under_limit() {
    local what=$1 word=$2 st=0 log
    rel_add runs
    rel_start_cache LPID
    log=$(logfile_of "$LPID")
    wait_for 20 eval '! rel_alive "$LPID" || rel_cache_ready "$LPID"' || fail "$what: cache hangs"
    if rel_alive "$LPID"; then
        log "$what: the cache adapted and runs"
        wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "$what: the cache runs but serves nothing"
        rel_get_strict "$what (adapted)" "$PORT" "$WL_MIX" 4 1
        rel_stop_check "simplecached ($what)" "$LPID"
    else
        wait "$LPID" 2>/dev/null || st=$?
        CHECKS=$((CHECKS + 1))
        [ "$st" -eq 3 ] || fail "$what: cache exit status $st, expected 3 (cannot start)"
        rel_check_exit "$what" "$st" "$log" any
        CHECKS=$((CHECKS + 1))
        grep -q -- "$word" "$log" || fail "$what: the cache's message does not name $word: $(grep ' E ' "$log" | head -3)"
        log "$what: $(grep ' E ' "$log" | head -1 | cut -d' ' -f4-)"
        # Meanwhile the proxy answers, as a failure, at once.
        rel_get "$PORT" "$WL_SMALL" 0 1 20
        CHECKS=$((CHECKS + 1))
        [ "$DL_FAILED" = 1 ] || fail "$what: with no cache the request did not fail"
    fi
    rel_assert_no_objects_of "$what" "$LPID"
}

# ---- 1. mqueue limits ----------------------------------------------------------------------
orig_msg_max=$(cat $MQ/msg_max) orig_msgsize_max=$(cat $MQ/msgsize_max)
orig_queues_max=$(cat $MQ/queues_max)

echo 4 >$MQ/msg_max
cache_under_limit "msg_max=4" msg_max
echo "$orig_msg_max" >$MQ/msg_max

echo 1024 >$MQ/msgsize_max
cache_under_limit "msgsize_max=1024" msgsize_max
echo "$orig_msgsize_max" >$MQ/msgsize_max

echo 0 >$MQ/queues_max
cache_under_limit "queues_max=0" queues_max
echo "$orig_queues_max" >$MQ/queues_max

REL_PREFIX=(prlimit --msgqueue=2048 "${NOCAP[@]}")
cache_under_limit "RLIMIT_MSGQUEUE=2048" RLIMIT_MSGQUEUE
REL_PREFIX=("${NOCAP[@]}")

# With the limits back, a cache starts and the same proxy serves everything.
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached does not start with the limits restored"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service once the limits are restored"
rel_get_strict "limits restored" "$PORT" "$WL_MIX" 4 1

# ---- 3. IPC objects removed from under running processes ------------------------------------
# 3a. The proxy's segments disappear (unlinked; the proxy still maps them): the cache cannot
# attach one and answers nothing, so each request given a removed segment fails after the
# proxy's stall limit (3 s here) and is reported; the segment is then replaced. Two requests at
# a time use both segments; then the pool is whole again and serves everything.
rel_add runs
for s in /dev/shm/getfile-"$REL_UID"-"$PROXY"-seg*; do rm -f "$s"; done
WL_MULTI2=$(rel_workload multi2 /multi /multi)
for ((r = 1; r <= 4; r++)); do
    rel_get "$PORT" "$WL_MULTI2" 0 2 40
    log "segments removed, round $r: $DL_OK ok, $DL_FAILED failed (reported)"
    [ "$(rel_segments_of "$PROXY")" -eq 2 ] && break
done
CHECKS=$((CHECKS + 1))
[ "$(rel_segments_of "$PROXY")" -eq 2 ] ||
    fail "after its segments were removed the proxy has $(rel_segments_of "$PROXY") of 2"
rel_get_strict "segments removed and replaced" "$PORT" "$WL_MIX" 4 1 0 2

# 3b. The cache's queue disappears: the proxy already connected keeps its descriptor and is
# served; a proxy started afterwards finds the registry but not the queue. The cache notices
# within a second or two, creates its queue again under the same name (still reading the old
# one, which connected proxies hold until their next check) and writes its registry again.
# (Before the fix nothing noticed and new proxies never reached the cache.)
rel_add runs
rm -f "/dev/mqueue/getfile-$REL_UID-$CACHE-cmd"
rel_get_strict "queue removed, connected proxy" "$PORT" "$WL_MIX" 4 1
PORT2=$(free_port)
rel_start_proxy P2 "$PORT2" webproxy -n 1 -z 8192 --cache-stall 3000
wait_port "$PORT2"
rel_known queue_removed_unnoticed "a proxy started after the cache's queue was removed never reaches the cache" \
    wait_for 5 rel_serves "$PORT2" "$WL_SMALL"
rel_get_strict "queue re-created, new proxy" "$PORT2" "$WL_MIX" 4 1
rel_get_strict "queue re-created, proxy connected before" "$PORT" "$WL_MIX" 4 1
CHECKS=$((CHECKS + 1))
grep -q "command queue .* was removed or replaced: created it again" "$(logfile_of "$CACHE")" ||
    fail "the cache did not log that it re-created its queue"
rel_stop_check "webproxy (new, queue removed)" "$P2"
rel_stop_check "simplecached (queue removed)" "$CACHE"
rel_assert_no_objects_of "cache with its queue removed" "$CACHE"

# 3c. The cache's registry disappears (the cache still holds its lock on the unlinked object).
# A second cache still refuses to start (the single-instance lock is a flock on the runtime
# directory, which stays while the cache runs), and names the first; the first creates, locks and publishes its registry
# again, so a proxy started afterwards finds it. (Before the fix the second cache started
# beside the first, and the first's stop unlinked the registry by name, which was the second's;
# with two caches running the checks below keep those ids.)
rel_add runs
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached did not start"
rm -f "$GF_RUNDIR/getfile-$REL_UID-cache"
rel_start_cache C2 simplecached -w 0
wait_for 10 eval '! rel_alive "$C2" || rel_cache_ready "$C2"' || true
rel_known registry_removed_two_caches "with the registry removed a second simplecached starts beside the first" \
    eval '! rel_alive "$C2"'
if rel_alive "$C2"; then
    rel_stop_check "first simplecached (registry removed)" "$CACHE"
    rel_known registry_unlinked_by_other "the first cache's stop removed the second cache's registry" \
        test -e "$GF_RUNDIR/getfile-$REL_UID-cache"
    rel_stop_check "second simplecached" "$C2"
else
    st=0
    wait "$C2" || st=$?
    rel_check_exit "second simplecached (registry removed)" "$st" "$(logfile_of "$C2")" any
    CHECKS=$((CHECKS + 1))
    [ "$st" -eq 3 ] && grep -q "another simplecached (pid $CACHE) is already running" "$(logfile_of "$C2")" ||
        fail "the refused second cache (status $st) does not name the first: $(grep ' E ' "$(logfile_of "$C2")" | head -1)"
    wait_for 5 test -e "$GF_RUNDIR/getfile-$REL_UID-cache" || fail "the first cache did not re-create its registry"
    PORT4=$(free_port)
    rel_start_proxy P4 "$PORT4" webproxy -n 1 -z 8192 --cache-stall 3000
    wait_port "$PORT4"
    wait_for 5 rel_serves "$PORT4" "$WL_SMALL" || fail "a proxy started after the registry was removed never reaches the cache"
    rel_get_strict "registry re-created, new proxy" "$PORT4" "$WL_MIX" 4 1
    rel_stop_check "webproxy (new, registry removed)" "$P4"
    rel_stop_check "simplecached (registry removed)" "$CACHE"
    CHECKS=$((CHECKS + 1))
    [ ! -e "$GF_RUNDIR/getfile-$REL_UID-cache" ] || fail "the first cache's stop left its re-created registry"
fi
rel_assert_no_objects_of "cache with its registry removed" "$CACHE"

# A fresh cache after all that: the proxy serves everything again.
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached does not start after the removals"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service from a fresh cache after the removals"
rel_get_strict "fresh cache after removals" "$PORT" "$WL_MIX" 4 1
rel_stop_check "webproxy" "$PROXY"
rel_stop_check "simplecached" "$CACHE"
assert_no_ipc_left

# ---- 2. /dev/shm too small ------------------------------------------------------------------
mount -o remount,size=1m /dev/shm
rel_add runs
P3PORT=$(free_port)
rel_start_proxy P3 "$P3PORT" webproxy -n 8 -z 1048576
st=0
wait_for 20 eval '! rel_alive "$P3"' || fail "webproxy with a pool larger than /dev/shm keeps running"
wait "$P3" || st=$?
CHECKS=$((CHECKS + 1))
[ "$st" -eq 3 ] || fail "pool larger than /dev/shm: webproxy status $st, expected 3 (135 = SIGBUS)"
rel_check_exit "webproxy, pool larger than /dev/shm" "$st" "$(logfile_of "$P3")" any
log "pool too large: $(grep ' E ' "$(logfile_of "$P3")" | head -1 | cut -d' ' -f4-)"
rel_assert_no_objects_of "webproxy, pool larger than /dev/shm" "$P3"

# Full while running: a transfer abandoned (its cache killed mid-way) needs a new segment, and
# /dev/shm has no room for it at that moment (GF_FAULT: the 4th posix_fallocate, the first after
# the stats object's and the two of the pool, fails with ENOSPC, as a full tmpfs makes it). The proxy must live on, and
# once there is room again the pool must be whole.
rel_add runs
P3PORT=$(free_port)
REL_ENV=("GF_FAULT=posix_fallocate:4:ENOSPC")
rel_start_proxy P3 "$P3PORT" webproxy_fi -n 2 -z 65536 --cache-stall 3000
REL_ENV=("GF_FAULT=shm_sem_post:3:kill")
rel_start_cache CFI simplecached_fi
REL_ENV=()
wait_port "$P3PORT"
rel_wait_cache "$CFI" || die "simplecached_fi did not start"
WL_MULTI=$(rel_workload multi /multi)
wait_for 15 eval 'rel_get "$P3PORT" "$WL_MULTI" 0 1 20; ! rel_alive "$CFI"' ||
    fail "the cache was not killed mid-transfer"
rel_add faults
CHECKS=$((CHECKS + 1))
wait_for 5 grep -q 'gf_fault: posix_fallocate' "$(logfile_of "$P3")" ||
    fail "no segment replacement was attempted after the abandoned transfer"
rel_add faults
CHECKS=$((CHECKS + 1))
rel_alive "$P3" || fail "webproxy died when a replacement segment found /dev/shm full"
log "with /dev/shm full the proxy has $(rel_segments_of "$P3") of 2 segments"
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached did not start"
wait_for 15 rel_serves "$P3PORT" "$WL_SMALL" || fail "no service after /dev/shm was freed"
rel_get_strict "after /dev/shm was freed" "$P3PORT" "$WL_MIX" 4 1 0 2
# The pool re-creates an empty slot when segments are taken or given back (at most once a
# second), so keep it busy while waiting.
wait_for 5 eval 'rel_serves "$P3PORT" "$WL_SMALL"; [ "$(rel_segments_of "$P3")" -eq 2 ]' ||
    fail "after /dev/shm was freed the pool has $(rel_segments_of "$P3") of 2 segments (never regrows)"
rel_stop_check "webproxy (shm full)" "$P3"
rel_stop_check "simplecached" "$CACHE"
mount -o remount,size=2g /dev/shm

# ---- 4. out of file descriptors on accept ---------------------------------------------------
rel_add runs
rel_start_cache CACHE
rel_wait_cache "$CACHE" || die "simplecached did not start"
P4PORT=$(free_port)
REL_PREFIX=(prlimit --nofile=64)
# -q 1000 -W 1000 -C 1000: the boss would queue, and hold waiting for a header, every
# connection it can accept, so descriptors run out first (by default -W is half the fd limit,
# and the boss evicts the oldest waiting connection instead of running out).
rel_start_proxy P4 "$P4PORT" webproxy -n 2 -z 8192 -H 3000 -q 1000 -W 1000 -C 1000
REL_PREFIX=()
wait_port "$P4PORT"
wait_for 15 rel_serves "$P4PORT" "$WL_SMALL" || fail "no service before the fd test"
# 200 idle connections (no request sent) held open by one helper.
python3 - "$P4PORT" 200 "$WORK/idle.ready" <<'PY' &
import socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        break
    socks.append(s)
open(ready, "w").write(str(len(socks)))
time.sleep(4)
for s in socks:
    s.close()
PY
IDLE=$!
wait_for 20 test -s "$WORK/idle.ready" || fail "idle connections not opened"
idle_while_out_of_fds "$P4" webproxy
CHECKS=$((CHECKS + 1))
grep -q 'cannot accept connections; pausing' "$(logfile_of "$P4")" ||
    fail "no log line about pausing accept (did descriptors run out?)"
wait "$IDLE" || true
wait_for 20 rel_serves "$P4PORT" "$WL_SMALL" || fail "no service after the idle connections closed"
rel_get_strict "after fd exhaustion" "$P4PORT" "$WL_MIX" 4 1 0 2
CHECKS=$((CHECKS + 1))
rel_alive "$P4" || fail "webproxy died when out of fds"
rel_stop_check "webproxy (fd limit)" "$P4"
rel_stop_check "simplecached" "$CACHE"

assert_no_ipc_left
rel_report
finish
