#!/usr/bin/env bash
# rel_squat.sh - another user (nobody, 65534) takes every name of ours it can see or guess in the
# namespaces every user may write, before our daemons start and while they run
# (tests/integration/rel_squat.py): the registry's old name in /dev/shm, the old abstract
# socket of the instance lock, the cache's queue name and both daemons' stats object names
# (their pids are known before they start), the proxy's next segment names (and one as a symlink), the last-resort runtime directory, and
# while they run the next segment serials of every proxy. Then:
#   1. root's daemons (runtime directory /run/getfile) start, serve byte-exact, survive a cache
#      killed mid-transfer (every segment replaced while the next serials are taken) and a
#      restarted cache whose queue name was taken, and stop leaving nothing of root's behind;
#      the squatter's objects are never opened (still its own, empty) and never removed;
#   2. a user with its own $XDG_RUNTIME_DIR, everything squatted: the same;
#   3. a user whose $XDG_RUNTIME_DIR belongs to the squatter: not used (nothing written there),
#      the last resort /dev/shm/getfile-<uid> is;
#   4. a user without a runtime directory whose last resort the squatter took first: both daemons
#      refuse to start (exit 3, naming GETFILE_RUNTIME_DIR), use nothing of the squatter's; with
#      GETFILE_RUNTIME_DIR (a directory of its own, mode 0755: narrowed to 0700) they serve.
# rel_squat.sh BACKEND (sysv, unix, fd; tests/reliability.cmake, label ipc_<backend>): part 1 only
# (parts 2-4 test the runtime directory's choice, the same for every backend), both daemons on
# --ipc BACKEND, with what that backend adds:
#   sysv: the squatter also takes the System V queue key of each cache's pid (before it starts,
#     and of the next pids while they run) and 256 segment keys: the cache starts anyway on a
#     random key it publishes in the runtime directory (sysv_pub.h), the proxy finds it there;
#     no queue or segment of the squatter's is ever sent to or attached (qnum, lspid, nattch 0);
#   unix, fd: the squatter cannot bind or connect the socket names (the directory is 0700);
#     with the directory opened up by hand (a misconfiguration), another uid's connection to the
#     cache is closed unanswered (SO_PEERCRED) and, the cache stopped, a fake cache of another
#     uid under the socket name gets no request from the proxy, whose client gets ERROR.
# Variables set here are read by rel_common.sh functions (REL_PREFIX, CORPUS, ...).
# shellcheck disable=SC2034
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"

SQ=65534
AS_SQ=(setpriv "--reuid=$SQ" "--regid=$SQ" --clear-groups)
SQUAT=$SRC_DIR/tests/integration/rel_squat.py
BE=${1:-}
IPC=()
SQ_BE=()
case "$BE" in
"") ;;
sysv) SQ_BE=(--sysv) ;;
unix | fd) SQ_BE=(--sock "$GF_RUNDIR") ;;
*) die "unknown backend '$BE'" ;;
esac
[ -z "$BE" ] || IPC=(--ipc "$BE")
chmod 755 "$WORK"
rel_corpus big
chmod -R a+rX "$WORK"
WL=$(rel_workload all /small /road.jpg /multi /big)
WL_SMALL=$(rel_workload small /small)
WL_BIG=$(rel_workload big /big /big /big /big)

# gated VAR NAME CMD...: starts CMD (exec'd, so VAR is its pid) once `release NAME` is called.
gated() {
    local __v=$1 fifo=$WORK/gate.$2
    shift 2
    mkfifo "$fifo"
    spawn "$__v" bash -c 'exec 3<"$0"; read -r _ <&3; exec 3<&-; exec "$@"' "$fifo" "$@"
}
release() {
    timeout 10 bash -c "echo go >'$WORK/gate.$1'" || die "gate $1: the process did not wait"
    rm -f "$WORK/gate.$1"
}

# squat_before UID [--cache PID] [--proxy PID]: the squatter's pre-start round (returns once
# ready). squat_watch UID: the squatter that keeps taking names, in the background (SQW).
squat_before() {
    local out
    out=$("${AS_SQ[@]}" /usr/bin/python3 "$SQUAT" "${SQ_BE[@]}" --uid "$@") || die "the squatter failed: $out"
    log "squatter for uid $1: $out"
    echo "$out" >>"$WORK/squat.before"
}
squat_watch() {
    spawn SQW "${AS_SQ[@]}" /usr/bin/python3 "$SQUAT" "${SQ_BE[@]}" --uid "$1" --watch
    wait_for 10 grep -q '^ready' "$(logfile_of "$SQW")" || die "the watching squatter did not start"
}

