#!/usr/bin/env bash
# cli_conventions.sh - the command-line conventions of every program, table-driven: --help and
# -h (usage on stdout, exit 0), --version, a bad option or value (one line naming it, then
# "Try 'PROG --help' for more information.", exit 2, nothing on stdout), long options that
# mean the same as the short ones, and exit 3 when a server cannot start (port in use, a
# second simplecached).
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

PROGS=(gfserver_main webproxy simplecached gfclient_download gfclient_measure)
VERSION=$(sed -n 's/^project(getfile VERSION \([0-9.]*\).*/\1/p' "$SRC_DIR/CMakeLists.txt")

# run PROG ARGS...: runs BIN_DIR/PROG in $WORK/run (bounded); sets RC, OUT and ERR (files).
run() {
    local prog=$1
    shift
    mkdir -p "$WORK/run"
    OUT=$WORK/run.out ERR=$WORK/run.err RC=0
    (cd "$WORK/run" && exec timeout 20 "$BIN_DIR/$prog" "$@") >"$OUT" 2>"$ERR" </dev/null || RC=$?
}
lines() { wc -l <"$1"; }

# usage_error PROG PATTERN ARGS...: exit 2, two lines on stderr (the reason matching PATTERN,
# then the pointer to --help), nothing on stdout.
usage_error() {
    local prog=$1 pattern=$2
    shift 2
    run "$prog" "$@"
    check "$prog $*: exit 2 (got $RC)" test "$RC" -eq 2
    check "$prog $*: two lines on stderr (got $(lines "$ERR"))" test "$(lines "$ERR")" -eq 2
    check "$prog $*: the reason names the problem" grep -qE -- "^$prog: .*$pattern" <(head -n 1 "$ERR")
    check "$prog $*: then Try --help" \
        test "$(sed -n 2p "$ERR")" = "Try '$prog --help' for more information."
    check "$prog $*: nothing on stdout" test ! -s "$OUT"
}

for prog in "${PROGS[@]}"; do
    for h in --help -h; do
        run "$prog" "$h"
        check "$prog $h: exit 0 (got $RC)" test "$RC" -eq 0
        check "$prog $h: usage on stdout" grep -q "^usage: $prog" "$OUT"
        check "$prog $h: nothing on stderr" test ! -s "$ERR"
        check "$prog $h: documents --help and --version" \
            bash -c "grep -q -- '--help' '$OUT' && grep -q -- '--version' '$OUT'"
        check "$prog $h: documents the exit statuses" grep -q "Exit status" "$OUT"
    done
    run "$prog" --version
    check "$prog --version: exit 0 (got $RC)" test "$RC" -eq 0
    check "$prog --version: '$prog (getfile) $VERSION'" \
        test "$(cat "$OUT")" = "$prog (getfile) $VERSION"
    usage_error "$prog" "unknown option --bogus" --bogus
    usage_error "$prog" "unknown option -x" -x
    usage_error "$prog" "-t: '0' is not a whole number from 1 to" -t 0
    usage_error "$prog" "-t: 'x' is not a whole number" --threads x
    usage_error "$prog" "--threads needs a value" --threads
    usage_error "$prog" "-t needs a value" -t
    usage_error "$prog" "unexpected argument 'extra'" extra
done
# gfctl: a client with commands; the same help, version and usage-error conventions.
for h in --help -h; do
    run gfctl "$h"
    check "gfctl $h: exit 0, usage on stdout (got $RC)" grep -q "^usage: gfctl" "$OUT"
    check "gfctl $h: documents the exit statuses" grep -q "Exit status" "$OUT"
done
run gfctl --version
check "gfctl --version: 'gfctl (getfile) $VERSION'" test "$(cat "$OUT")" = "gfctl (getfile) $VERSION"
usage_error gfctl "unknown option --bogus" --bogus reload
usage_error gfctl "-t: '0' is not a whole number from 1 to" -t 0 reload
usage_error gfctl "-t needs a value" -t
usage_error gfctl "missing command"
usage_error gfctl "unknown command 'extra'" extra
usage_error gfctl "must start with '/'" purge a
# Numeric values of other options, short and long.
usage_error gfserver_main "-p: '70000'" --port 70000
usage_error gfserver_main "-d: '2500001'" -d 2500001
usage_error gfserver_main "-q: '0'" --queue-depth 0
usage_error gfserver_main "-l: 'loud'" --log-level loud
usage_error webproxy "-z: '100'" --segment-size 100
usage_error webproxy "-n: '0'" -n 0
usage_error webproxy "-H: '0'" --header-timeout 0
usage_error simplecached "-d: '2500001'" --delay 2500001
usage_error simplecached "-l: 'loud'" -l loud
usage_error gfclient_download "-r: '0'" --requests 0
usage_error gfclient_download "unknown option --metrics" --metrics m.txt
usage_error gfclient_measure "-p: '0'" --port 0

# Cannot start: exit 3. A port somebody else listens on, for each server.
BUSY=$(free_port)
spawn HOLDER python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
time.sleep(120)' "$BUSY"
wait_port "$BUSY"
add_file /a.bin 100
cp "$CONTENT/locals.txt" "$WORK/run/content.txt" # run made $WORK/run above
cp -r "$CONTENT/files" "$WORK/run/"
for cmd in "gfserver_main -m content.txt" "webproxy -n 2 -z 8192" "webproxy -s http://127.0.0.1:1"; do
    # shellcheck disable=SC2086 # split on purpose
    run $cmd -p "$BUSY"
    check "$cmd on a port in use: exit 3 (got $RC)" test "$RC" -eq 3
    check "$cmd on a port in use: says so" grep -q "cannot listen on port $BUSY" "$ERR"
done
stop "$HOLDER" TERM 5 || true

# A second simplecached for the same user. The first runs with -l err: no info line at all.
start_cache CACHE -t 1 -l err
run simplecached -c "$CONTENT/locals.txt" -t 1 -w 0
check "a second simplecached: exit 3 (got $RC)" test "$RC" -eq 3
check "a second simplecached: says which one runs" grep -q "already running" "$ERR"
check "the first one is untouched" proc_alive "$CACHE"
stop_ok "$CACHE" TERM simplecached
check "simplecached -l err: no info line logged" bash -c "! grep -q ' I ' '$(logfile_of "$CACHE")'"

assert_no_ipc_left
finish
