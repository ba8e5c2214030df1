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
# Variables set here are read by rel_common.sh functions (REL_PREFIX, CORPUS, ...).
# shellcheck disable=SC2034
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"

SQ=65534
AS_SQ=(setpriv "--reuid=$SQ" "--regid=$SQ" --clear-groups)
SQUAT=$SRC_DIR/tests/integration/rel_squat.py
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
    out=$("${AS_SQ[@]}" /usr/bin/python3 "$SQUAT" --uid "$@") || die "the squatter failed: $out"
    log "squatter for uid $1: $out"
}
squat_watch() {
    spawn SQW "${AS_SQ[@]}" /usr/bin/python3 "$SQUAT" --uid "$1" --watch
    wait_for 10 grep -q '^ready' "$(logfile_of "$SQW")" || die "the watching squatter did not start"
}

# owned_by UID: every name in /dev/shm, /dev/mqueue and the runtime directories owned by UID.
owned_by() {
    find /dev/shm /dev/mqueue "$GF_RUNDIR" -mindepth 1 -user "$1" ! -type d -printf '%P\n' 2>/dev/null
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
unsquat() {
    [ -z "${SQW:-}" ] || { stop "$SQW" || true; log "$(tail -1 "$(logfile_of "$SQW")")"; }
    SQW=
    find /dev/shm /dev/mqueue -mindepth 1 -maxdepth 1 -user "$SQ" -exec rm -rf {} +
}

# ---- 1. root ------------------------------------------------------------------------------------
log "1. root's daemons, everything squatted before they start and while they run"
PORT=$(free_port)
gated CACHE c1 env "$BIN_DIR/simplecached" -c "$CORPUS/locals.txt" -t 4 -d 0 -w 0
gated PROXY p1 env "$BIN_DIR/webproxy" -p "$PORT" -t 4 -n 2 -z 8192 --cache-stall 5000
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
check "the proxy has its 2 segments, of root, mode 0600" test "$(segs_of 0 "$PROXY")" -eq 2
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
for _ in $(seq 100); do
    grep -q "getfile-0-$PROXY-seg" "/proc/$CACHE/maps" 2>/dev/null && break
    nap
done
rel_signal "$CACHE" KILL
wait "$CACHE" 2>/dev/null || true
DL_RC=0
wait "$BIGDL" || DL_RC=$?
rel_get_check # byte-exact or failed, never wrong bytes
log "downloads while the cache died: $DL_OK ok, $DL_FAILED failed"
gated CACHE c2 env "$BIN_DIR/simplecached" -c "$CORPUS/locals.txt" -t 4 -d 0 -w 0
squat_before 0 --cache "$CACHE"
release c2
rel_add runs
wait_for 20 queue_up 0 "$CACHE" || die "the restarted simplecached did not start: $(tail -3 "$(logfile_of "$CACHE")")"
wait_for 15 rel_serves "$PORT" "$WL_SMALL" || fail "no service from the restarted cache"
rel_get_strict "root, squatted, after a cache restart" "$PORT" "$WL" 8 0 8 2
check "the proxy still has its 2 segments" test "$(segs_of 0 "$PROXY")" -eq 2
check "the squatter took the next segment names while they ran" \
    test "$(find /dev/shm -maxdepth 1 -user "$SQ" -name "getfile-0-$PROXY-seg*" | wc -l)" -gt 3
check "nothing of the squatter's was opened, changed or removed" squat_intact
rel_stop_check "root's webproxy" "$PROXY"
rel_stop_check "root's simplecached" "$CACHE"
check "nothing of root's left" test -z "$(owned_by 0)"
unsquat

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