# owned_by UID: every name in /dev/shm, /dev/mqueue and the runtime directories owned by UID.
owned_by() {
    find /dev/shm /dev/mqueue "$GF_RUNDIR" -mindepth 1 -user "$1" ! -type d -printf '%P\n' 2>/dev/null
    awk -v u="$1" 'FNR > 1 && $8 == u { print FILENAME, $1 }' /proc/sysvipc/msg /proc/sysvipc/shm
}
# segs_be UID PID: the proxy's segments of its backend (posix: in /dev/shm, mode 0600; sysv: of
# uid and created by PID, mode 0600; none on unix and fd).
segs_be() {
    case "$BE" in
    sysv) awk -v u="$1" -v p="$2" 'NR > 1 && $5 == p && $8 == u && ($3 == 600 || $3 == 1600)' /proc/sysvipc/shm | wc -l ;;
    unix | fd) echo 2 ;;
    *) segs_of "$@" ;;
    esac
}
# sysv_untouched: no System V queue of the squatter's was ever sent to or received from (qnum,
# lspid, lrpid 0), none of its segments is attached (nattch 0).
sysv_untouched() {
    local bad
    bad=$(awk -v u="$SQ" 'NR > 1 && $8 == u && ($5 != 0 || $6 != 0 || $7 != 0)' /proc/sysvipc/msg)
    bad+=$(awk -v u="$SQ" 'NR > 1 && $8 == u && $7 != 0' /proc/sysvipc/shm)
    [ -z "$bad" ] || { log "squatter's System V objects used: $bad"; return 1; }
}
# queue_of UID PID: the name of cache PID's queue owned by UID ("" if none).
queue_of() {
    find /dev/mqueue -maxdepth 1 -user "$1" -name "getfile-$1-$2-cmd*" -printf '%f\n' 2>/dev/null
}
queue_up() { [ -n "$(queue_of "$1" "$2")" ]; }
# segs_of UID PID: segments of proxy PID owned by UID, with mode 0600.
segs_of() {
    find /dev/shm -maxdepth 1 -user "$1" -perm 600 -type f -name "getfile-$1-$2-seg*" | wc -l
}
# squat_intact: every object of the squatter is still its own, of its mode, and empty (nobody of
# ours wrote into it, truncated it or replaced it).
squat_intact() {
    local bad
    bad=$(find /dev/shm /dev/mqueue -mindepth 1 -maxdepth 1 -name 'getfile-*' -user "$SQ" \
        -type f ! -perm 666 -print 2>/dev/null)
    bad+=$(find /dev/shm -maxdepth 1 -name 'getfile-*' -user "$SQ" -type f -size +0 -print)
    [ -z "$bad" ] || { log "squatter objects changed: $bad"; return 1; }
}
# unsquat: the squatter's objects removed (as root), its watcher stopped.
# unwatch: the watching squatter stopped (and on unix and fd, its tries at the socket names
# while the daemons ran checked).
unwatch() {
    [ -n "${SQW:-}" ] || return 0
    stop "$SQW" || true
    log "$(tail -1 "$(logfile_of "$SQW")")"
    if [ "$BE" = unix ] || [ "$BE" = fd ]; then
        local line
        line=$(grep '^sockets refused .* while the daemons ran' "$(logfile_of "$SQW")" || true)
        log "the watching squatter: $line"
        check "while they ran, every try at the socket names was refused ($line)" \
            awk '{ ok = $3 > 0 && $3 == $5 } END { exit !ok }' <<<"$line"
    fi
    SQW=
}
unsquat() {
    unwatch
    find /dev/shm /dev/mqueue -mindepth 1 -maxdepth 1 -user "$SQ" -exec rm -rf {} +
    local id
    for id in $(awk -v u="$SQ" 'NR > 1 && $8 == u { print $2 }' /proc/sysvipc/msg); do ipcrm -q "$id"; done
    for id in $(awk -v u="$SQ" 'NR > 1 && $8 == u { print $2 }' /proc/sysvipc/shm); do ipcrm -m "$id"; done
}

# ---- 1. root ------------------------------------------------------------------------------------
log "1. root's daemons, everything squatted before they start and while they run"
PORT=$(free_port)
gated CACHE c1 env "$BIN_DIR/simplecached" "${IPC[@]}" -c "$CORPUS/locals.txt" -t 4 -d 0 -w 0
gated PROXY p1 env "$BIN_DIR/webproxy" "${IPC[@]}" -p "$PORT" -t 4 -n 2 -z 8192 --cache-stall 5000
squat_before 0 --cache "$CACHE" --proxy "$PROXY" --segments 2 # the watcher takes the rest
squat_watch 0
check "the squatter holds the cache's plain queue name" \
    test "$(stat -c %u "/dev/mqueue/getfile-0-$CACHE-cmd")" = "$SQ"
