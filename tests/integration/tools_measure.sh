#!/usr/bin/env bash
# tools_measure.sh - gfclient_measure against a fake GETFILE server (fake_gfserver.py): the
# metrics file (exact header, a line per chunk and per request, totals that never decrease),
# the summary, content discarded, options.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"

MEASURE=$BIN_DIR/gfclient_measure
FAKE=$SRC_DIR/tests/integration/fake_gfserver.py
ROOT=$WORK/root

# ms DIR ARGS...: runs the client in DIR (created), stdout to DIR.out, stderr to DIR.err.
ms() {
    local dir=$1
    shift
    mkdir -p "$dir"
    local rc=0
    # shellcheck disable=SC2086
    (cd "$dir" && exec $TEST_WRAPPER "$MEASURE" "$@") >"$dir.out" 2>"$dir.err" || rc=$?
    return $rc
}

has_line() { grep -qxF -- "$2" "$1"; }

# check_metrics FILE BYTES SERVICED FAILED MIN_CHUNK_LINES: the header line exactly, then
# 5 columns per line, the first four never decreasing, byte increments only on chunk lines
# (empty comment), one "done" line per request, and the final totals.
check_metrics() {
    python3 - "$@" <<'PY'
import sys
path, want_bytes, want_serv, want_fail, min_chunks = sys.argv[1], *map(int, sys.argv[2:])
lines = open(path).read().split("\n")
assert lines[0] == "#Elapsed Time (secs),Bytes Received,Requests Serviced, Requests Failed, Comment", lines[0]
assert lines[-1] == "", "no final newline"
prev = (0.0, 0, 0, 0)
chunks = dones = 0
for ln in lines[1:-1]:
    cols = ln.split(",")
    assert len(cols) == 5, ln
    cur = (float(cols[0]), int(cols[1]), int(cols[2]), int(cols[3]))
    assert all(c >= p for c, p in zip(cur, prev)), (prev, ln)
    if cols[4] == "":
        chunks += 1
        assert cur[1] > prev[1], ("a chunk line without bytes", ln)
        assert cur[2:] == prev[2:], ln
    else:
        assert cols[4] in ("done OK", "done FILE_NOT_FOUND", "done FAILED"), ln
        dones += 1
        assert cur[1] == prev[1], ln
        assert cur[2] + cur[3] == prev[2] + prev[3] + 1, ln
        assert (cur[3] > prev[3]) == (cols[4] == "done FAILED"), ln
    prev = cur
assert prev[1:] == (want_bytes, want_serv, want_fail), (prev, want_bytes, want_serv, want_fail)
assert dones == want_serv + want_fail, dones
assert chunks >= min_chunks, (chunks, min_chunks)
PY
}

make_file "$ROOT/empty.bin" 0
make_file "$ROOT/k1.bin" 1024
make_file "$ROOT/m1.bin" $((1 << 20))
make_file "$ROOT/cut.bin" 100000

PORT=$(free_port)
spawn SRV python3 "$FAKE" --port "$PORT" --root "$ROOT" --cut /cut.bin=1000
wait_port "$PORT"

check "-h exits 0" ms "$WORK/h" -h
check "-h prints usage on stdout" grep -q '^usage: gfclient_measure' "$WORK/h.out"
check "-h mentions -m" grep -q -- '-m, --metrics FILE' "$WORK/h.out"
printf '/k1.bin\n' >"$WORK/wl-one"
n=0
for args in "-p 0" "-t 0" "-r x" "-x" "-m" "-m $WORK/no/such/dir/metrics.txt" \
    "-w $WORK/nonexistent"; do
    n=$((n + 1))
    rc=0
    # shellcheck disable=SC2086
    ms "$WORK/bad$n" -p "$PORT" -w "$WORK/wl-one" $args || rc=$?
    check "'$args' exits 2 (got $rc)" test "$rc" -eq 2
    check "'$args' prints a reason" grep -q '^gfclient_measure: ' "$WORK/bad$n.err"
    check "'$args' points to --help" grep -qx "Try 'gfclient_measure --help' for more information." "$WORK/bad$n.err"
    check "'$args' prints two lines" test "$(wc -l <"$WORK/bad$n.err")" -eq 2
done

# A mixed run: 8 requests over 3 threads, each 1 MiB body in several chunks (reads are at
# most 256 KiB), content discarded, default metrics file name.
printf '/m1.bin\n/k1.bin\n/empty.bin\n/missing.bin\n' >"$WORK/wl-mix"
rc=0
ms "$WORK/mix" -p "$PORT" -t 3 -r 8 -w "$WORK/wl-mix" || rc=$?
check "mix: exit 0 (got $rc)" test "$rc" -eq 0
check "mix: only metrics.txt written" test "$(cd "$WORK/mix" && find . -type f)" = "./metrics.txt"
bytes=$((2 * ((1 << 20) + 1024)))
check "mix: metrics file" check_metrics "$WORK/mix/metrics.txt" "$bytes" 8 0 $((2 * 4 + 2))
for l in "requests: 8" "ok: 6" "not_found: 2" "failed: 0" "bytes: $bytes"; do
    check "mix: summary '$l'" has_line "$WORK/mix.out" "$l"
done
for k in elapsed_s requests_per_s MB_per_s latency_p50_ms latency_p99_ms; do
    check "mix: summary $k" grep -qE "^$k: [0-9]+\.[0-9]+$" "$WORK/mix.out"
done
# shellcheck disable=SC2016 # awk fields, not shell variables
check "mix: p50 <= p99" awk '/^latency_p50_ms/{a=$2} /^latency_p99_ms/{b=$2} END{exit !(a<=b && b>0)}' \
    "$WORK/mix.out"

# The workload from standard input ('-') and from a FIFO, read to its end.
printf '/k1.bin\n/empty.bin\n' >"$WORK/wl-pipe"
rc=0
cat "$WORK/wl-pipe" | ms "$WORK/stdin" -p "$PORT" -w - || rc=$?
check "workload from stdin: exit 0 (got $rc)" test "$rc" -eq 0
check "workload from stdin: both requests served" has_line "$WORK/stdin.out" "ok: 2"
check "workload from stdin: no '(null)'" bash -c "! grep -q null '$WORK/stdin.err'"
mkfifo "$WORK/wl-fifo"
timeout 60 cp "$WORK/wl-pipe" "$WORK/wl-fifo" & # blocks until the client opens the FIFO
writer=$!
rc=0
ms "$WORK/fifo" -p "$PORT" -w "$WORK/wl-fifo" || rc=$?
wait "$writer" || true
check "workload from a FIFO: exit 0 (got $rc)" test "$rc" -eq 0
check "workload from a FIFO: both requests served" has_line "$WORK/fifo.out" "ok: 2"

# A failed (short) transfer: counted in the metrics and the summary, exit 1.
printf '/cut.bin\n/k1.bin\n' >"$WORK/wl-cut"
rc=0
ms "$WORK/cut" -p "$PORT" -t 1 -w "$WORK/wl-cut" -m "$WORK/cut-metrics.csv" || rc=$?
check "cut: exit 1 (got $rc)" test "$rc" -eq 1
check "cut: metrics file" check_metrics "$WORK/cut-metrics.csv" $((1000 + 1024)) 1 1 2
check "cut: summary failed" has_line "$WORK/cut.out" "failed: 1"
check "cut: reported" grep -q 'GET /cut.bin: short transfer' "$WORK/cut.err"

finish
