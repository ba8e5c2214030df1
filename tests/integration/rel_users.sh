#!/usr/bin/env bash
# rel_users.sh - two users side by side: root and nobody (65534), each with its own cache and
# proxy on its own ports, in the same IPC namespace. Checks: both start (no name collision, no
# "another cache is running"), each proxy serves its own user's content (the same request path
# names different files), every object carries its owner's uid and mode 0600, and neither user
# can open the other's objects (shm_open / mq_open fail with EACCES; root is tried without
# CAP_DAC_OVERRIDE and CAP_IPC_OWNER, which would let it open anything).
# rel_users.sh BACKEND (sysv, unix, fd; label ipc_<backend>): both users on --ipc BACKEND, and
# the probes are that backend's objects: System V queues and segments by id (IPC_STAT, shmat),
# the cache's socket (connect).
# Variables set here are read by rel_common.sh functions (REL_ENV, DL_RC, ...).
# shellcheck disable=SC2034
[ -z "${1:-}" ] || [ "$1" = posix ] || export GETFILE_TEST_IPC=$1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"
BE=${1:-posix}
IPC=() NB_IPC=()
[ "$BE" = posix ] || NB_IPC=(--ipc "$BE")
# rel_common.sh may pass GETFILE_TEST_IPC on itself (REL_IPC_ARGS); otherwise it is done here.
declare -p REL_IPC_ARGS >/dev/null 2>&1 || IPC=("${NB_IPC[@]}")

NOBODY=65534
chmod 755 "$WORK"
rel_corpus
# nobody's corpus: the same request paths, other bytes (make_file seeds with the local path).
NB_CORPUS=$WORK/corpus_nobody
mkdir -p "$NB_CORPUS/files"
make_file "$NB_CORPUS/files/small" 1024
make_file "$NB_CORPUS/files/multi" 300000
printf '/small %s\n/multi %s\n' "$NB_CORPUS/files/small" "$NB_CORPUS/files/multi" \
    >"$NB_CORPUS/locals.txt"
chmod -R a+rX "$WORK"
cmp -s "$NB_CORPUS/files/small" "$CORPUS/files/small" && die "the two corpora are equal"
WL=$(rel_workload both /small /multi)
WL_SMALL=$(rel_workload small /small)
AS_NOBODY=(setpriv "--reuid=$NOBODY" "--regid=$NOBODY" --clear-groups)
ROOT_NODAC=(setpriv "--bounding-set=-dac_override,-dac_read_search,-fowner,-ipc_owner")

# ---- both users up -----------------------------------------------------------------------------
RPORT=$(free_port)
rel_start_cache RCACHE simplecached "${IPC[@]}"
rel_start_proxy RPROXY "$RPORT" webproxy "${IPC[@]}" -n 2 -z 8192
REL_PREFIX=("${AS_NOBODY[@]}")
NPORT=$(free_port)
spawn NCACHE "${AS_NOBODY[@]}" "$BIN_DIR/simplecached" "${NB_IPC[@]}" -c "$NB_CORPUS/locals.txt" -t 2 -d 0
rel_start_proxy NPROXY "$NPORT" webproxy "${IPC[@]}" -n 2 -z 8192
REL_PREFIX=()
rel_add runs 2
rel_wait_cache "$RCACHE" || die "root's simplecached did not start"
wait_for 20 test -e "/dev/mqueue/getfile-$NOBODY-$NCACHE-cmd" ||
    die "nobody's simplecached did not start beside root's: $(tail -3 "$(logfile_of "$NCACHE")")"
wait_port "$RPORT"
wait_port "$NPORT"
wait_for 15 rel_serves "$RPORT" "$WL_SMALL" || fail "root's proxy does not serve"
wait_for 15 rel_serves "$NPORT" "$WL_SMALL" || fail "nobody's proxy does not serve"

# ---- each serves its own user's files --------------------------------------------------------
rel_get_strict "root's proxy" "$RPORT" "$WL" 10 0 10 2 # verified against root's corpus
SAVED=$CORPUS
CORPUS=$NB_CORPUS
rel_get_strict "nobody's proxy" "$NPORT" "$WL" 10 0 10 2 # verified against nobody's corpus
CORPUS=$SAVED