check "the squatter holds the proxy's first segment name" \
    test "$(stat -c %u "/dev/shm/getfile-0-$PROXY-seg1")" = "$SQ"
release c1
release p1
rel_add runs
wait_for 20 queue_up 0 "$CACHE" || die "root's simplecached did not start: $(tail -3 "$(logfile_of "$CACHE")")"
log "cache queue: $(queue_of 0 "$CACHE")"
check "the cache's queue is not the squatted name" test "$(queue_of 0 "$CACHE")" != "getfile-0-$CACHE-cmd"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "root's proxy does not serve"
rel_get_strict "root, squatted" "$PORT" "$WL" 8 0 8 2
check "the proxy has its 2 segments, of root, mode 0600" test "$(segs_be 0 "$PROXY")" -eq 2
if [ "$BE" = sysv ]; then
    check "the cache's pid key was taken: it says so" grep -q 'is taken by another process' "$(logfile_of "$CACHE")"
    check "its queue's key is published in /run/getfile, of root, mode 0600" \
        test "$(stat -c '%u %a' "$GF_RUNDIR/getfile-0-sysv.key")" = "0 600"
fi
if [ "$BE" = unix ] || [ "$BE" = fd ]; then
    check "the squatter could bind, connect or unlink none of the socket names" \
        grep -q 'sockets refused 6 of 6' "$WORK/squat.before"
fi
check "the registry is in /run/getfile, of root, mode 0600" \
    test "$(stat -c '%u %a' "$GF_RUNDIR/getfile-0-cache")" = "0 600"
check "/run/getfile is 0700 (mounted 0700 by lib.sh)" test "$(stat -c %a "$GF_RUNDIR")" = 700
for who in CACHE PROXY; do
    check "the ${who,,} has its stats object (the plain name was taken)" test -n \
        "$(find /dev/shm -maxdepth 1 -user 0 -perm 600 -name "getfile-0-${!who}-stats?*" -print -quit)"
done

# The cache dies mid-transfer: every segment in use is replaced, its next serials are taken.
rel_get_start "$PORT" "$WL_BIG" 4 2 60
BIGDL=$DL_PID
# In flight: the cache maps the proxy's segment (posix, sysv) or has a connection (unix, fd).
for _ in $(seq 100); do
    case "$BE" in
    sysv) grep -q "SYSV" "/proc/$CACHE/maps" 2>/dev/null && break ;;
    unix | fd) [ "$(find "/proc/$CACHE/fd" -lname 'socket:*' 2>/dev/null | wc -l)" -gt 2 ] && break ;;
    *) grep -q "getfile-0-$PROXY-seg" "/proc/$CACHE/maps" 2>/dev/null && break ;;
    esac
    nap
done
rel_signal "$CACHE" KILL
wait "$CACHE" 2>/dev/null || true
DL_RC=0
wait "$BIGDL" || DL_RC=$?
rel_get_check # byte-exact or failed, never wrong bytes
log "downloads while the cache died: $DL_OK ok, $DL_FAILED failed"
gated CACHE c2 env "$BIN_DIR/simplecached" "${IPC[@]}" -c "$CORPUS/locals.txt" -t 4 -d 0 -w 0
squat_before 0 --cache "$CACHE"
release c2
rel_add runs
wait_for 20 queue_up 0 "$CACHE" || die "the restarted simplecached did not start: $(tail -3 "$(logfile_of "$CACHE")")"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service from the restarted cache"
rel_get_strict "root, squatted, after a cache restart" "$PORT" "$WL" 8 0 8 2
check "the proxy still has its 2 segments" test "$(segs_be 0 "$PROXY")" -eq 2
if [ -z "$BE" ] || [ "$BE" = posix ]; then
    check "the squatter took the next segment names while they ran" \
        test "$(find /dev/shm -maxdepth 1 -user "$SQ" -name "getfile-0-$PROXY-seg*" | wc -l)" -gt 3
fi
check "nothing of the squatter's was opened, changed or removed" squat_intact
if [ "$BE" = sysv ]; then
    check "the squatter holds the restarted cache's pid key" \
        awk -v u="$SQ" -v k=$((0x67 << 24 | CACHE)) 'NR > 1 && $1 == k && $8 == u { f = 1 } END { exit !f }' /proc/sysvipc/msg
    check "no System V queue or segment of the squatter's was used" sysv_untouched
    check "the restarted cache removed the killed one's queue (random key, by its record)" \
        grep -q 'removed the queue of a dead cache' "$(logfile_of "$CACHE")"
