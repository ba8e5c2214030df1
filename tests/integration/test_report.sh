#!/usr/bin/env bash
# test_report.sh - the test command's closing report. test_report.py reads the JUnit files of a
# real ctest run (a small project made here with a passing, a failing and a skipped test) and
# prints one line per test with its status, duration and first failure line; ipc_leaks.py names
# every IPC object left behind (a real simplecached and webproxy killed with SIGKILL, and a
# segment of a still-running process) with its ls evidence and likely cause, and says nothing
# once they are gone.
source "$(dirname "$0")/lib.sh"

REPORT="$SRC_DIR/scripts/test_report.py"
LEAKS="$SRC_DIR/scripts/ipc_leaks.py"
UIDN=$(id -u)

# ---- test_report.py on a real ctest run ---------------------------------------------------------
P="$WORK/proj"
mkdir -p "$P"
cat >"$P/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.21)
project(reportcheck NONE)
enable_testing()
add_test(NAME good COMMAND sh -c "echo fine")
add_test(NAME bad COMMAND sh -c "echo starting; echo 'x.c:12: a == b failed: 1 != 2' >&2; echo later; exit 1")
add_test(NAME skipped COMMAND sh -c "exit 77")
set_tests_properties(skipped PROPERTIES SKIP_RETURN_CODE 77)
CM
(cd "$P" && cmake -S . -B b >/dev/null && cd b && ctest --output-junit "$WORK/j.xml" >/dev/null) || true
RC=0
"$REPORT" unit="$WORK/j.xml" >"$WORK/report.txt" || RC=$?
cat "$WORK/report.txt"
check "a failed test makes the report fail" [ "$RC" -eq 1 ]
check "one line for the passing test" grep -Eq '^PASS +[0-9.]+  unit  good$' "$WORK/report.txt"
check "the failing test with its first failure line" \
    grep -Eq '^FAIL +[0-9.]+  unit  bad  x\.c:12: a == b failed: 1 != 2$' "$WORK/report.txt"
check "the skipped test" grep -Eq '^SKIP +[0-9.]+  unit  skipped$' "$WORK/report.txt"
check "the totals" grep -q '^==== 1 passed, 1 failed, 1 skipped$' "$WORK/report.txt"
RC=0
"$REPORT" unit="$WORK/missing.xml" >"$WORK/report2.txt" || RC=$?
check "a run without a report is a failure" [ "$RC" -eq 1 ]
check "and says so" grep -q 'no report' "$WORK/report2.txt"

# ---- ipc_leaks.py on real leftovers -------------------------------------------------------------
check "nothing is reported in a clean namespace" "$LEAKS"
printf '/a.bin %s\n' "$SRC_DIR/README.md" >"$WORK/locals.txt"
PORT=$(free_port)
spawn CACHE "$BIN_DIR/simplecached" -c "$WORK/locals.txt" -t 1
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 1 -n 1 -z 8192
wait_port "$PORT"
queue_there() { ls /dev/mqueue | grep -q "^getfile-$UIDN-$CACHE-cmd$"; }
check "the cache made its queue" wait_for 10 queue_there
kill -KILL "$CACHE" "$PROXY"
wait "$CACHE" "$PROXY" 2>/dev/null || true
# A segment name of a process that still runs (this shell's sleep).
spawn SLEEPER sleep 60
: >"/dev/shm/getfile-$UIDN-$SLEEPER-seg7"
RC=0
"$LEAKS" >"$WORK/leaks.txt" || RC=$?
cat "$WORK/leaks.txt"
check "leftovers make it fail" [ "$RC" -eq 1 ]
check "the queue is named" grep -q "^leaked: /dev/mqueue/getfile-$UIDN-$CACHE-cmd$" "$WORK/leaks.txt"
check "with its ls line" grep -q "evidence: ls -l /dev/mqueue: .*getfile-$UIDN-$CACHE-cmd" "$WORK/leaks.txt"
check "and a dead owner as the cause" \
    grep -q "command queue of the cache process $CACHE, which has exited without removing it" "$WORK/leaks.txt"
check "the registry is named" grep -q "^leaked: $GF_RUNDIR/getfile-$UIDN-cache$" "$WORK/leaks.txt"
check "the proxy's segment is named" \
    grep -q "likely cause: data segment [0-9]* of the proxy process $PROXY, which has exited" "$WORK/leaks.txt"
check "the killed daemons' stats objects are named" bash -c "grep -q 'likely cause: stats object (live figures) of the daemon process $CACHE, which has exited' '$WORK/leaks.txt' && grep -q 'likely cause: stats object (live figures) of the daemon process $PROXY, which has exited' '$WORK/leaks.txt'"
check "a live owner is told apart" grep -q "segment 7 of the proxy process $SLEEPER, which is sleep, still running" "$WORK/leaks.txt"
stop "$SLEEPER" || true # it dies of the SIGTERM
rm -f /dev/shm/getfile-* /dev/mqueue/getfile-* "$GF_RUNDIR"/getfile-*
check "nothing once they are removed" "$LEAKS"
assert_no_ipc_left
finish