# ---- names, owners, modes ----------------------------------------------------------------------
# Objects: names in /dev/shm and /dev/mqueue, and the registries in root's runtime directory and
# in nobody's (it has none of its own: the last resort /dev/shm/getfile-65534, a directory).
objs() {
    ls -ln /dev/shm /dev/mqueue "$GF_RUNDIR" "/dev/shm/getfile-$NOBODY" 2>/dev/null |
        awk '$1 !~ /^d/ && $9 ~ /^getfile-/ {print $1, $3, $9}'
}
log "objects: $(objs | tr '\n' ';')"
CHECKS=$((CHECKS + 1))
bad=$(objs | awk '{ split($3, p, "-"); if (p[2] != $2 || $1 !~ /^[-s]rw-------/) print }')
[ -z "$bad" ] || fail "objects whose name, owner or mode is wrong: $bad"
CHECKS=$((CHECKS + 1))
[ "$(objs | awk '$2 == 0' | wc -l)" -ge 4 ] && [ "$(objs | awk -v u=$NOBODY '$2 == u' | wc -l)" -ge 4 ] ||
    fail "expected a registry, a queue and 2 segments per user"

# ---- neither can open the other's objects -----------------------------------------------------
probe() { # EXPECT WHO KIND NAME
    local expect=$1 kind=$3 name=$4 out
    local -a who
    if [ "$2" = nobody ]; then who=("${AS_NOBODY[@]}"); else who=("${ROOT_NODAC[@]}"); fi
    out=$("${who[@]}" "$BIN_DIR/rel_ipc_probe" "$kind" "$name" 2>&1 || true)
    CHECKS=$((CHECKS + 1))
    [ "$out" = "$expect" ] || fail "$2 opening $kind $name: '$out', expected $expect"
}
probe EACCES nobody file "$GF_RUNDIR/getfile-0-cache"
probe EACCES nobody mq "/getfile-0-$RCACHE-cmd"
probe EACCES root file "/dev/shm/getfile-$NOBODY/getfile-$NOBODY-cache"
probe EACCES root mq "/getfile-$NOBODY-$NCACHE-cmd"
# sysv_ids msg|shm UID [CPID]: ids of UID's System V queues, or segments created by CPID.
sysv_ids() {
    awk -v u="$2" -v p="${3:-}" 'NR > 1 && $8 == u && ($1 ~ /^-?[0-9]+$/) && (p == "" || $5 == p) { print $2 }' \
        "/proc/sysvipc/$1"
}
case "$BE" in
posix)
    probe EACCES nobody shm "/getfile-0-$RPROXY-seg1"
    probe EACCES root shm "/getfile-$NOBODY-$NPROXY-seg1"
    # ...while each can open its own (the probe itself works).
    probe ok nobody shm "/getfile-$NOBODY-$NPROXY-seg1"
    probe ok root shm "/getfile-0-$RPROXY-seg1"
    ;;
sysv)
    for u in 0 "$NOBODY"; do
        ids=$(sysv_ids msg "$u")
        check "uid $u has one System V queue" test "$(echo "$ids" | grep -c .)" -eq 1
        other=nobody own=root
        [ "$u" = 0 ] || { other=root own=nobody; }
        probe EACCES "$other" msgq "$ids"
        probe ok "$own" msgq "$ids"
        proxy=$RPROXY
        [ "$u" = 0 ] || proxy=$NPROXY
        segs=$(sysv_ids shm "$u" "$proxy")
        check "uid $u's proxy has 2 System V segments" test "$(echo "$segs" | grep -c .)" -eq 2
        for id in $segs; do
            probe EACCES "$other" shmat "$id"
            probe ok "$own" shmat "$id"
        done
    done
    ;;
unix | fd)
    probe EACCES nobody connect "$GF_RUNDIR/getfile-0-$BE.sock"
    probe EACCES root connect "/dev/shm/getfile-$NOBODY/getfile-$NOBODY-$BE.sock"
    probe ok nobody connect "/dev/shm/getfile-$NOBODY/getfile-$NOBODY-$BE.sock"
    probe ok root connect "$GF_RUNDIR/getfile-0-$BE.sock"
    ;;
esac

# ---- stop: each removes its own; the other's are untouched ------------------------------------
rel_stop_check "nobody's webproxy" "$NPROXY"
rel_stop_check "nobody's simplecached" "$NCACHE"
CHECKS=$((CHECKS + 1))
[ -z "$(objs | awk -v u=$NOBODY '$2 == u')" ] || fail "nobody's objects left: $(objs | tr '\n' ' ')"
CHECKS=$((CHECKS + 1))
[ "$(objs | awk '$2 == 0' | wc -l)" -ge 4 ] || fail "root's objects vanished when nobody stopped"
rel_get_strict "root's proxy after nobody left" "$RPORT" "$WL" 2 0
rel_stop_check "root's webproxy" "$RPROXY"
rel_stop_check "root's simplecached" "$RCACHE"

assert_no_ipc_left
rel_report
finish
