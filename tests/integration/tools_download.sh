#!/usr/bin/env bash
# tools_download.sh - gfclient_download against a fake GETFILE server (fake_gfserver.py):
# byte-exact saves, no file after a failed transfer, FILE_NOT_FOUND, cycling, concurrency,
# retry while the server is not up, path safety, options.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"

DL=$BIN_DIR/gfclient_download
FAKE=$SRC_DIR/tests/integration/fake_gfserver.py
ROOT=$WORK/root

# dl DIR ARGS...: runs the client in DIR (created), stdout to DIR.out, stderr to DIR.err;
# returns its exit status.
dl() {
    local dir=$1
    shift
    mkdir -p "$dir"
    local rc=0
    # shellcheck disable=SC2086
    (cd "$dir" && exec $TEST_WRAPPER "$DL" "$@") >"$dir.out" 2>"$dir.err" || rc=$?
    return $rc
}

# files_in DIR: regular files below DIR (relative, sorted), temporary ones included.
files_in() { (cd "$1" && find . -type f | sort); }

has_line() { grep -qxF -- "$2" "$1"; }

make_file "$ROOT/empty.bin" 0
make_file "$ROOT/one.bin" 1
make_file "$ROOT/k1.bin" 1024
make_file "$ROOT/m1.bin" $((1 << 20))
make_file "$ROOT/m64.bin" $((64 << 20))
make_file "$ROOT/d1/d2/deep.bin" 1000
make_file "$ROOT/cut.bin" 100000
make_file "$ROOT/bad.bin" 10

PORT=$(free_port)
spawn SRV python3 "$FAKE" --port "$PORT" --root "$ROOT" --cut /cut.bin=1000 --malformed /bad.bin
SRVLOG=$(logfile_of "$SRV")
wait_port "$PORT"
gets() { grep -cxF "GET $1" "$SRVLOG" || true; }

# -h and bad options.
check "-h exits 0" dl "$WORK/h" -h
check "-h prints usage on stdout" grep -q '^usage: gfclient_download' "$WORK/h.out"
check "-h prints nothing on stderr" test ! -s "$WORK/h.err"
printf '/k1.bin\n' >"$WORK/wl-one"
printf 'noslash\n' >"$WORK/wl-invalid"
: >"$WORK/wl-empty"
n=0
for args in "-p 0" "-p 65536" "-p x" "-t 0" "-t 1025" "-r 0" "-r -1" "-R x" "-x" "-p" \
    "-m m.txt" "-w $WORK/nonexistent" "-w $WORK/wl-invalid" "-w $WORK/wl-empty" \
    "-w $WORK/wl-one extra"; do
    n=$((n + 1))
    rc=0
    # shellcheck disable=SC2086
    dl "$WORK/bad$n" -p "$PORT" $args || rc=$?
    check "'$args' exits 2 (got $rc)" test "$rc" -eq 2
    check "'$args' names the program" grep -q '^gfclient_download: ' "$WORK/bad$n.err"
    check "'$args' points to --help" grep -qx "Try 'gfclient_download --help' for more information." "$WORK/bad$n.err"
    check "'$args' prints two lines" test "$(wc -l <"$WORK/bad$n.err")" -eq 2
    check "'$args' sends nothing" test -z "$(files_in "$WORK/bad$n")"
done

# Byte-exact downloads of 0 B .. 64 MiB, directories created, summary counts.
printf '/empty.bin\n/one.bin /k1.bin\n\t/m1.bin\n/m64.bin\n/d1/d2/deep.bin\n' >"$WORK/wl-sizes"
rc=0
dl "$WORK/sizes" -p "$PORT" -t 4 -w "$WORK/wl-sizes" || rc=$?
check "sizes: exit 0 (got $rc)" test "$rc" -eq 0
for f in empty.bin one.bin k1.bin m1.bin m64.bin d1/d2/deep.bin; do
    check "sizes: $f byte-exact" cmp "$ROOT/$f" "$WORK/sizes/$f"
done
check "sizes: nothing else saved" test "$(files_in "$WORK/sizes" | wc -l)" -eq 6
check "sizes: summary requests" has_line "$WORK/sizes.out" "requests: 6"
check "sizes: summary ok" has_line "$WORK/sizes.out" "ok: 6"
check "sizes: summary failed" has_line "$WORK/sizes.out" "failed: 0"
total=$((0 + 1 + 1024 + (1 << 20) + (64 << 20) + 1000))
check "sizes: summary bytes" has_line "$WORK/sizes.out" "bytes: $total"
check "sizes: summary MB/s" grep -qE '^MB_per_s: [0-9]+\.[0-9]+$' "$WORK/sizes.out"
check "sizes: summary elapsed" grep -qE '^elapsed_s: [0-9]+\.[0-9]+$' "$WORK/sizes.out"
check "sizes: quiet stderr" test ! -s "$WORK/sizes.err"

