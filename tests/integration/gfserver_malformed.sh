#!/usr/bin/env bash
# gfserver_malformed.sh - gfserver_main answers a table of malformed requests with INVALID (or
# a plain close), survives them, and keeps serving a normal client meanwhile.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
RAW="$SRC_DIR/tests/integration/gfserver_raw.py"
cd "$WORK" || exit 1

make_file files/small.bin 1000
make_file files/big.bin $((4 << 20))
python3 -c 'print("/" + "p" * 4095)' >longpath.txt # a request path of exactly 4096 bytes
{
    echo "/small files/small.bin"
    echo "/big files/big.bin"
    echo "$(cat longpath.txt) files/small.bin"
} >content.txt

port=$(free_port)
spawn SRV "$BIN_DIR/gfserver_main" -p "$port" -t 4 -m content.txt -H 1000 -S 5000
wait_port "$port"

# A normal client downloads the big file again and again during the whole table.
spawn LOOP python3 "$RAW" loop "$port" /big files/big.bin "$WORK/stop-loop"

python3 "$RAW" table "$port" files/small.bin longpath.txt >table.out 2>&1 || true
while read -r verdict name; do
    case "$verdict" in
    ok) check "$name" true ;;
    FAIL) check "$name" false ;;
    *) check "table output line: $verdict $name" false ;;
    esac
done <table.out
check "the table ran to its end" grep -q "^ok served after the table" table.out

touch "$WORK/stop-loop"
loop_rc=0
wait "$LOOP" || loop_rc=$?
check "loop client exited cleanly" test "$loop_rc" -eq 0
read -r _ good bad < <(grep '^loop ' "$(logfile_of "$LOOP")" || echo "loop 0 1")
log "normal downloads during the table: $good ok, $bad failed"
check "normal client served during the table" test "$good" -ge 1
check "no normal download failed" test "$bad" -eq 0

check "server survived the table" kill -0 "$SRV"
srv_rc=0
stop "$SRV" TERM 20 || srv_rc=$?
check "server exits 0 on SIGTERM (got $srv_rc)" test "$srv_rc" -eq 0
finish
