#!/usr/bin/env bash
# gfserver_slow.sh - clients that never read, read slowly, close early or send their header
# slowly are cut at gfserver_main's deadlines, and a normal client meanwhile gets served:
# always, with more bad clients than workers; promptly, with fewer.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
RAW="$SRC_DIR/tests/integration/gfserver_raw.py"
cd "$WORK" || exit 1

make_file files/small.bin $((64 << 10))
make_file files/big.bin $((64 << 20))
printf '/small files/small.bin\n/big files/big.bin\n' >content.txt

# Deadlines of 1 s: header (-H) and send stall (-S).
port=$(free_port)
spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 4 -m content.txt -H 1000 -S 1000 -G 2000
wait_port "$port"

# timed N: N sequential downloads of /small; prints "SECONDS FAILED".
timed() {
    python3 "$RAW" timed "$port" /small files/small.bin "$1" | awk '/^timed /{print $2, $3}'
}

# bad_result PID: the summary line of a bad client (reaped by wait_bad first).
bad_result() {
    grep '^bad ' "$(logfile_of "$1")" || echo "bad ? 0 none max_hold=999"
}

wait_bad() {
    for pid in "$@"; do
        wait "$pid" || true
    done
}

read -r t0 f0 < <(timed 50)
log "baseline: 50 downloads in ${t0}s"
check "baseline downloads succeed" test "$f0" -eq 0

# Phase 1: seven bad clients at once on four workers. Without the deadlines they would hold
# every worker for good and the normal client would starve.
declare -a BAD=()
for kind in never-read never-read partial-header partial-header drip-header slow-read early-close; do
    spawn P python3 "$RAW" bad "$kind" "$port" 8
    BAD+=("$P")
done
sleep 1 # let them take the workers first
read -r t1 f1 < <(timed 10)
log "with 7 bad clients on 4 workers: 10 downloads in ${t1}s"
check "normal client served despite more bad clients than workers" test "$f1" -eq 0
wait_bad "${BAD[@]}"
for pid in "${BAD[@]}"; do
    line=$(bad_result "$pid")
    log "$line"
    read -r _ kind n ends hold <<<"$line"
    hold=${hold#max_hold=}
    case "$kind" in
    never-read) check "never-read clients are cut ($ends)" test "$ends" = "reset:$n" ;;
    partial-header | drip-header)
        check "$kind clients get INVALID at the deadline ($ends)" test "$ends" = "invalid:$n" ;;
    esac
    # Each is let go within a few deadlines (the slow reader keeps making progress, so it
    # is not cut: it only runs until its own end).
    if [ "$kind" != slow-read ]; then
        check "$kind held at most 10 deadlines (max ${hold}s)" \
            awk -v h="$hold" 'BEGIN { exit !(h < 10) }'
    fi
done

# Phase 2: three bad clients on four workers: the normal client keeps its pace.
BAD=()
for kind in never-read partial-header slow-read; do
    spawn P python3 "$RAW" bad "$kind" "$port" 6
    BAD+=("$P")
done
sleep 1
read -r t2 f2 < <(timed 50)
log "with 3 bad clients on 4 workers: 50 downloads in ${t2}s (baseline ${t0}s)"
check "normal downloads succeed beside bad clients" test "$f2" -eq 0
wait_bad "${BAD[@]}"
check "normal client not slowed down much (${t2}s vs ${t0}s, ratio < 20)" \
    awk -v a="$t2" -v b="$t0" 'BEGIN { exit !(a < 20 * b + 0.5) }'
for pid in "${BAD[@]}"; do
    log "$(bad_result "$pid")"
done

check "server survived" kill -0 "$SRV"
srv_rc=0
stop "$SRV" TERM 20 || srv_rc=$?
check "server exits 0 on SIGTERM (got $srv_rc)" test "$srv_rc" -eq 0

# Phase 3: a client that stops reading is cut one send-stall limit after its last progress
# (it used to take up to two: the draining of its receive buffer restarted a whole limit).
port=$(free_port)
spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 1 -m content.txt -S 3000
wait_port "$port"
line=$(python3 "$RAW" bad never-read "$port" 1)
log "-S 3000: $line"
hold=$(sed -n 's/.*max_hold=//p' <<<"$line")
check "a never-read client is cut after about one limit (${hold}s < 4.8s)" \
    awk -v h="$hold" 'BEGIN { exit !(h >= 2.9 && h < 4.8) }'
srv_rc=0
stop "$SRV" TERM 20 || srv_rc=$?
check "server exits 0 on SIGTERM (got $srv_rc)" test "$srv_rc" -eq 0
finish
