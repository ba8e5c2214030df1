#!/usr/bin/env bash
# gfserver_signal.sh - SIGTERM and SIGINT during 32 concurrent transfers: gfserver_main lets
# in-flight transfers finish within its grace period, cuts them after it, and exits 0 promptly.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
RAW="$SRC_DIR/tests/integration/gfserver_raw.py"
cd "$WORK" || exit 1

specs_of() { # SIZE: makes 4 files of SIZE bytes, prints their PATH:FILE specs
    for i in 0 1 2 3; do
        make_file "files/$1-$i.bin" "$1"
        echo "/$1-$i files/$1-$i.bin" >>content.txt
        printf '/%s-%s:files/%s-%s.bin ' "$1" "$i" "$1" "$i"
    done
}
: >content.txt
mid=$(specs_of $((8 << 20)))
big=$(specs_of $((32 << 20)))

# round SIGNAL GRACE_MS RATE SPECS: 32 clients reading at most RATE bytes/s each; the signal
# once all are connected and 8 transfers are under way.
# Sets ROUND_RC (server exit status), ROUND_SECS (signal to exit) and ROUND_SUMMARY.
round() {
    local sig=$1 grace=$2 rate=$3 specs=$4 port t0 t1
    port=$(free_port)
    rm -f "$WORK/ready"
    spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 8 -m content.txt -G "$grace"
    wait_port "$port"
    # shellcheck disable=SC2086
    spawn SWARM python3 "$RAW" swarm "$port" 32 "$rate" "$WORK/ready" $specs
    wait_for 60 test -e "$WORK/ready" || fail "transfers did not start"
    t0=$(date +%s.%N)
    ROUND_RC=0
    stop "$SRV" "$sig" 60 || ROUND_RC=$?
    t1=$(date +%s.%N)
    ROUND_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    wait "$SWARM" || true
    ROUND_SUMMARY=$(grep '^swarm ' "$(logfile_of "$SWARM")" || echo "swarm none=1")
    log "SIG$sig, grace ${grace} ms: exit $ROUND_RC after ${ROUND_SECS}s; $ROUND_SUMMARY"
}

count() { # KEY: the count of KEY in ROUND_SUMMARY
    local v
    v=$(tr ' ' '\n' <<<"$ROUND_SUMMARY" | sed -n "s/^$1=//p")
    echo "${v:-0}"
}

only_keys() { # KEY...: ROUND_SUMMARY holds no other result
    local k
    for k in $(tr ' ' '\n' <<<"${ROUND_SUMMARY#swarm }" | cut -d= -f1); do
        [[ " $* " == *" $k "* ]] || return 1
    done
}

# A generous grace: every transfer that started completes, byte for byte, and so do the ones
# accepted and queued (8 workers, 32 clients, 8 MiB at 4 MiB/s each: about four rounds).
round TERM 30000 $((4 << 20)) "$mid"
check "SIGTERM: exit status 0 (got $ROUND_RC)" test "$ROUND_RC" -eq 0
check "SIGTERM: every started transfer completed ($ROUND_SUMMARY)" only_keys complete refused noheader
check "SIGTERM: the 8 transfers under way completed" test "$(count complete)" -ge 8
check "SIGTERM: exit within the grace period (${ROUND_SECS}s)" \
    awk -v s="$ROUND_SECS" 'BEGIN { exit !(s < 30) }'

# A short grace: transfers still running are cut (short, never corrupt), and the exit is quick
# (32 MiB at 4 MiB/s each could never finish within it).
round INT 300 $((4 << 20)) "$big"
check "SIGINT: exit status 0 (got $ROUND_RC)" test "$ROUND_RC" -eq 0
check "SIGINT: transfers end complete or short, never wrong ($ROUND_SUMMARY)" \
    only_keys complete short refused noheader
check "SIGINT: the 8 transfers under way were cut" test "$(count short)" -ge 8
check "SIGINT: exit promptly after the grace period (${ROUND_SECS}s)" \
    awk -v s="$ROUND_SECS" 'BEGIN { exit !(s < 10) }'
finish
