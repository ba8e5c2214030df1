#!/usr/bin/env bash
# rel_craft.sh unix|fd|sysv - crafted messages on a backend's own channel (rel_craft.py):
#   1. hostile requests to a running simplecached (-t 1, so a worker left stuck would show):
#      unix, fd: an empty connection, garbage, half a header, wrong magic, version, reserved
#      field or backend, path_len 0, over the maximum or lying, a relative path, a NUL in the
#      path, 1 MiB of junk, a request carrying two descriptors, half a request held open 3 s,
#      an answer never read; sysv: empty, one byte, random, the largest (8192 B), zeros, other
#      message types on its System V queue. The cache stays up, holds no descriptor more than
#      before, and the proxy's next requests are served byte-exact.
#   2. unix, fd: hostile answers to webproxy from a fake cache on the socket: a close, garbage,
#      half a header, wrong magic, version, kind or status, a body shorter than announced, 2^62
#      bytes announced, no answer at all, and (fd) a descriptor missing, writable, of a pipe,
#      two of them, past the end of the file, of a file that is not what the header says, with
#      a non-OK status. Each request ends at once (or after --cache-stall) as ERROR or a short
#      transfer, never OK with wrong bytes; the proxy stays up and serves from a real cache
#      afterwards. (Hostile answers on posix and sysv are damaged segments: rel_scribble.)
# SPDX-License-Identifier: MIT
BE=${1:?usage: rel_craft.sh unix|fd|sysv}
export GETFILE_TEST_IPC=$BE
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"
TEST_NAME="rel_craft_$BE"
CRAFT="$SRC_DIR/tests/integration/rel_craft.py"
SOCK="$GF_RUNDIR/getfile-$UIDN-$BE.sock"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

add_file /small 1024
add_file /big $((4 << 20))
fds_of() { find "/proc/$1/fd" -mindepth 1 2>/dev/null | wc -l; }

# ---- 1. hostile requests --------------------------------------------------------------------
start_cache CACHE -t 1
PORT=$(free_port)
start_proxy PROXY "$PORT" 2 2 65536 --cache-stall 2000
expect_get "$PORT" /small OK
fds_before=$(fds_of "$CACHE")
rc=0
if [ "$BE" = sysv ]; then
    timeout 60 python3 "$CRAFT" sysv "$CACHE" >"$WORK/craft.out" 2>&1 || rc=$?
else
    timeout 120 python3 "$CRAFT" requests "$BE" "$SOCK" >"$WORK/craft.out" 2>&1 || rc=$?
fi
sed "s/^/[$TEST_NAME] /" "$WORK/craft.out"
check "the crafting tool ran (rc $rc)" test "$rc" -eq 0
check "the cache is still up" proc_alive "$CACHE"
expect_get "$PORT" /small OK
expect_get "$PORT" /big OK
# Descriptors come back to what they were (a kept connection or passed descriptor would not).
fds_back() { [ "$(fds_of "$CACHE")" -le "$fds_before" ]; }
check "the cache holds no more descriptors than before ($(fds_of "$CACHE") vs $fds_before)" \
    wait_for 5 fds_back
check "the proxy is still up" proc_alive "$PROXY"
stop_ok "$CACHE" TERM simplecached
check "the cache logged rejections" grep -q -i "reject" "$(logfile_of "$CACHE")"

# ---- 2. hostile answers to the proxy ------------------------------------------------------
if [ "$BE" != sysv ]; then
    CASES="close garbage half magic version status kind short huge nobody"
    [ "$BE" = fd ] && CASES+=" fd_missing fd_writable fd_pipe fd_two fd_beyond fd_changed fd_status"
    echo close >"$WORK/case"
    spawn FAKE python3 "$CRAFT" fake "$BE" "$SOCK" "$WORK/case" "$CONTENT/files/big"
    check "the fake cache listens" wait_for 15 test -S "$SOCK"
    for c in $CASES; do
        echo "$c" >"$WORK/case"
        t0=$(now_ms)
        line=$(gfget "$PORT" /big --out "$WORK/got" --timeout 30)
        ms=$(($(now_ms) - t0))
        st=$(status_of "$line")
        log "answer '$c': $line ($ms ms)"
        if [ "$st" = OK ]; then
            check "answer '$c': OK only with the real bytes" cmp -s "$WORK/got" "$CONTENT/files/big"
        else
            check "answer '$c': ERROR or a short transfer (got $st)" \
                test "$st" = ERROR -o "$st" = SHORT
        fi
        check "answer '$c': within 5 s (took $ms ms)" test "$ms" -lt 5000
        check "answer '$c': the proxy is still up" proc_alive "$PROXY"
        rm -f "$WORK/got"
    done
    stop "$FAKE" TERM 5 || true
    rm -f "$SOCK"
    start_cache CACHE -t 1
    check "a real cache serves again" wait_for 15 get_ok "$PORT" /small
    expect_get "$PORT" /big OK
    stop_ok "$CACHE" TERM simplecached
fi
stop_ok "$PROXY" TERM webproxy
assert_no_ipc_left
finish
