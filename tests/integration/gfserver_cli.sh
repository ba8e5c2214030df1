#!/usr/bin/env bash
# gfserver_cli.sh - gfserver_main's command line and content index: usage and exit codes, bad
# index lines, FILE_NOT_FOUND for what cannot be served, a short transfer on a read error,
# and -d delaying each request while workers run in parallel.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
RAW="$SRC_DIR/tests/integration/gfserver_raw.py"
SRV_BIN="$BIN_DIR/gfserver_main"
cd "$WORK" || exit 1

# exit_code CMD...: the exit status of CMD (stdout and stderr to out.txt / err.txt).
exit_code() {
    local rc=0
    timeout 20 "$@" >out.txt 2>err.txt || rc=$?
    echo "$rc"
}

check "-h exits 0" test "$(exit_code "$SRV_BIN" -h)" -eq 0
check "-h prints the usage on stdout" grep -q '^usage: gfserver_main' out.txt
for bad in "-t 0" "-t 1025" "-p 0" "-p 70000" "-d 2500001" "-d -1" "-t x" "-x" "-p" "extra"; do
    # shellcheck disable=SC2086
    check "'$bad' exits 2" test "$(exit_code "$SRV_BIN" $bad)" -eq 2
    check "'$bad' gives a one-line reason, then 'Try --help', nothing else" \
        bash -c 'head -n1 err.txt | grep -q "^gfserver_main: " &&
                 [ "$(sed -n 2p err.txt)" = "Try '"'gfserver_main --help'"' for more information." ] &&
                 [ "$(wc -l <err.txt)" -eq 2 ]'
done

check "a missing index exits 1" test "$(exit_code "$SRV_BIN" -p "$(free_port)" -m nope.txt)" -eq 1
check "... and names it" grep -q "nope.txt" err.txt
printf 'onlyonefield\nnoslash local\n' >bad.txt
check "an index without a valid entry exits 1" \
    test "$(exit_code "$SRV_BIN" -p "$(free_port)" -m bad.txt)" -eq 1
check "... after naming each bad line" bash -c 'grep -q "bad.txt:1:" err.txt && grep -q "bad.txt:2:" err.txt'

make_file files/a.bin 5000
mkdir -p files/dir
{
    echo "/a files/a.bin"
    echo "this line is bad"
    echo "/gone files/missing.bin"
    echo "/dir files/dir"
    echo "/sys /sys/kernel/uevent_seqnum" # claims 4096 bytes, holds a few: read ends early
} >content.txt
port=$(free_port)
spawn SRV "$SRV_BIN" -p "$port" -t 4 -m content.txt -d 300000 -l debug
wait_port "$port"
srvlog=$(logfile_of "$SRV")
check "a bad index line is reported with file and line" grep -q "content.txt:2:" "$srvlog"
check "the start line names port, threads and entries" \
    grep -q "serving 4 entries from 'content.txt' on port $port with 4 threads" "$srvlog"

get() { python3 "$RAW" get "$port" "$@"; }
reply_is() { [ "$(get "$1" | sed -n 1p)" = "$2" ]; } # PATH "HEADER BYTES END"
check "a listed file is served" reply_is /a "GETFILE_OK_5000 5000 eof"
check "an unlisted path is FILE_NOT_FOUND" reply_is /nope "GETFILE_FILE_NOT_FOUND 0 eof"
check "a listed but missing file is FILE_NOT_FOUND" reply_is /gone "GETFILE_FILE_NOT_FOUND 0 eof"
check "a listed directory is FILE_NOT_FOUND" reply_is /dir "GETFILE_FILE_NOT_FOUND 0 eof"
sys_reply=$(get /sys | sed -n 1p)
log "/sys: $sys_reply"
read -r sys_hdr sys_len sys_end <<<"$sys_reply"
check "a file that ends before its size: OK 4096 announced" test "$sys_hdr" = GETFILE_OK_4096
check "... then a short transfer ($sys_len bytes, $sys_end)" test "$sys_len" -lt 4096
check "the failure is logged by its error name, not a number" \
    wait_for 10 grep -qE "'/sys': transfer failed after [0-9]+ bytes: Input/output error$" "$srvlog"
check "no log line ends in a raw negative error code" bash -c "! grep -qE ': -[0-9]+$' '$srvlog'"

# -d: one request takes at least the delay; four at once on four workers take about as long
# as one, not four times as long.
t1=$(get /a 1 | sed -n 's/^elapsed //p')
t4=$(get /a 4 | sed -n 's/^elapsed //p')
log "-d 300000: one request ${t1}s, four concurrent ${t4}s"
check "the delay is applied (${t1}s)" awk -v t="$t1" 'BEGIN { exit !(t >= 0.29) }'
check "delayed requests run in parallel (${t4}s vs ${t1}s)" \
    awk -v a="$t4" -v b="$t1" 'BEGIN { exit !(a < 2.5 * b) }'

srv_rc=0
stop "$SRV" INT 20 || srv_rc=$?
check "SIGINT: exit 0 (got $srv_rc)" test "$srv_rc" -eq 0
check "the stop is logged" grep -q " stopped$" "$srvlog"
finish
