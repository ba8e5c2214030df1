#!/usr/bin/env bash
# demo_isolated.sh - scripts/demo.sh (the README's main job), run on the built programs, passes
# and keeps its IPC objects in namespaces of its own: it reports an IPC namespace other than
# ours, and a stale segment of a dead proxy in our /dev/shm, which a webproxy sharing our
# /dev/shm would sweep at start, is still there afterwards.
source "$(dirname "$0")/lib.sh"

# A segment name of a proxy that is surely dead: a child of ours, reaped.
sleep 0 &
dead=$!
wait "$dead"
stale=/dev/shm/getfile-$(id -u)-$dead-seg1
: >"$stale"
chmod 600 "$stale"

rc=0
# Called by a relative path from elsewhere, as a user might.
demo=$(realpath --relative-to="$WORK" "$SRC_DIR")/scripts/demo.sh
(cd "$WORK" && "$demo" -b "$BIN_DIR" -r 40 -t 4 -n 2 -z 65536) >"$WORK/demo.log" 2>&1 || rc=$?
cat "$WORK/demo.log"
check "demo.sh succeeds (status $rc)" test "$rc" -eq 0
check "every byte verified" grep -Eq '^verified [1-9][0-9]* files byte for byte, 0 bad$' "$WORK/demo.log"
ns=$(sed -n 's/^== In a private IPC namespace (\(ipc:\[[0-9]*\]\)).*/\1/p' "$WORK/demo.log")
check "demo.sh ran in a private IPC namespace (${ns:-none}; ours $(readlink /proc/self/ns/ipc))" \
    test -n "$ns" -a "$ns" != "$(readlink /proc/self/ns/ipc)"
check "our /dev/shm was not the demo's (the stale segment is untouched)" test -e "$stale"
rm -f "$stale"
assert_no_ipc_left
finish
