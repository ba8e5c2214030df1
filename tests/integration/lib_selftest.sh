#!/usr/bin/env bash
# lib_selftest.sh - the harness's own promises, which every other test leans on:
#   1. stop and the exit cleanup never signal a PID that is not this shell's child (a PID we
#      spawned long ago may belong to somebody else's process by now);
#   2. stop does signal, wait for and reap a child of ours, and returns its status;
#   3. nap sleeps about as long as asked, proc_state and proc_alive read /proc right;
#   4. no test feeds a loop from a process substitution (see files_under in lib.sh).
source "$(dirname "$0")/lib.sh"

# A process that is not our child: started by a subshell that leaves at once (it is adopted by
# init or a subreaper). Stopped by its PID at the end of this test.
(sleep 120 >/dev/null 2>&1 <&- & echo $! >"$WORK/stranger")
STRANGER=$(<"$WORK/stranger")
trap '[ "$BASHPID" = "$$" ] && kill -KILL "$STRANGER" 2>/dev/null; cleanup' EXIT
check "the stranger runs" proc_alive "$STRANGER"
CHECKS=$((CHECKS + 1))
! ours "$STRANGER" || fail "ours() claims a process that is not our child"

# 1a. stop on the stranger's PID: no signal, and it returns at once (it cannot wait for it).
t0=$EPOCHREALTIME
st=0
stop "$STRANGER" TERM 5 || st=$?
t1=$EPOCHREALTIME
check "stop left the stranger alone" proc_alive "$STRANGER"
check "stop returned at once for a PID not ours ($t0 -> $t1)" \
    awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 1.0) }'
check "stop reported the PID as not waitable (status $st)" test "$st" -ne 0

# 1b. The exit cleanup of a test that "spawned" that PID (its GF_PIDS holds it) leaves it alive.
cat >"$WORK/child_test.sh" <<'EOS'
source "$SRC_DIR/tests/integration/lib.sh"
GF_PIDS+=("$1")
exit 0
EOS
GF_TEST_ISOLATED=1 bash "$WORK/child_test.sh" "$STRANGER" >"$WORK/child_test.out" 2>&1 ||
    fail "the child test failed: $(head -c 300 "$WORK/child_test.out")"
check "the exit cleanup of another test left the stranger alone" proc_alive "$STRANGER"

# 2. stop on a child of ours: SIGTERM delivered, reaped, status 128+15. Stopped at once, so
# the signal often reaches the child before its exec, while it still runs this script's EXIT
# trap: that must do nothing (the next checks fail if it removed $WORK or killed the stranger).
spawn SLEEPER sleep 120
check "the sleeper is ours" ours "$SLEEPER"
st=0
stop "$SLEEPER" TERM 5 || st=$?
check "stop returned the child's status (143, got $st)" test "$st" -eq 143
check "the child is gone" bash -c '! test -e "/proc/$1"' _ "$SLEEPER"
check "the child left \$WORK in place" test -d "$WORK"
check "the child left the stranger alone" proc_alive "$STRANGER"

# 3. nap and proc_state.
t0=$EPOCHREALTIME
nap 0.2
t1=$EPOCHREALTIME
check "nap 0.2 slept 0.2-1.0 s ($t0 -> $t1)" \
    awk -v a="$t0" -v b="$t1" 'BEGIN { d = b - a; exit !(d >= 0.19 && d < 1.0) }'
spawn PAUSED sleep 120
kill -STOP "$PAUSED"
wait_for 5 eval 'proc_state "$PAUSED" ST; [ "$ST" = T ]' ||
    fail "proc_state did not see the stopped state (got '${ST:-}')"
kill -CONT "$PAUSED"
proc_state 0 ST
check "proc_state of a PID that does not exist is empty (got '$ST')" test -z "$ST"
CHECKS=$((CHECKS + 1))
! proc_alive 0 || fail "proc_alive of a PID that does not exist is true"

# 4. `done < <(...)`: its PID, kept by bash after the end, hangs a long run once reused.
CHECKS=$((CHECKS + 1))
if grep -nE '^[[:space:]]*done[[:space:]]*<[[:space:]]*<\(' "$SRC_DIR"/tests/integration/*.sh \
    >"$WORK/procsub.txt"; then
    fail "loops fed by a process substitution: $(tr '\n' ' ' <"$WORK/procsub.txt")"
fi

finish
