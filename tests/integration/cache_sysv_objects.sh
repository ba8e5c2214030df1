#!/usr/bin/env bash
# cache_sysv_objects.sh - the sysv backend end to end (--ipc sysv on both daemons): hits, a miss, a
# big file and concurrent clients byte-exact through System V segments and queue; the objects
# are System V ones (no /dev/shm segment, no-name segments marked for removal); kill -9 of the
# cache leaves its queue (System V objects outlive every process), the proxy answers ERROR at
# once and a new cache sweeps it; kill -9 of the proxy leaves nothing once the cache lets go;
# a sysv proxy in front of a posix cache gets a quick ERROR; nothing left (ipcs empty).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_classic_set
add_file /big.bin $((20 * 1024 * 1024 + 5))
add_file /huge.bin $((64 * 1024 * 1024))
for i in 0 1 2 3 4 5 6 7; do add_file "/c/$i.bin" $((1024 * 1024 + i * 4099)); done

now_ms() { echo $(($(date +%s%N) / 1000000)); }
alive() { proc_alive "$1"; }
progress_at_least() { [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
# sysv_queue_of PID: the msqid of PID's command queue (key 0x67<<24 | PID), empty if none.
sysv_queue_of() { awk -v pid="$1" 'NR > 1 && $1 == 1728053248 + pid { print $2 }' /proc/sysvipc/msg; }
has_sysv_queue() { [ -n "$(sysv_queue_of "$1")" ]; }
# sysv_segs_of PID: System V segments created by PID (cpid column).
sysv_segs_of() { awk -v pid="$1" 'NR > 1 && $5 == pid' /proc/sysvipc/shm | wc -l; }
no_sysv_segs_of() { [ "$(sysv_segs_of "$1")" -eq 0 ]; }
start_sysv_proxy() { # VAR PORT THREADS NSEG SEGSIZE
    local __v=$1 __pid
    spawn __pid "$BIN_DIR/webproxy" --ipc sysv -p "$2" -t "$3" -n "$4" -z "$5"
    wait_port "$2" 30
    printf -v "$__v" '%s' "$__pid"
}

log "hits, a miss, a big file, concurrency"
start_cache CACHE -t 4 --ipc sysv
check "the cache made its System V queue (key holds its pid)" wait_for 10 has_sysv_queue "$CACHE"
PORT=$(free_port)
start_sysv_proxy PROXY "$PORT" 4 4 65536
check "the proxy's 4 segments are System V ones" test "$(sysv_segs_of "$PROXY")" -eq 4
check "none of them in /dev/shm" test -z "$(segments_of "$PROXY")"
dest=$(awk -v pid="$PROXY" 'NR > 1 && $5 == pid && $1 == 0 && $3 == 1600' /proc/sysvipc/shm | wc -l)
check "they are already marked for removal (key 0, SHM_DEST): $dest of 4" test "$dest" -eq 4
check "service starts" wait_for 15 get_ok "$PORT" /big.bin
for f in /courses/ud923/filecorpus/1kb-sample-file-0.png /courses/ud923/filecorpus/road.jpg \
    /courses/ud923/filecorpus/moranabovejacksonlake.jpg; do
    expect_get "$PORT" "$f" OK
done
expect_get "$PORT" /big.bin OK
expect_get "$PORT" /no/such/file FILE_NOT_FOUND
pids=()
for i in 0 1 2 3 4 5 6 7; do
    (gfget "$PORT" "/c/$i.bin" --out "$WORK/c$i" >"$WORK/c$i.line") &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
bad=0
for i in 0 1 2 3 4 5 6 7; do
    cmp -s "$WORK/c$i" "$CONTENT/files/c/$i.bin" || bad=$((bad + 1))
done
check "8 concurrent clients, byte-exact ($bad bad)" test "$bad" -eq 0

log "kill -9 of the cache mid-transfer"
rm -f "$WORK/progress"
spawn CLIENT python3 "$WORK/gfget.py" "$PORT" /huge.bin --rate 4000000 --progress "$WORK/progress"
check "client is mid-transfer" wait_for 30 progress_at_least "$WORK/progress" 1048576
kill -KILL "$CACHE"
wait "$CACHE" 2>/dev/null || true
check "the dead cache's System V queue outlives it" has_sysv_queue "$CACHE"
t0=$(now_ms)
line=$(gfget "$PORT" /courses/ud923/filecorpus/road.jpg)
ms=$(($(now_ms) - t0))
check "a request after the crash: ERROR (got: $line)" test "$(status_of "$line")" = ERROR
check "answered within 3 s (took $ms ms)" test "$ms" -lt 3000
check "the client ends" wait_for 30 eval "! alive $CLIENT"
wait "$CLIENT" 2>/dev/null || true
line=$(tail -n 1 "$(logfile_of "$CLIENT")")
check "the client saw an early close, not success (got: $line)" test "$(status_of "$line")" = SHORT
DEAD=$CACHE
t0=$(now_ms)
start_cache CACHE -t 4 --ipc sysv
check "the new cache swept the dead one's queue" wait_for 10 eval "! has_sysv_queue $DEAD"
log "the dead cache's queue was gone $(($(now_ms) - t0)) ms after the new start"
check "service resumes" wait_for 15 get_ok "$PORT" /big.bin
expect_get "$PORT" /c/3.bin OK

log "kill -9 of the proxy mid-transfer"
rm -f "$WORK/progress"
spawn CLIENT python3 "$WORK/gfget.py" "$PORT" /huge.bin --rate 4000000 --progress "$WORK/progress"
check "client is mid-transfer" wait_for 30 progress_at_least "$WORK/progress" 1048576
kill -KILL "$PROXY"
wait "$PROXY" 2>/dev/null || true
wait "$CLIENT" 2>/dev/null || true
t0=$(now_ms)
check "the dead proxy's segments are freed once the cache detaches (no sweep needed)" \
    wait_for 10 no_sysv_segs_of "$PROXY"
log "the dead proxy's segments were gone after $(($(now_ms) - t0)) ms"
start_sysv_proxy PROXY "$PORT" 4 4 65536
expect_get "$PORT" /big.bin OK

log "a sysv proxy in front of a posix cache: a quick ERROR, never a hang"
stop_ok "$CACHE" TERM simplecached
start_cache CACHE -t 2
t0=$(now_ms)
line=$(gfget "$PORT" /courses/ud923/filecorpus/road.jpg)
ms=$(($(now_ms) - t0))
check "ERROR (got: $line)" test "$(status_of "$line")" = ERROR
check "within 3 s (took $ms ms)" test "$ms" -lt 3000

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
left=$(ipc_objects | grep sysv || true)
check "ipcs shows nothing (left: ${left//$'\n'/ })" test -z "$left"
assert_no_ipc_left
finish
