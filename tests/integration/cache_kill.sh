#!/usr/bin/env bash
# cache_kill.sh - crashes: kill -9 of the cache mid-transfer (the client sees an early close, the
# proxy worker is free again within about a second, the segment is replaced); kill -9 of the
# proxy mid-transfer (the cache worker is freed and unmaps within about a second; the next proxy
# sweeps the dead one's segments); cache restarts under load (kill -9, then SIGTERM): no hang,
# no corrupted file reported as good, service resumes. Nothing left after a final clean stop.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_classic_set
add_file /huge.bin $((64 * 1024 * 1024))
add_file /mid/2mib.bin $((2 * 1024 * 1024 + 3))
add_file /small.bin 3000

progress_at_least() { [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
alive() { proc_alive "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
maps_segment_of() { grep -q "getfile-$UIDN-$2-seg" "/proc/$1/maps" 2>/dev/null; }

# slow_client VAR PORT: a client reading /huge.bin at 4 MB/s; returns once it is mid-transfer.
slow_client() {
    local __p
    rm -f "$WORK/progress"
    spawn __p python3 "$WORK/gfget.py" "$2" /huge.bin --rate 4000000 --progress "$WORK/progress"
    check "client is mid-transfer" wait_for 30 progress_at_least "$WORK/progress" 1048576
    printf -v "$1" '%s' "$__p"
}

log "kill -9 of the cache mid-transfer"
start_cache CACHE -t 2
PORT=$(free_port)
start_proxy PROXY "$PORT" 1 1 8192 # one worker: a second request waits for it
seg_before=$(segments_of "$PROXY")
slow_client CLIENT "$PORT"
kill -KILL "$CACHE"
t0=$(now_ms)
wait "$CACHE" 2>/dev/null || true
# The single proxy worker must notice the death, close the client early and take this request.
line=$(gfget "$PORT" /small.bin)
ms=$(($(now_ms) - t0))
log "after the cache's death the single proxy worker answered a new request in $ms ms"
check "after the crash: ERROR for the next request (got: $line)" test "$(status_of "$line")" = ERROR
check "the proxy worker was free again within 3 s (took $ms ms)" test "$ms" -lt 3000
check "the client ends" wait_for 30 eval "! alive $CLIENT"
wait "$CLIENT" 2>/dev/null || true
line=$(tail -n 1 "$(logfile_of "$CLIENT")")
check "the client saw an early close, not success (got: $line)" test "$(status_of "$line")" = SHORT
seg_after=$(segments_of "$PROXY")
posix_segments && check "the segment was replaced ($seg_before -> $seg_after)" \
    test -n "$seg_after" -a "$seg_after" != "$seg_before"
# A fresh cache sweeps the dead one's queue; service resumes.
start_cache CACHE -t 2
queues() { find /dev/mqueue -name "getfile-$UIDN-*" | wc -l; }
check "the dead cache's queue was swept" test "$(queues)" -eq 1
check "service resumes" wait_for 15 get_ok "$PORT" /small.bin
expect_get "$PORT" /mid/2mib.bin OK

log "kill -9 of the proxy mid-transfer"
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
start_cache CACHE -t 1 # one worker: the next request needs it back
PORT=$(free_port)
start_proxy PROXY "$PORT" 2 2 8192
slow_client CLIENT "$PORT"
posix_segments && check "the cache maps the proxy's segment" maps_segment_of "$CACHE" "$PROXY"
kill -KILL "$PROXY"
t0=$(now_ms)
wait "$PROXY" 2>/dev/null || true
check "the cache worker unmapped the dead proxy's segment" wait_for 5 eval "! maps_segment_of $CACHE $PROXY"
ms=$(($(now_ms) - t0))
log "the cache worker unmapped the dead proxy's segment within $ms ms"
check "within about a second (took $ms ms)" test "$ms" -lt 2500
stop "$CLIENT" TERM 5 || true
OLD=$PROXY
posix_segments && check "the dead proxy's segments are still there" test -n "$(segments_of "$OLD")"
PORT=$(free_port)
start_proxy PROXY "$PORT" 2 2 8192
posix_segments && check "the new proxy swept the dead one's segments" test -z "$(segments_of "$OLD")"
line=$(gfget "$PORT" /small.bin --out "$WORK/s.bin")
check "the single cache worker serves the new proxy (got: $line)" test "$(status_of "$line")" = OK
check "bytes match" cmp -s "$WORK/s.bin" "$CONTENT/files/small.bin"

log "cache restarts under load"
stop_ok "$PROXY" TERM webproxy
PORT=$(free_port)
start_proxy PROXY "$PORT" 8 8 65536
wl="$WORK/load.txt"
awk '{print $1}' "$CONTENT/locals.txt" | grep -v huge >"$wl"
for how in KILL TERM; do
    dir="$WORK/load.$how"
    mkdir -p "$dir"
    (cd "$dir" && timeout 150 "$BIN_DIR/gfclient_download" -s 127.0.0.1 -p "$PORT" -w "$wl" \
        -t 8 -r 3000) >"$dir.log" 2>&1 &
    DL=$!
    check "downloads under way" wait_for 20 eval "[ \$(find $dir -type f | wc -l) -ge 5 ]"
    if [ "$how" = KILL ]; then
        kill -KILL "$CACHE"
        wait "$CACHE" 2>/dev/null || true
    else
        stop_ok "$CACHE" TERM simplecached
    fi
    start_cache CACHE -t 4
    t0=$(now_ms)
    rc=0
    wait "$DL" || rc=$?
    check "restart ($how): the download run ended by itself (rc $rc, not the 150 s timeout)" \
        test "$rc" -ne 124
    log "restart ($how): download run ended $(($(now_ms) - t0)) ms after the restart, rc $rc"
    check "restart ($how): no corrupted file reported as good" verify_present "$dir"
    check "restart ($how): service resumes" download "$WORK/after.$how" "$PORT" "$wl" 4 40
    check "restart ($how): bytes after restart" verify_all "$WORK/after.$how" "$wl"
done

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