# The workload from standard input ('-'), a pipe (/dev/stdin) and a FIFO, read to its end.
printf '/k1.bin\n/one.bin\n' >"$WORK/wl-pipe"
for how in stdin devstdin fifo; do
    rc=0
    case $how in
    stdin) cat "$WORK/wl-pipe" | dl "$WORK/pipe-$how" -p "$PORT" -w - || rc=$? ;;
    devstdin) cat "$WORK/wl-pipe" | dl "$WORK/pipe-$how" -p "$PORT" -w /dev/stdin || rc=$? ;;
    fifo)
        mkfifo "$WORK/wl-fifo"
        # The writer blocks until the client opens the FIFO; timeout bounds it if it never does.
        timeout 60 cp "$WORK/wl-pipe" "$WORK/wl-fifo" &
        writer=$!
        dl "$WORK/pipe-$how" -p "$PORT" -w "$WORK/wl-fifo" || rc=$?
        wait "$writer" || true
        ;;
    esac
    check "workload from $how: exit 0 (got $rc)" test "$rc" -eq 0
    check "workload from $how: both files" \
        bash -c "cmp '$ROOT/k1.bin' '$WORK/pipe-$how/k1.bin' && cmp '$ROOT/one.bin' '$WORK/pipe-$how/one.bin'"
    check "workload from $how: no '(null)'" bash -c "! grep -q null '$WORK/pipe-$how.err'"
done

# FILE_NOT_FOUND is an answer: counted, exit 0, no file.
printf '/missing.bin\n/k1.bin\n' >"$WORK/wl-nf"
rc=0
dl "$WORK/nf" -p "$PORT" -w "$WORK/wl-nf" || rc=$?
check "not found: exit 0 (got $rc)" test "$rc" -eq 0
check "not found: counted" has_line "$WORK/nf.out" "not_found: 1"
check "not found: ok counted" has_line "$WORK/nf.out" "ok: 1"
check "not found: only the found file saved" test "$(files_in "$WORK/nf")" = "./k1.bin"

# A short transfer fails, leaves no file (no temporary either) and keeps an older copy whole.
mkdir -p "$WORK/short"
echo "old copy" >"$WORK/short/cut.bin"
printf '/cut.bin\n' >"$WORK/wl-cut"
rc=0
dl "$WORK/short" -p "$PORT" -w "$WORK/wl-cut" || rc=$?
check "short: exit 1 (got $rc)" test "$rc" -eq 1
check "short: counted as failed" has_line "$WORK/short.out" "failed: 1"
check "short: one line on stderr" test "$(wc -l <"$WORK/short.err")" -eq 1
check "short: stderr says short transfer" grep -q 'GET /cut.bin: short transfer: 1000 of 100000' \
    "$WORK/short.err"
check "short: no new or temporary file" test "$(files_in "$WORK/short")" = "./cut.bin"
check "short: the older copy is untouched" test "$(cat "$WORK/short/cut.bin")" = "old copy"
rc=0
dl "$WORK/short2" -p "$PORT" -w "$WORK/wl-cut" || rc=$?
check "short (fresh dir): exit 1" test "$rc" -eq 1
check "short (fresh dir): no file at all" test -z "$(files_in "$WORK/short2")"

# A malformed response header fails with no file.
printf '/bad.bin\n' >"$WORK/wl-bad"
rc=0
dl "$WORK/malformed" -p "$PORT" -w "$WORK/wl-bad" || rc=$?
check "malformed: exit 1 (got $rc)" test "$rc" -eq 1
check "malformed: reported" grep -q 'GET /bad.bin: malformed response' "$WORK/malformed.err"
check "malformed: no file" test -z "$(files_in "$WORK/malformed")"

# Paths that would leave the current directory are refused before anything is sent.
mkdir -p "$WORK/outside" "$WORK/safe"
ln -s "$WORK/outside" "$WORK/safe/d1" # the server has /d1/d2/deep.bin
printf '/../k1.bin\n/a/../../k1.bin\n/./k1.bin\n/a//k1.bin\n/d1/d2/deep.bin\n' >"$WORK/wl-escape"
rc=0
dl "$WORK/safe" -p "$PORT" -w "$WORK/wl-escape" || rc=$?
check "escape: exit 1 (got $rc)" test "$rc" -eq 1
check "escape: all five failed" has_line "$WORK/safe.out" "failed: 5"
check "escape: '..' refused" grep -q 'GET /../k1.bin: refused' "$WORK/safe.err"
check "escape: '..' never requested" test "$(gets /../k1.bin)" -eq 0
check "escape: no file outside" test ! -e "$WORK/k1.bin"
check "escape: symlink not followed" grep -q "GET /d1/d2/deep.bin: cannot save 'd1/d2/deep.bin'" \
    "$WORK/safe.err"