fi
if [ "$BE" = unix ] || [ "$BE" = fd ]; then
    sock=$GF_RUNDIR/getfile-0-$BE.sock
    BE_NUM=2 # enum ipc_backend
    [ "$BE" = unix ] || BE_NUM=3
    log "unix/fd: the runtime directory opened up by hand: SO_PEERCRED is the second wall"
    unwatch # its tries would succeed now
    chmod 0711 "$GF_RUNDIR"
    chmod 0666 "$sock"
    out=$("${AS_SQ[@]}" timeout 20 python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
p = b"/small"
try:
    s.sendall(b"GFSQ" + struct.pack("=HHII", 1, int(sys.argv[2]), len(p), 0) + p)
    print("answer bytes", len(s.recv(4096)))
except OSError as e:
    print("cut", e.errno)
' "$sock" "$BE_NUM" 2>&1)
    chmod 0600 "$sock"
    chmod 0700 "$GF_RUNDIR"
    log "another uid connecting to the cache: $out"
    check "another uid's connection is closed unanswered" grep -Eq '^(answer bytes 0|cut [0-9]+)$' <<<"$out"
    rel_stop_check "root's simplecached" "$CACHE"
    chmod 0733 "$GF_RUNDIR"
    spawn FAKE "${AS_SQ[@]}" timeout 60 python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
print("listening", flush=True)
s.settimeout(30)
n = 0
while True:
    try:
        c, _ = s.accept()
    except OSError:
        break
    c.settimeout(2)
    try:
        got = c.recv(4096)
    except OSError:
        got = b""
    n += 1
    print("connection", n, "request bytes", len(got), flush=True)
    body = b"FAKE" * 256
    c.sendall(b"GFSR" + struct.pack("=HHIIQQQqq", 1, 1, 0, 0, len(body), 0, 0, 0, 0) + body)
    c.close()
' "$sock"
    wait_for 10 grep -q '^listening' "$(logfile_of "$FAKE")" || die "the fake cache did not start"
    chmod 0700 "$GF_RUNDIR"
    rel_get "$PORT" "$WL_SMALL" 2 1
    log "the proxy facing a fake cache of another uid: ok/failed $DL_OK/$DL_FAILED; fake: $(grep -c connection "$(logfile_of "$FAKE")") connection(s)"
    check "the proxy served nothing of the fake's" test "$DL_OK" -eq 0
    check "the fake cache got no request from the proxy" \
        bash -c "! grep -Eq 'request bytes [1-9]' '$(logfile_of "$FAKE")'"
    check "the proxy refused it by its uid" grep -q 'is not served by uid 0' "$(logfile_of "$PROXY")"
    stop "$FAKE" TERM 5 || true
    rm -f "$sock"
    CACHE=
fi
rel_stop_check "root's webproxy" "$PROXY"
[ -z "$CACHE" ] || rel_stop_check "root's simplecached" "$CACHE"
check "nothing of root's left" test -z "$(owned_by 0)"
unsquat
if [ -n "$BE" ]; then
    assert_no_ipc_left
    rel_report
    finish
    exit
fi

# ---- 2. a user with its own runtime directory ----------------------------------------------------
log "2. uid 4242 with its own XDG_RUNTIME_DIR, everything squatted"
V=4242
mkdir -m 0700 "$WORK/xdg$V"
chown "$V:$V" "$WORK/xdg$V"
AS_V=(setpriv "--reuid=$V" "--regid=$V" --clear-groups env "XDG_RUNTIME_DIR=$WORK/xdg$V")
PORT=$(free_port)
gated CACHE c3 "${AS_V[@]}" "$BIN_DIR/simplecached" -c "$CORPUS/locals.txt" -t 2 -d 0 -w 0
gated PROXY p3 "${AS_V[@]}" "$BIN_DIR/webproxy" -p "$PORT" -t 2 -n 2 -z 8192
squat_before "$V" --cache "$CACHE" --proxy "$PROXY"
squat_watch "$V"
release c3
release p3
rel_add runs
wait_for 20 queue_up "$V" "$CACHE" || die "uid $V's simplecached did not start: $(tail -3 "$(logfile_of "$CACHE")")"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "uid $V's proxy does not serve"
rel_get_strict "uid $V, squatted" "$PORT" "$WL" 8 0 8 2
check "its registry is in its XDG_RUNTIME_DIR" test -f "$WORK/xdg$V/getfile/getfile-$V-cache"
check "nothing of the squatter's was opened, changed or removed" squat_intact
rel_stop_check "uid $V's webproxy" "$PROXY"
rel_stop_check "uid $V's simplecached" "$CACHE"
check "nothing of uid $V's left" test -z "$(owned_by "$V")$(ls -A "$WORK/xdg$V/getfile")"
unsquat

# ---- 3. XDG_RUNTIME_DIR of the wrong owner -----------------------------------------------------
log "3. uid 4243 whose XDG_RUNTIME_DIR belongs to the squatter"
V=4243
mkdir -m 0777 "$WORK/xdg-evil"
chown "$SQ:$SQ" "$WORK/xdg-evil"
AS_V=(setpriv "--reuid=$V" "--regid=$V" --clear-groups env "XDG_RUNTIME_DIR=$WORK/xdg-evil")
PORT=$(free_port)
spawn CACHE "${AS_V[@]}" "$BIN_DIR/simplecached" -c "$CORPUS/locals.txt" -t 2 -d 0 -w 0
spawn PROXY "${AS_V[@]}" "$BIN_DIR/webproxy" -p "$PORT" -t 2 -n 2 -z 8192
rel_add runs
wait_for 20 queue_up "$V" "$CACHE" || die "uid $V's simplecached did not start: $(tail -3 "$(logfile_of "$CACHE")")"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "uid $V's proxy does not serve"
rel_get_strict "uid $V, foreign XDG_RUNTIME_DIR" "$PORT" "$WL" 4 0 4 1
check "nothing written into the squatter's directory" test -z "$(ls -A "$WORK/xdg-evil")"
check "the last resort /dev/shm/getfile-$V is used, 0700" \
    test "$(stat -c '%u %a' "/dev/shm/getfile-$V")" = "$V 700"
rel_stop_check "uid $V's webproxy" "$PROXY"
rel_stop_check "uid $V's simplecached" "$CACHE"
check "nothing of uid $V's left" test -z "$(owned_by "$V")$(ls -A "/dev/shm/getfile-$V")"
rmdir "/dev/shm/getfile-$V"

# ---- 4. the last resort taken first ----------------------------------------------------------------
log "4. uid 4244 without a runtime directory, its last resort taken first"
V=4244
squat_before "$V"
AS_V=(setpriv "--reuid=$V" "--regid=$V" --clear-groups env -u XDG_RUNTIME_DIR)
PORT=$(free_port)
spawn CACHE "${AS_V[@]}" "$BIN_DIR/simplecached" -c "$CORPUS/locals.txt" -t 2 -d 0 -w 0
spawn PROXY "${AS_V[@]}" "$BIN_DIR/webproxy" -p "$PORT" -t 2 -n 2 -z 8192
for who in CACHE PROXY; do
    st=0
    wait "${!who}" || st=$?
    rel_check_exit "uid $V's ${who,,}, last resort squatted" "$st" "$(logfile_of "${!who}")" any
    check "uid $V's ${who,,} exits 3" test "$st" -eq 3
    check "uid $V's ${who,,} says what to do" grep -q "GETFILE_RUNTIME_DIR" "$(logfile_of "${!who}")"
done
check "nothing of uid $V's anywhere" test -z "$(owned_by "$V")$(ls -A "/dev/shm/getfile-$V")"
mkdir -m 0755 "$WORK/rd$V"
chown "$V:$V" "$WORK/rd$V"
AS_V+=("GETFILE_RUNTIME_DIR=$WORK/rd$V")
spawn CACHE "${AS_V[@]}" "$BIN_DIR/simplecached" -c "$CORPUS/locals.txt" -t 2 -d 0 -w 0
spawn PROXY "${AS_V[@]}" "$BIN_DIR/webproxy" -p "$PORT" -t 2 -n 2 -z 8192
rel_add runs
wait_for 20 queue_up "$V" "$CACHE" || die "uid $V's simplecached did not start with GETFILE_RUNTIME_DIR"
wait_port "$PORT"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "uid $V's proxy does not serve"
rel_get_strict "uid $V, GETFILE_RUNTIME_DIR" "$PORT" "$WL" 4 0 4 1
check "GETFILE_RUNTIME_DIR narrowed to 0700" test "$(stat -c %a "$WORK/rd$V")" = 700
rel_stop_check "uid $V's webproxy" "$PROXY"
rel_stop_check "uid $V's simplecached" "$CACHE"
check "nothing of uid $V's left" test -z "$(owned_by "$V")$(ls -A "$WORK/rd$V")"
unsquat

assert_no_ipc_left
rel_report
finish
