#!/usr/bin/env bash
# cache_ipc.sh BACKEND - one cache protocol, one backend (--ipc posix, sysv, unix or fd on both
# daemons; docs/ipc.md, "Backends"): hits, misses, a large file, concurrent clients; a proxy on
# another backend gets a quick ERROR, never a hang; kill -9 of the cache and of the proxy
# mid-transfer end in a clean error (never wrong bytes reported as good) and service resumes;
# on fd, a file changed or cut while it is sent is a short transfer; nothing is left behind,
# and a dead cache's socket name is swept by the next start.
# SPDX-License-Identifier: MIT
BE=${1:?usage: cache_ipc.sh posix|sysv|unix|fd}
export GETFILE_TEST_IPC=$BE
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"
TEST_NAME="cache_ipc_$BE"

add_classic_set
add_file /one-kib.bin 1024
add_file /empty.bin 0
add_file /big.bin $((32 * 1024 * 1024 + 5))
add_file /mid.bin $((3 * 1024 * 1024 + 1))

progress_at_least() { [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
sock_name() { echo "$GF_RUNDIR/getfile-$UIDN-$1.sock"; }

# slow_client VAR PORT PATH RATE: a client reading PATH at RATE bytes/s; returns once it is
# mid-transfer.
slow_client() {
    local __p
    rm -f "$WORK/progress"
    spawn __p python3 "$WORK/gfget.py" "$2" "$3" --rate "$4" --progress "$WORK/progress" \
        --out "$WORK/slow.out"
    check "client is mid-transfer" wait_for 30 progress_at_least "$WORK/progress" 1048576
    printf -v "$1" '%s' "$__p"
}

# client_result PID: the last line of the client's output once it ended.
client_result() {
    check "the client ends" wait_for 60 eval "! proc_alive $1"
    wait "$1" 2>/dev/null || true
    tail -n 1 "$(logfile_of "$1")"
}

if [ "$BE" = posix ]; then
    log "--ipc on both daemons: in --help, a bad value is a usage error (exit 2)"
    for prog in simplecached webproxy; do
        "$BIN_DIR/$prog" --help >"$WORK/help.out" 2>&1 || true
        check "$prog --help shows --ipc" grep -q -- "--ipc BACKEND" "$WORK/help.out"
        rc=0
        "$BIN_DIR/$prog" --ipc bogus >"$WORK/bad.out" 2>&1 || rc=$?
        check "$prog --ipc bogus exits 2 (got $rc)" test "$rc" -eq 2
        check "... naming the backends" grep -q "posix, sysv, unix, fd" "$WORK/bad.out"
    done
fi

log "backend $BE: the proxy first (no cache yet: a quick ERROR), then the cache"
PORT=$(free_port)
start_proxy PROXY "$PORT" 8 4 65536
t0=$(now_ms)
line=$(gfget "$PORT" /one-kib.bin --timeout 20)
ms=$(($(now_ms) - t0))
check "no cache yet: ERROR (got: $line)" test "$(status_of "$line")" = ERROR
check "... within 3 s (took $ms ms)" test "$ms" -lt 3000
start_cache CACHE -t 4
check "the cache started later is found" wait_for 15 get_ok "$PORT" /one-kib.bin

log "hits, misses, the large file, concurrent clients"
expect_get "$PORT" /one-kib.bin OK
expect_get "$PORT" /empty.bin OK
expect_get "$PORT" /courses/ud923/filecorpus/road.jpg OK
expect_get "$PORT" /nope.bin FILE_NOT_FOUND
expect_get "$PORT" /big.bin OK
wl="$WORK/all.txt"
awk '{print $1}' "$CONTENT/locals.txt" | grep -v big >"$wl"
echo /nope.bin >>"$wl"
check "8 concurrent clients, 400 requests" download "$WORK/dl" "$PORT" "$wl" 8 400
grep -v nope "$wl" >"$WORK/found.txt"
check "every file arrived with the right bytes" verify_all "$WORK/dl" "$WORK/found.txt"
case $BE in
unix | fd)
    check "the cache listens on its $BE socket" test -S "$(sock_name "$BE")"
    check "the socket is mode 0600" test "$(stat -c %a "$(sock_name "$BE")")" = 600
    ;;
esac

if [ "$BE" = unix ] || [ "$BE" = fd ]; then
    log "hostile peers on the socket: garbage, a wrong version, silence"
    # Each must be closed by the cache without an answer (silence within its 2 s limit).
    cat >"$WORK/hostile.py" <<'PY'
import socket, struct, sys, time
path, kind = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(path)
if kind == "garbage":
    s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4)
elif kind == "version":
    s.sendall(struct.pack("<IHHII", 0x51534647, 7, 3, 2, 0) + b"/x")
elif kind == "longpath":
    s.sendall(struct.pack("<IHHII", 0x51534647, 1, 3, 100000, 0))
t0 = time.monotonic()
try:
    d = s.recv(100)
except socket.timeout:
    d = None
except ConnectionResetError:  # closed with our bytes unread: a reset
    d = b""
print("closed" if d == b"" else "answered" if d else "open", int((time.monotonic() - t0) * 1000))
PY
    for kind in garbage version longpath silence; do
        out=$(timeout 20 python3 "$WORK/hostile.py" "$(sock_name "$BE")" "$kind" || echo fail)
        check "$kind: closed unanswered (got: $out)" test "${out%% *}" = closed
    done
    check "... and logged as rejected" grep -q "rejected the request" "$(logfile_of "$CACHE")"
    expect_get "$PORT" /one-kib.bin OK
