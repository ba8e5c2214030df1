#!/usr/bin/env bash
# index_hostile.sh - index files that are not what they claim: gfserver_main's -m and
# simplecached's -c refuse a FIFO, a device and an oversized file at once and say why; an
# overlong line is a reported bad line, not memory growth; a FIFO listed in gfserver_main's
# index is FILE_NOT_FOUND without pinning the only worker, and SIGTERM still stops the server.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
RAW="$SRC_DIR/tests/integration/gfserver_raw.py"
SRV_BIN="$BIN_DIR/gfserver_main"
CACHE_BIN="$BIN_DIR/simplecached"
cd "$WORK" || exit 1

# refused WHAT MESSAGE CMD...: CMD exits non-zero within 20 s (124 is the timeout's) and its
# stderr says MESSAGE.
refused() {
    local what=$1 msg=$2 rc=0
    shift 2
    timeout 20 "$@" >out.txt 2>err.txt || rc=$?
    check "$what: exits non-zero at once (got $rc)" bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ]"
    check "$what: says '$msg'" grep -q -- "$msg" err.txt
}

mkfifo fifo
truncate -s $((256 * 1024 * 1024 + 1)) huge.txt # sparse
for idx in fifo /dev/zero; do
    refused "gfserver_main -m $idx" "not a regular file" "$SRV_BIN" -p "$(free_port)" -m "$idx"
    refused "simplecached -c $idx" "not a regular file" "$CACHE_BIN" -c "$idx"
done
refused "gfserver_main -m huge.txt" "larger than 268435456 bytes" \
    "$SRV_BIN" -p "$(free_port)" -m huge.txt
refused "simplecached -c huge.txt" "larger than 268435456 bytes" "$CACHE_BIN" -c huge.txt

make_file files/a.bin 3000
{
    echo "/a files/a.bin"
    printf '/long files/%*s\n' 20000 "" | tr ' ' x
    echo "/fifo fifo"
} >content.txt
port=$(free_port)
spawn SRV "$SRV_BIN" -p "$port" -t 1 -m content.txt
wait_port "$port"
srvlog=$(logfile_of "$SRV")
check "an overlong line is a reported bad line" \
    grep -q "content.txt:2: line longer than 16384 bytes" "$srvlog"
get() { timeout 40 python3 "$RAW" get "$port" "$1" | sed -n 1p; }
check "a listed FIFO is FILE_NOT_FOUND" test "$(get /fifo)" = "GETFILE_FILE_NOT_FOUND 0 eof"
check "... and the only worker is free: /a is served" test "$(get /a)" = "GETFILE_OK_3000 3000 eof"
srv_rc=0
stop "$SRV" TERM 20 || srv_rc=$?
check "SIGTERM: exit 0 (got $srv_rc)" test "$srv_rc" -eq 0
finish
