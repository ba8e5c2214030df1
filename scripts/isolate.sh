# isolate.sh - sourced by every script that starts our daemons (scripts/demo.sh,
# scripts/demo_cache.sh, bench/run.sh, bench/ipc_lab.sh, bench/segclasses.sh and
# tests/integration/lib.sh): private namespaces, background processes stopped by PID, ports and
# polled waits. Defines functions and the array GF_PIDS only; runs nothing when sourced.
# shellcheck shell=bash disable=SC2015,SC2119,SC2120

# gf_isolate MARKER SHM_SIZE SCRIPT ARGS...: re-executes `bash SCRIPT ARGS...` inside private
# mount and IPC namespaces with a fresh tmpfs of SHM_SIZE (e.g. 2g) on /dev/shm, a private
# mqueue mount on /dev/mqueue and a fresh tmpfs on /run/getfile (root's runtime directory, where
# the cache's registry lives), with the environment variable MARKER set to 1 so that the second
# run knows it is isolated. Then nothing another program of the machine has is ours to meet, and
# nothing of ours outlives the run. Does not return if it isolates; returns 1 (and does nothing)
# when MARKER is already set, when not root, or without unshare: the caller says what then.
gf_isolate() {
    local marker=$1 size=$2
    shift 2
    if [ -n "${!marker:-}" ] || [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
        return 1
    fi
    export "$marker=1"
    # shellcheck disable=SC2016 # expanded by the inner shell
    exec unshare -m -i --fork --propagation private bash -c '
        set -e
        mount -t tmpfs -o "size=$1,mode=1777" tmpfs /dev/shm
        mkdir -p /dev/mqueue
        mount -t mqueue mqueue /dev/mqueue
        mkdir -p /run/getfile
        mount -t tmpfs -o size=1m,mode=0700 tmpfs /run/getfile
        shift
        exec bash "$@"' gf_isolate "$size" "$@"
}

# --- processes -----------------------------------------------------------------------------
# Every process started with start_bg is in GF_PIDS; stop_all stops them by PID.
declare -a GF_PIDS=()

# start_bg VAR LOG [-C DIR] CMD...: starts CMD in the background (in DIR if given), stdout and
# stderr appended to LOG; stores its PID in VAR and appends it to GF_PIDS.
start_bg() {
    local __var=$1 __log=$2 __dir=.
    shift 2
    if [ "$1" = -C ]; then
        __dir=$2
        shift 2
    fi
    (cd "$__dir" && exec "$@") >>"$__log" 2>&1 &
    GF_PIDS+=("$!")
    printf -v "$__var" '%s' "$!"
}

# The polling helpers below fork no `ps | cut`: fewer forks, fewer PID wraps in a long run.

# nap [SECONDS]: sleeps 50 ms by default.
nap() { sleep "${1:-0.05}"; }

# proc_fields PID VAR: stores the fields of /proc/PID/stat after "pid (comm) " (state, ppid,
# ...) in VAR, "" if PID is gone. comm may hold spaces and parentheses, hence the last ") ".
proc_fields() {
    local __f=""
    read -r __f 2>/dev/null <"/proc/$1/stat" || __f=""
    printf -v "$2" '%s' "${__f##*) }"
}

# proc_state PID VAR: stores the state letter of PID (R, S, T, Z...) in VAR, "" if it is gone.
proc_state() {
    local __st
    proc_fields "$1" __st
    printf -v "$2" '%s' "${__st:0:1}"
}

# ours PID: PID is a child of this shell. A PID we started may since have ended, been reaped
# and been given to somebody else's process (a long run wraps pid_max many times over): never
# signal a PID without asking this first.
ours() {
    local f ppid
    proc_fields "$1" f
    read -r _ ppid _ <<<"$f"
    [ "${ppid:-}" = "$$" ]
}

# proc_alive PID: PID exists and is not a zombie.
proc_alive() {
    local st
    proc_state "$1" st
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# stop_pid PID [SIGNAL] [TIMEOUT_S]: signals the process (TERM, 10 s by default) if it is ours
# and waits for it; SIGKILL after the timeout. Returns its exit status (128+n for a signal;
# non-zero at once for a PID that is not our child).
stop_pid() {
    local pid=$1 sig=${2:-TERM} t=${3:-10} i
    ours "$pid" && kill -"$sig" "$pid" 2>/dev/null || true
    # A zombie still answers kill -0, hence proc_alive; wait reaps it below.
    for ((i = 0; i < t * 20; i++)); do
        proc_alive "$pid" && ours "$pid" || break
        nap
    done
    if proc_alive "$pid" && ours "$pid"; then
        echo "$(basename "$0"): pid $pid did not stop within ${t}s after SIG$sig; killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    local rc=0
    wait "$pid" 2>/dev/null || rc=$?
    return $rc
}

# stop_all [SIGNAL] [TIMEOUT_S]: signals every process of GF_PIDS that is still ours at once,
# then stops each as stop_pid does. Always returns 0.
stop_all() {
    local sig=${1:-TERM} t=${2:-10} pid
    for pid in "${GF_PIDS[@]}"; do
        ours "$pid" && kill -"$sig" "$pid" 2>/dev/null || true
    done
    for pid in "${GF_PIDS[@]}"; do
        stop_pid "$pid" "$sig" "$t" || true
    done
}

# --- ports and waits -------------------------------------------------------------------------
# free_port: a TCP port nobody listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# port_open PORT: something accepts on 127.0.0.1:PORT now.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for TIMEOUT_S COMMAND...: polls a condition every 50 ms; false after the timeout.
wait_for() {
    local t=$1 i
    shift
    for ((i = 0; i < t * 20; i++)); do
        if "$@"; then
            return 0
        fi
        nap
    done
    return 1
}

# port_up PORT TIMEOUT_S [PID]: waits until something accepts on 127.0.0.1:PORT; false after
# the timeout, or as soon as PID (the server that should listen there) is gone.
port_up() {
    local port=$1 t=$2 pid=${3:-} i
    for ((i = 0; i < t * 20; i++)); do
        port_open "$port" && return 0
        [ -z "$pid" ] || proc_alive "$pid" || return 1
        nap
    done
    return 1
}
