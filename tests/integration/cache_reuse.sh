#!/usr/bin/env bash
# cache_reuse.sh - one segment reused over 100 sequential requests (-n 1: the same segment, never
# replaced, every byte right); 32 clients on 8 proxy threads, 4 cache threads and 6 segments.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_classic_set
add_file /mid/1mib.bin $((1024 * 1024))
add_file /mid/3mib-plus.bin $((3 * 1024 * 1024 + 7))
add_file /empty.bin 0
wl="$WORK/all.txt"
awk '{print $1}' "$CONTENT/locals.txt" >"$wl"

start_cache CACHE -t 4

log "case 12: one segment, 100 sequential requests"
PORT=$(free_port)
start_proxy PROXY "$PORT" 4 1 4096
seg_before=$(segments_of "$PROXY")
check "one segment" test "$(echo "$seg_before" | grep -c .)" -eq 1
check "100 sequential downloads succeed" download "$WORK/dl12" "$PORT" "$wl" 1 100
check "100 sequential downloads: bytes match" verify_all "$WORK/dl12" "$wl"
check "the same segment throughout (no replacement)" test "$(segments_of "$PROXY")" = "$seg_before"
stop_ok "$PROXY" TERM webproxy

log "case 13: 32 clients, 8 proxy threads, 4 cache threads, 6 segments"
PORT=$(free_port)
start_proxy PROXY "$PORT" 8 6 65536
check "320 downloads over 32 clients succeed" download "$WORK/dl13" "$PORT" "$wl" 32 320
check "320 downloads: bytes match" verify_all "$WORK/dl13" "$wl"
check "the pool kept its 6 segments" test "$(segments_of "$PROXY" | grep -c .)" -eq 6
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