check "escape: nothing through the symlink" test -z "$(ls -A "$WORK/outside")"
check "escape: nothing saved" test -z "$(files_in "$WORK/safe")"

# -r cycles through the workload: request i gets path i mod n.
printf '/k1.bin\n/one.bin\n/empty.bin\n' >"$WORK/wl-cycle"
b_k1=$(gets /k1.bin) b_one=$(gets /one.bin) b_empty=$(gets /empty.bin)
rc=0
dl "$WORK/cycle" -p "$PORT" -t 2 -r 7 -w "$WORK/wl-cycle" || rc=$?
check "cycle: exit 0 (got $rc)" test "$rc" -eq 0
check "cycle: 7 requests" has_line "$WORK/cycle.out" "requests: 7"
check "cycle: 7 ok" has_line "$WORK/cycle.out" "ok: 7"
check "cycle: /k1.bin 3 times" test $(($(gets /k1.bin) - b_k1)) -eq 3
check "cycle: /one.bin 2 times" test $(($(gets /one.bin) - b_one)) -eq 2
check "cycle: /empty.bin 2 times" test $(($(gets /empty.bin) - b_empty)) -eq 2
check "cycle: files byte-exact" cmp "$ROOT/k1.bin" "$WORK/cycle/k1.bin"

# -t 8 really runs 8 requests at once: the server holds every answer until 8 are in
# progress. With -t 4 the first four time out at the barrier (the control).
PORT2=$(free_port)
spawn SRV2 python3 "$FAKE" --port "$PORT2" --root "$ROOT" --barrier 8 --barrier-timeout 3
wait_port "$PORT2"
printf '/m1.bin\n/k1.bin\n/d1/d2/deep.bin\n/one.bin\n' >"$WORK/wl-conc"
rc=0
dl "$WORK/conc" -p "$PORT2" -t 8 -r 8 -w "$WORK/wl-conc" || rc=$?
check "-t 8: exit 0 (got $rc)" test "$rc" -eq 0
check "-t 8: 8 ok" has_line "$WORK/conc.out" "ok: 8"
check "-t 8: byte-exact" cmp "$ROOT/m1.bin" "$WORK/conc/m1.bin"
check "-t 8: deep byte-exact" cmp "$ROOT/d1/d2/deep.bin" "$WORK/conc/d1/d2/deep.bin"
PORT3=$(free_port)
spawn SRV3 python3 "$FAKE" --port "$PORT3" --root "$ROOT" --barrier 8 --barrier-timeout 3
wait_port "$PORT3"
rc=0
dl "$WORK/conc4" -p "$PORT3" -t 4 -r 8 -w "$WORK/wl-conc" || rc=$?
check "-t 4 control: the barrier held (exit 1, got $rc)" test "$rc" -eq 1
check "-t 4 control: server ERROR reported" grep -q 'server answered ERROR' "$WORK/conc4.err"

# The server comes up after the client started: the client retries once a second.
PORT4=$(free_port)
mkdir -p "$WORK/late"
cd "$WORK/late" || exit 1
spawn CL "$DL" -p "$PORT4" -t 2 -r 2 -R 20 -w "$WORK/wl-one"
cd "$WORK" || exit 1
CLLOG=$(logfile_of "$CL")
check "late: client says it retries" wait_for 10 grep -q 'refused the connection; retrying' "$CLLOG"
sleep 2 # the client keeps retrying meanwhile
check "late: client still waiting" kill -0 "$CL"
spawn SRV4 python3 "$FAKE" --port "$PORT4" --root "$ROOT"
rc=0
wait "$CL" || rc=$?
check "late: exit 0 (got $rc)" test "$rc" -eq 0
check "late: byte-exact" cmp "$ROOT/k1.bin" "$WORK/late/k1.bin"
check "late: 2 ok" grep -qxF "ok: 2" "$CLLOG"
check "late: retry notice printed once" test "$(grep -c 'retrying' "$CLLOG")" -eq 1

# The retry is bounded: -R 1 with nobody listening gives up.
PORT5=$(free_port)
t0=$(date +%s)
rc=0
dl "$WORK/nobody" -p "$PORT5" -R 1 -w "$WORK/wl-one" || rc=$?
t1=$(date +%s)
check "nobody: exit 1 (got $rc)" test "$rc" -eq 1
check "nobody: gave up within 10 s" test $((t1 - t0)) -lt 10
check "nobody: refused reported" grep -q 'GET /k1.bin: Connection refused' "$WORK/nobody.err"
check "nobody: no file" test -z "$(files_in "$WORK/nobody")"

finish
