#!/usr/bin/env bash
# compat_legacy_server.sh - our load clients against the course's prebuilt GETFILE server
# (emulated from the facts, tests/integration/legacy_server.py: the older framing, and it waits
# for the client to close before closing). Files saved byte-exact, success reported,
# FILE_NOT_FOUND and ERROR counted, and no wait for the server's close: with --timeout 20000
# every run must end well within 5 s (a hang check, far below the idle timeout, not a speed
# check). Also --timeout's own checks: bad values refused, a silent server times out at it.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"

DL=$BIN_DIR/gfclient_download
MEASURE=$BIN_DIR/gfclient_measure
ROOT=$WORK/root
has_line() { grep -qxF -- "$2" "$1"; }

declare -A SIZE=(
    [/courses/ud923/filecorpus/1kb-sample-file-0.png]=1024
    [/courses/ud923/filecorpus/yellowstone.jpg]=104244
    [/courses/ud923/filecorpus/road.jpg]=138177
    [/courses/ud923/filecorpus/paraglider.jpg]=233174
    [/courses/ud923/filecorpus/moranabovejacksonlake.jpg]=452231
    [/empty.bin]=0
    [/m3.bin]=$((3 << 20))
)
for p in "${!SIZE[@]}"; do
    make_file "$ROOT$p" "${SIZE[$p]}"
done
printf '%s\n' "${!SIZE[@]}" >"$WORK/wl"

PORT=$(free_port)
spawn SRV python3 "$SRC_DIR/tests/integration/legacy_server.py" "$PORT" "$ROOT" \
    --error /broken.bin --hold 60
SRVLOG=$(logfile_of "$SRV")
wait_port "$PORT"

# run_client DIR PROG OPTIONS...: runs a load client in DIR (created), bounded by timeout(1);
# exit status in CRC, elapsed milliseconds in CMS, output in DIR.out / DIR.err.
run_client() {
    local dir=$1 prog=$2 t0
    shift 2
    mkdir -p "$dir"
    t0=$(date +%s%N)
    CRC=0
    # shellcheck disable=SC2086
    (cd "$dir" && exec timeout 60 $TEST_WRAPPER "$prog" -s 127.0.0.1 -p "$PORT" "$@") \
        >"$dir.out" 2>"$dir.err" || CRC=$?
    CMS=$((($(date +%s%N) - t0) / 1000000))
}

log "gfclient_download: every file, one thread, then four"
n=${#SIZE[@]}
for t in 1 4; do
    run_client "$WORK/dl$t" "$DL" -t "$t" -w "$WORK/wl" --timeout 20000
    check "t=$t: exit 0 (got $CRC)" test "$CRC" -eq 0
    check "t=$t: ok: $n" has_line "$WORK/dl$t.out" "ok: $n"
    check "t=$t: failed: 0" has_line "$WORK/dl$t.out" "failed: 0"
    check "t=$t: quiet stderr" test ! -s "$WORK/dl$t.err"
    check "t=$t: no wait for the server's close (took $CMS ms; idle timeout 20000)" \
        test "$CMS" -lt 5000
    for p in "${!SIZE[@]}"; do
        check "t=$t: $p byte-exact" cmp -s "$ROOT$p" "$WORK/dl$t$p"
    done
done
# The server saw each of the 2 x n connections closed by the client (its hold is 60 s).
closed_by_client() { [ "$(grep -c 'closed_by_client=1' "$SRVLOG")" -eq $((2 * n)) ]; }
check "the client closed all $((2 * n)) connections" wait_for 10 closed_by_client

log "FILE_NOT_FOUND and ERROR in the older framing"
printf '/missing.bin\n/broken.bin\n' >"$WORK/wl-bad"
run_client "$WORK/bad" "$DL" -t 1 -w "$WORK/wl-bad" --timeout 20000
check "bad: exit 1 (ERROR is a failure; got $CRC)" test "$CRC" -eq 1
check "bad: not_found: 1" has_line "$WORK/bad.out" "not_found: 1"
check "bad: failed: 1" has_line "$WORK/bad.out" "failed: 1"
check "bad: ERROR reported" grep -q 'GET /broken.bin: server answered ERROR' "$WORK/bad.err"
check "bad: no files" test -z "$(find "$WORK/bad" -type f)"
check "bad: no wait (took $CMS ms)" test "$CMS" -lt 5000

log "gfclient_measure"
run_client "$WORK/ms" "$MEASURE" -t 2 -w "$WORK/wl" -r 14 -m "$WORK/ms/metrics.txt" \
    --timeout 20000
check "measure: exit 0 (got $CRC)" test "$CRC" -eq 0
check "measure: ok: 14" has_line "$WORK/ms.out" "ok: 14"
check "measure: no wait (took $CMS ms)" test "$CMS" -lt 5000

log "--timeout: bad values refused, a silent server times out at it"
for bad in "--timeout 0" "--timeout x" "--timeout -5" "--timeout"; do
    rc=0
    # shellcheck disable=SC2086 # split on purpose
    "$DL" -p "$PORT" -w "$WORK/wl" $bad >"$WORK/cli.out" 2>"$WORK/cli.err" || rc=$?
    check "gfclient_download $bad exits 2 (got $rc)" test "$rc" -eq 2
    check "gfclient_download $bad says why" grep -q -- "--timeout" "$WORK/cli.err"
done
# A listener that accepts (the kernel does) and never answers: the request fails at the idle
# timeout, not at the 10 s default.
SILENT=$(free_port)
spawn HOLDER python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
print("listening", flush=True); time.sleep(120)' "$SILENT"
wait_port "$SILENT"
printf '/x\n' >"$WORK/wl-x"
t0=$(date +%s%N)
rc=0
(cd "$WORK" && timeout 60 "$DL" -s 127.0.0.1 -p "$SILENT" -w "$WORK/wl-x" --timeout 300) \
    >"$WORK/silent.out" 2>"$WORK/silent.err" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "silent server: exit 1 (got $rc)" test "$rc" -eq 1
check "silent server: timed out" grep -qi "timed out" "$WORK/silent.err"
check "silent server: not before the timeout (took $ms ms)" test "$ms" -ge 300
check "silent server: at the timeout, not the 10 s default (took $ms ms)" test "$ms" -lt 9000
stop "$HOLDER" TERM 5 || true
stop "$SRV" TERM 10 || true
finish