fi

log "a proxy on another backend: a quick ERROR, never a hang"
for other in posix unix fd sysv; do
    [ "$other" = "$BE" ] && continue
    P2=$(free_port)
    spawn OTHER "$BIN_DIR/webproxy" -p "$P2" -t 2 -n 2 -z 65536 --ipc "$other"
    wait_port "$P2" 30
    t0=$(now_ms)
    line=$(gfget "$P2" /one-kib.bin --timeout 20)
    ms=$(($(now_ms) - t0))
    check "--ipc $other proxy, --ipc $BE cache: ERROR (got: $line)" test "$(status_of "$line")" = ERROR
    check "... within 3 s (took $ms ms)" test "$ms" -lt 3000
    stop_ok "$OTHER" TERM webproxy
done

log "kill -9 of the cache mid-transfer"
slow_client CLIENT "$PORT" /big.bin 8000000
kill -KILL "$CACHE"
wait "$CACHE" 2>/dev/null || true
t0=$(now_ms)
line=$(gfget "$PORT" /one-kib.bin --timeout 20)
ms=$(($(now_ms) - t0))
check "after the crash: ERROR for the next request (got: $line)" test "$(status_of "$line")" = ERROR
check "... within 3 s (took $ms ms)" test "$ms" -lt 3000
line=$(client_result "$CLIENT")
if [ "$BE" = fd ]; then
    # The proxy holds the file's descriptor: the transfer in flight needs the cache no more.
    check "fd: the transfer in flight completes (got: $line)" test "$(status_of "$line")" = OK
    check "fd: ... with the right bytes" cmp -s "$WORK/slow.out" "$CONTENT/files/big.bin"
else
    check "the client saw an early close, not success (got: $line)" test "$(status_of "$line")" = SHORT
fi
case $BE in
unix | fd)
    check "the dead cache's socket name is still there" test -S "$(sock_name "$BE")"
    start_cache CACHE -t 1 --ipc posix
    check "a new cache (any backend) sweeps it" test ! -e "$(sock_name "$BE")"
    stop_ok "$CACHE" TERM simplecached
    ;;
sysv)
    # System V objects outlive every process: the queue keyed by the dead cache's pid stays.
    dead_q() { awk -v pid="$CACHE" 'NR > 1 && $1 == 1728053248 + pid' /proc/sysvipc/msg | grep -q .; }
    check "the dead cache's System V queue is still there" dead_q
    DEAD_CACHE=$CACHE
    start_cache CACHE -t 1
    check "a new sysv cache sweeps it" eval "! CACHE=$DEAD_CACHE dead_q"
    stop_ok "$CACHE" TERM simplecached
    ;;
esac
start_cache CACHE -t 1 # one worker: the next test needs it back
check "service resumes" wait_for 15 get_ok "$PORT" /one-kib.bin
expect_get "$PORT" /mid.bin OK

log "kill -9 of the proxy mid-transfer"
slow_client CLIENT "$PORT" /big.bin 4000000
kill -KILL "$PROXY"
wait "$PROXY" 2>/dev/null || true
stop "$CLIENT" TERM 5 || true
PORT=$(free_port)
start_proxy PROXY "$PORT" 4 4 65536
t0=$(now_ms)
line=$(gfget "$PORT" /mid.bin --out "$WORK/m.out" --timeout 30)
ms=$(($(now_ms) - t0))
log "after the proxy's kill -9 the single cache worker served the new proxy in $ms ms"
check "the single cache worker serves the new proxy (got: $line)" test "$(status_of "$line")" = OK
check "... with the right bytes" cmp -s "$WORK/m.out" "$CONTENT/files/mid.bin"
if [ "$BE" = fd ]; then
    check "... at once: the descriptor left the cache with the answer (took $ms ms)" test "$ms" -lt 3000
else
    # The cache's worker sees the dead reader at once (EPIPE, pidfd), not after its 30 s stall.
    check "... within 5 s (took $ms ms)" test "$ms" -lt 5000
fi

# changed_while_sent HOW: a slow client of /big.bin while HOW changes the file under the proxy;
# the transfer is short, never a success, and the proxy then serves the file as it is.
changed_while_sent() {
    slow_client CLIENT "$PORT" /big.bin 8000000
    eval "$1"
    line=$(client_result "$CLIENT")
    check "$1 while it is sent: a short transfer, never success (got: $line)" \
        test "$(status_of "$line")" = SHORT
    cp "$WORK/big.orig" "$CONTENT/files/big.bin"
    expect_get "$PORT" /big.bin OK
}

if [ "$BE" = fd ]; then
    log "fd: a file changed or cut while it is sent"
    cp "$CONTENT/files/big.bin" "$WORK/big.orig"
    # shellcheck disable=SC2016 # expanded by changed_while_sent's eval
    changed_while_sent 'touch "$CONTENT/files/big.bin"' # new mtime and ctime, same bytes
    # shellcheck disable=SC2016
    changed_while_sent 'truncate -s 0 "$CONTENT/files/big.bin"' # sendfile finds the end early
    check "the proxy lives on" proc_alive "$PROXY"
fi

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
