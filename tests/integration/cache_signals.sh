#!/usr/bin/env bash
# cache_signals.sh - SIGTERM and SIGINT mid-transfer: both processes stop in bounded time, exit 0
# and remove every IPC object; the clients see short transfers, never a false success. Then
# SIGTERM of the cache alone mid-transfer: the proxy survives, replaces the segments whose
# transfers were cut, and serves again once a cache is back.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_file /huge.bin $((64 * 1024 * 1024))
add_file /small.bin 5000
NCLIENTS=3

progress_at_least() { [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
alive() { proc_alive "$1"; }

# start_slow_clients PORT: NCLIENTS clients reading /huge.bin at 2 MB/s (a 32 s transfer), and
# waits until each has received 1 MiB: every transfer is then in the middle.
start_slow_clients() {
    CLIENTS=()
    local i __cp # not "pid": spawn has a local of that name
    for ((i = 0; i < NCLIENTS; i++)); do
        rm -f "$WORK/progress.$i"
        spawn __cp python3 "$WORK/gfget.py" "$1" /huge.bin --rate 2000000 --progress "$WORK/progress.$i"
        CLIENTS+=("$__cp")
    done
    for ((i = 0; i < NCLIENTS; i++)); do
        check "client $i is mid-transfer" wait_for 30 progress_at_least "$WORK/progress.$i" 1048576
    done
}

# clients_all_short: every client ended (bounded) and reported a short transfer.
clients_all_short() {
    local pid line
    for pid in "${CLIENTS[@]}"; do
        check "client $pid ends" wait_for 40 eval "! alive $pid"
        wait "$pid" 2>/dev/null || true
        line=$(tail -n 1 "$(logfile_of "$pid")")
        check "client $pid saw a short transfer, not success (got: $line)" \
            test "$(status_of "$line")" = SHORT
    done
}

for SIG in TERM INT; do
    log "SIG$SIG to both processes mid-transfer"
    start_cache CACHE -t 4
    PORT=$(free_port)
    start_proxy PROXY "$PORT" 4 4 65536
    start_slow_clients "$PORT"
    t0=$(date +%s)
    kill -"$SIG" "$CACHE" "$PROXY"
    stop_ok "$PROXY" "$SIG" webproxy
    stop_ok "$CACHE" "$SIG" simplecached
    took=$(($(date +%s) - t0))
    check "both stopped within 15 s (took $took s)" test "$took" -le 15
    clients_all_short
    assert_no_ipc_left
done

log "SIGTERM to the cache alone mid-transfer"
start_cache CACHE -t 4
PORT=$(free_port)
start_proxy PROXY "$PORT" 4 4 65536
before=$(segments_of "$PROXY")
start_slow_clients "$PORT"
stop_ok "$CACHE" TERM simplecached
clients_all_short
after=$(segments_of "$PROXY")
replaced=$(comm -13 <(echo "$before") <(echo "$after") | grep -c . || true)
if posix_segments; then
    check "the $NCLIENTS cut segments were replaced (replaced: $replaced)" test "$replaced" -eq "$NCLIENTS"
    check "the pool kept its size" test "$(echo "$after" | grep -c .)" -eq 4
fi
check "no cache: ERROR" test "$(status_of "$(gfget "$PORT" /small.bin)")" = ERROR
start_cache CACHE -t 4
check "served again by a new cache" wait_for 15 get_ok "$PORT" /small.bin
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
