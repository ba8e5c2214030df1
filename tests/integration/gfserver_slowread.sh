#!/usr/bin/env bash
# gfserver_slowread.sh - clients that read a response slowly but steadily: with -R (minimum
# rate) those reading 128 KiB a second are cut, so two of them cannot hold both workers and a
# normal client is served; with -T (response deadline) even a faster slow reader is cut.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
RAW="$SRC_DIR/tests/integration/gfserver_raw.py"
cd "$WORK" || exit 1

make_file files/small.bin $((64 << 10))
make_file files/big.bin $((64 << 20))
printf '/small files/small.bin\n/big files/big.bin\n' >content.txt

timed() {
    python3 "$RAW" timed "$1" /small files/small.bin "$2" | awk '/^timed /{print $2, $3}'
}

# bad_line PID: the summary line of a bad client (reaped first: wait_all).
wait_all() {
    for pid in "$@"; do
        wait "$pid" || true
    done
}
bad_line() {
    grep '^bad ' "$(logfile_of "$1")" || echo "bad ? 0 none max_hold=999"
}

# expect_cut NAME LINE: every connection of that bad client was cut, each within 8 s.
expect_cut() {
    local kind n ends hold
    read -r _ kind n ends hold <<<"$2"
    hold=${hold#max_hold=}
    log "$1: $2"
    check "$1: every $kind connection is cut ($ends)" test "$ends" = "reset:$n"
    check "$1: each held its worker less than 8 s (max ${hold}s)" \
        awk -v h="$hold" 'BEGIN { exit !(h < 8) }'
}

# 1. -R 1048576 with a 1 s window (-S 1000): two clients reading 128 KiB/s on two workers
# (always progressing, so the stall limit alone never cuts them).
port=$(free_port)
spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 2 -m content.txt -S 1000 -R 1048576
wait_port "$port"
spawn B1 python3 "$RAW" bad trickle-read "$port" 12
spawn B2 python3 "$RAW" bad trickle-read "$port" 12
sleep 1 # let them take both workers first
read -r t1 f1 < <(timed "$port" 5)
log "-R: 5 downloads in ${t1}s beside 2 trickle readers on 2 workers"
check "-R: a normal client is served beside clients reading 128 KiB/s" test "$f1" -eq 0
wait_all "$B1" "$B2"
expect_cut "-R" "$(bad_line "$B1")"
expect_cut "-R" "$(bad_line "$B2")"
stop_ok() {
    local rc=0
    stop "$1" TERM 20 || rc=$?
    check "gfserver_main exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
}
stop_ok "$SRV"

# 2. -T 2000: a client reading 160 KiB/s (over the minimum rate) is cut at the deadline.
port=$(free_port)
spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 2 -m content.txt -T 2000
wait_port "$port"
spawn B1 python3 "$RAW" bad slow-read-cut "$port" 10
wait_all "$B1"
expect_cut "-T" "$(bad_line "$B1")"
read -r t1 f1 < <(timed "$port" 5)
check "-T: normal downloads still succeed" test "$f1" -eq 0
stop_ok "$SRV"
finish
