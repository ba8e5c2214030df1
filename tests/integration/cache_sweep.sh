#!/usr/bin/env bash
# cache_sweep.sh - segment sizes {512 B, 4 KiB, 64 KiB, 1 MiB} x counts {1, 8, 50} with files from
# 0 B to 16 MiB around the slot boundaries; every download checked by sha256. One cache serves
# all twelve proxies in turn; each proxy stops cleanly and removes its segments.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

for n in 0 1 511 512 513 4095 4097 65537 $((1024 * 1024 + 1)); do
    add_file "/s/f$n.bin" "$n"
done
add_file /s/f16m.bin $((16 * 1024 * 1024))
small="$WORK/small.txt"
awk '{print $1}' "$CONTENT/locals.txt" | grep -v f16m >"$small"
full="$WORK/full.txt"
awk '{print $1}' "$CONTENT/locals.txt" >"$full"

start_cache CACHE -t 4
t_start=$(date +%s)
for z in 512 4096 65536 1048576; do
    for n in 1 8 50; do
        PORT=$(free_port)
        start_proxy PROXY "$PORT" 4 "$n" "$z"
        # The 16 MiB file once per combination; the small ones twice.
        wl=$full
        reqs=$(($(grep -c . "$small") * 2 + 1))
        dir="$WORK/dl.$z.$n"
        t0=$(date +%s%N)
        check "z=$z n=$n: downloads succeed" download "$dir" "$PORT" "$wl" 4 "$reqs"
        check "z=$z n=$n: sha256 of every file" verify_all "$dir" "$wl"
        log "z=$z n=$n: $reqs requests in $((($(date +%s%N) - t0) / 1000000)) ms"
        rm -rf "$dir"
        check "z=$z n=$n: the initial $n segments, none replaced" \
            test "$(segments_of "$PROXY")" = "$(initial_segments "$PROXY" "$n")"
        stop_ok "$PROXY" TERM webproxy
        check "z=$z n=$n: segments removed" test -z "$(segments_of "$PROXY")"
    done
done
log "sweep took $(($(date +%s) - t_start)) s"
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
