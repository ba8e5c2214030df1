#!/usr/bin/env bash
# rel_scribble.sh - a segment damaged in the middle of a transfer, as a confused process of our
# uid could do it: truncated (the next touch of a page past the end would raise SIGBUS) or with
# any 8-byte word of its header or of a slot header overwritten (semaphores included, which made
# glibc abort both daemons). The transfer fails cleanly or completes byte-exact, both daemons
# stay up and serve the next request, and they stop cleanly with nothing left (rel_scribble.py).
# rel_scribble.sh sysv: the same over System V segments (every word; no truncation, which System
# V segments do not allow), both daemons on --ipc sysv (tests/reliability.cmake, label ipc_sysv).
# rel_scribble.sh unix|fd: no segment; the confused process of our uid sits in the socket instead
# and damages every word of the request and answer headers, sends garbage, cuts, and (fd) passes
# extra, writable or pipe descriptors (rel_scribble_sock.py); the same guarantees.
# shellcheck disable=SC2034
[ -z "${1:-}" ] || [ "$1" = posix ] || export GETFILE_TEST_IPC=$1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rel_common.sh"

BE=${1:-posix}
IPC=()
SYSV_ARG=()
case "$BE" in
posix) ;;
sysv) SYSV_ARG=(--sysv) ;;
unix | fd) ;;
*) die "rel_scribble: unknown backend '$BE'" ;;
esac
# rel_common.sh may pass GETFILE_TEST_IPC on itself (REL_IPC_ARGS); otherwise it is done here.
[ "$BE" = posix ] || declare -p REL_IPC_ARGS >/dev/null 2>&1 || IPC=(--ipc "$BE")

rel_corpus
make_file "$CORPUS/files/huge" $((24 << 20)) # more than the sockets hold: still in flight
echo "/huge $CORPUS/files/huge" >>"$CORPUS/locals.txt"
rel_start_cache CACHE simplecached "${IPC[@]}"
rel_wait_cache "$CACHE" || die "simplecached did not start"
PORT=$(free_port)
# 8 KiB segments: 4 slots of 1920 payload bytes, a stride of 1984 bytes.
rel_start_proxy PROXY "$PORT" webproxy "${IPC[@]}" -n 2 -z 8192 --cache-stall 2000 --cache-wait 5000
wait_port "$PORT"
if [ "$BE" = sysv ]; then
    check "the proxy's 2 segments are System V ones (the damages' targets)" \
        test "$(awk -v p="$PROXY" 'NR > 1 && $5 == p' /proc/sysvipc/shm | wc -l)" -eq 2
fi

out=$WORK/scribble.out
rc=0
if [ "$BE" = unix ] || [ "$BE" = fd ]; then
    # No request before the relay is in place: a connection made before it would bypass it.
    timeout 300 python3 "$SRC_DIR/tests/integration/rel_scribble_sock.py" "$PORT" "$PROXY" "$CACHE" \
        "$GF_RUNDIR/getfile-$REL_UID-$BE.sock" "$BE" "$CORPUS/files/multi" "$CORPUS/files/small" \
        >"$out" 2>&1 || rc=$?
    check "the cache's socket has its name back" test -S "$GF_RUNDIR/getfile-$REL_UID-$BE.sock"
    rel_get_strict "after the damages, straight to the cache" "$PORT" \
        "$(rel_workload after /small /multi /road.jpg)" 6 0 6 2
else
    timeout 600 python3 "$SRC_DIR/tests/integration/rel_scribble.py" "$PORT" "$PROXY" "$CACHE" \
        "$CORPUS/files/huge" "$CORPUS/files/small" 1984 "${SYSV_ARG[@]}" >"$out" 2>&1 || rc=$?
fi
# Every line on the socket backends (a few dozen), the failures only on the segment ones.
filter='^ok '
[ "$BE" != unix ] && [ "$BE" != fd ] || filter='^$'
grep -v "$filter" "$out" | while read -r line; do log "$line"; done
check "every damage handled (rel_scribble.py exit $rc)" test "$rc" -eq 0
check "the proxy logged no sanitizer report" bash -c "! grep -q 'Sanitizer' '$(logfile_of "$PROXY")'"
check "the cache logged no sanitizer report" bash -c "! grep -q 'Sanitizer' '$(logfile_of "$CACHE")'"
for who in PROXY CACHE; do
    st=0
    stop "${!who}" TERM 20 || st=$?
    check "$who exits 0 on SIGTERM (got $st)" test "$st" -eq 0
done
assert_no_ipc_left
finish
