# lib.sh - shared by the integration tests: isolation, process tracking, ports, checks.
#
# Source it first thing. It re-executes the test (gf_isolate, scripts/isolate.sh) inside
# private mount and IPC namespaces with a fresh tmpfs on /dev/shm, a private mqueue mount on
# /dev/mqueue and a fresh tmpfs on /run/getfile (root's runtime directory, where the cache's
# registry lives), so tests can run in parallel and "nothing of ours is left" is a plain ls.
# Every process started with `spawn` is stopped by PID on exit. Requires root (unshare); the
# suite runs as root, and for anybody else the test exits 77, which ctest reports as skipped
# (SKIP_RETURN_CODE in tests/CMakeLists.txt).
# shellcheck shell=bash
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "$(basename "$0" .sh): SKIP: needs root for its private mount and IPC namespaces"
    exit 77
fi

: "${BIN_DIR:?BIN_DIR must point at the built programs}"
: "${SRC_DIR:?SRC_DIR must point at the source tree}"
: "${TEST_WRAPPER:=}"
# Tests cd into their own directories: a relative path given by hand must still work.
BIN_DIR=$(realpath -- "$BIN_DIR")
SRC_DIR=$(realpath -- "$SRC_DIR")
export BIN_DIR SRC_DIR

# The isolation, processes, ports and waits shared with the demo and bench scripts: gf_isolate,
# start_bg, stop_pid, stop_all, ours, proc_alive, proc_state, nap, free_port, port_open,
# port_up, wait_for.
# shellcheck source=scripts/isolate.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/isolate.sh"
gf_isolate GF_TEST_ISOLATED 2g "$0" "$@" || true

TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/gftest.${TEST_NAME}.XXXXXX")
FAILURES=0
CHECKS=0

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }
fail() { printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2; FAILURES=$((FAILURES + 1)); }
die() { printf '[%s] FATAL: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }

# check DESCRIPTION COMMAND...: runs the command; a non-zero status is a failure.
check() {
    local what=$1
    shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then
        return 0
    fi
    fail "$what"
    return 0
}

# GETFILE_TEST_IPC=posix|sysv|unix|fd: every simplecached and webproxy started with spawn gets
# --ipc VALUE (unless its arguments name one), so the cache-mode tests run on that backend
# (docs/ipc.md, "Backends"; tests/ipc.cmake registers some of them per backend).
: "${GETFILE_TEST_IPC:=}"
export GETFILE_TEST_IPC

# spawn VAR CMD...: starts CMD in the background (under TEST_WRAPPER for our binaries when
# the command is in BIN_DIR), stdout/stderr to $WORK/<name>.N.log; stores its PID in VAR.
spawn() {
    local __var=$1
    shift
    local name log
    if [ -n "$GETFILE_TEST_IPC" ] && [[ "$1" == "$BIN_DIR/simplecached" || "$1" == "$BIN_DIR/webproxy" ]] &&
        [[ " $* " != *" --ipc "* ]]; then
        set -- "$1" --ipc "$GETFILE_TEST_IPC" "${@:2}"
    fi
    name=$(basename "$1")
    log="$WORK/$name.${#GF_PIDS[@]}.log"
    if [[ "$1" == "$BIN_DIR"/* && -n "$TEST_WRAPPER" ]]; then
        # shellcheck disable=SC2086 # the wrapper is a word list
        set -- $TEST_WRAPPER "$@"
    fi
    start_bg "$__var" "$log" "$@"
    echo "$log" >"$WORK/.log.${!__var}"
}

logfile_of() { cat "$WORK/.log.$1"; }

# files_under DIR LIST: writes the regular files under DIR to LIST, NUL-terminated, for a
# `while read -d ''` loop. Never `done < <(find ...)` in a loop: bash 5.2.15 can keep the PID
# of a process substitution after it ended, and when the PID comes round again (a long run
# wraps pid_max) the exit of our new child is apparently taken for the old one's: its job stays
# "running" and the script waits for it forever (seen twice in full sweeps; bash's `procsubs`
# list, read with gdb, held the PID the script was waiting for).
files_under() { find "$1" -type f -print0 >"$2"; }

# stop PID [SIGNAL] [TIMEOUT_S]: stop_pid (scripts/isolate.sh): signals the process if it is
# ours and waits for it; SIGKILL after the timeout. Returns the exit status (128+n for a signal).
stop() { stop_pid "$@"; }

cleanup() {
    local rc=$?
    # A child forked by spawn that is signalled before its exec is still this script, EXIT
    # trap included: it must not kill our processes and remove $WORK on its way out.
    [ "$BASHPID" = "$$" ] || return 0
    stop_all KILL
    if [ "$rc" -ne 0 ] || [ "$FAILURES" -ne 0 ]; then
        for f in "$WORK"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f") (last 30 lines)"
            tail -n 30 "$f"
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# wait_port PORT [TIMEOUT_S]: waits until something accepts on 127.0.0.1:PORT.
wait_port() {
    port_up "$1" "${2:-20}" || die "nothing listens on port $1 after ${2:-20}s"
}

# GF_RUNDIR: root's runtime directory (src/ipc/ipc_rundir.h), private to this test.
GF_RUNDIR=/run/getfile

# ipc_objects: our IPC objects in this namespace (everything here is ours), one per line:
# names in /dev/shm and /dev/mqueue, System V queues, segments and semaphore sets (what `ipcs`
# lists; the namespace is private), and what is in the runtime directories (root's, and the
# last resort /dev/shm/getfile-<uid> of users without one, which itself stays, like /run/user;
# and an instance's empty directory instance-NAME in a runtime directory, which stays too).
ipc_objects() {
    find /dev/shm /dev/mqueue "$GF_RUNDIR" -mindepth 1 \
        ! \( -type d -regex '/dev/shm/getfile-[0-9]+' \) \
        ! \( -type d -empty -regex '.*/instance-[A-Za-z0-9_-]+' \) -printf '%P\n' 2>/dev/null ||
        true
    local k
    for k in msg shm sem; do
        awk -v k="$k" 'NR > 1 { printf "sysv-%s key=%d id=%d\n", k, $1, $2 }' "/proc/sysvipc/$k" \
            2>/dev/null || true
    done
}

# assert_no_ipc_left: the closing check of every test that starts an IPC peer.
assert_no_ipc_left() {
    local left
    left=$(ipc_objects)
    CHECKS=$((CHECKS + 1))
    if [ -n "$left" ]; then
        fail "IPC objects left behind: $(echo $left)"
        # Each one named, with its ls line and the likely cause (from its name and owner).
        python3 "$SRC_DIR/scripts/ipc_leaks.py" >&2 || true
    fi
}

# make_file PATH SIZE: a file of SIZE bytes of deterministic, position-dependent content.
make_file() {
    mkdir -p "$(dirname "$1")"
    python3 - "$1" "$2" <<'PY'
import sys, hashlib
path, size = sys.argv[1], int(sys.argv[2])
seed = hashlib.sha256(path.encode()).digest()
with open(path, "wb") as f:
    block = b""
    i = 0
    while size > 0:
        block = hashlib.sha256(seed + i.to_bytes(8, "little")).digest() * 2048  # 64 KiB
        n = min(size, len(block))
        f.write(block[:n])
        size -= n
        i += 1
PY
}

# finish: prints the closing line and sets the exit status.
finish() {
    local passed=$((CHECKS - FAILURES))
    echo "$TEST_NAME: $passed passed, $FAILURES failed"
    [ "$FAILURES" -eq 0 ]
}
