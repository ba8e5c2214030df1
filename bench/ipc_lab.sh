#!/usr/bin/env bash
# ipc_lab.sh - the IPC comparison lab (issue 14 item 3): the same cache protocol over every
# --ipc backend, side by side in one run: 1 KiB round trip p50/p99, 1 KiB requests/s, 1 MiB and
# 10 MiB GB/s at 1 and 8 clients, CPU seconds per GB, lines of code, and what a kill -9 of
# either side leaves and how long until a new start is clean. Writes docs/ipc-lab.md's
# generated section and docs/ipc-lab.png (or, with --out, files there only).
#
# Usage: bench/ipc_lab.sh [--quick] [--reps N] [--duration S] [--backends LIST] ... (--help)
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$SRC_DIR/bench
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
    cat <<EOF
usage: bench/ipc_lab.sh [options]
Starts one simplecached + webproxy pair per IPC backend (each in its own runtime directory),
inside a private mount + IPC namespace, and measures them on the same files, repetitions
outermost and backends innermost so every backend sees the same machine weather.

  --quick            smoke run: 1 repetition of a few requests per cell, no kill -9 timings
  --reps N           repetitions of each cell (default 3)
  --duration S       seconds per sample (default 2)
  --backends LIST    subset of posix,sysv,unix,fd (default: all four; a backend the programs
                     do not accept is skipped and said so)
  --threads N        worker threads of both daemons (default 8)
  --no-kill          skip the kill -9 / restart timings
  --strict           a backend the programs have that does not start or serve is an error
                     (exit 1), not skipped (the smoke test uses it)
  --no-build         use the programs already built
  --build-dir DIR    programs from DIR/bin (default build/release, built with the release preset)
  --out DIR          write results.tsv, ipc-lab.md and ipc-lab.png there and leave docs/ alone
  -h, --help         this help
EOF
}

QUICK=0 REPS=3 DURATION=2 BACKENDS=posix,sysv,unix,fd THREADS=8 KILL=1 BUILD=1 BUILD_DIR='' OUT='' STRICT=0
ARGS_ORIG=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --backends) BACKENDS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --no-kill) KILL=0 ;;
    --strict) STRICT=1 ;;
    --no-build) BUILD=0 ;;
    --build-dir) BUILD_DIR=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "ipc_lab.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then REPS=1 KILL=0; fi
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "ipc_lab.sh: --reps must be a positive integer" >&2; exit 2; }
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "ipc_lab.sh: --duration must be a positive integer" >&2; exit 2; }
IFS=, read -r -a BACKEND_LIST <<<"$BACKENDS"
for b in "${BACKEND_LIST[@]}"; do
    case "$b" in posix | sysv | unix | fd) ;; *) echo "ipc_lab.sh: unknown backend '$b'" >&2; exit 2 ;; esac
done
say() { printf '[ipc_lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- build, then a private namespace (fresh /dev/shm, /dev/mqueue, System V IPC) ------------
if [ -z "${GF_LAB_ISOLATED:-}" ]; then
    if [ -z "$BUILD_DIR" ]; then
        BUILD_DIR=$SRC_DIR/build/release
        if [ "$BUILD" = 1 ]; then
            say "building: cmake --preset release; target bench"
            (cd "$SRC_DIR" && cmake --preset release >/dev/null &&
                cmake --build --preset release --target bench -j2 >/dev/null)
        fi
    fi
    BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
    [ -n "$OUT" ] && OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
    export GF_LAB_BUILD_DIR=$BUILD_DIR GF_LAB_OUT=$OUT
    gf_isolate GF_LAB_ISOLATED 2g "$0" "${ARGS_ORIG[@]}" --no-build ||
        echo "ipc_lab.sh: not root: running without a private IPC namespace" >&2
fi
BUILD_DIR=${GF_LAB_BUILD_DIR:-$BUILD_DIR}
OUT=${GF_LAB_OUT:-$OUT}
BIN=$BUILD_DIR/bin
for p in gfload webproxy simplecached; do
    [ -x "$BIN/$p" ] || { say "missing $BIN/$p (build the \"bench\" target)"; exit 1; }
done

WORK=$(mktemp -d /tmp/gflab.XXXXXX)
cleanup() {
    local rc=$?
    stop_all TERM
    if [ "$rc" -ne 0 ]; then
        for f in "$WORK"/*.log; do
            [ -f "$f" ] && { echo "---- $(basename "$f")" >&2; tail -n 8 "$f" >&2; }
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_port() { port_up "$1" 20 "$2"; } # PORT PID: until something accepts on PORT, while PID lives
now_ms() { date +%s%3N; }
cpu_ticks() { # PID...: utime+stime of the processes (all threads), in clock ticks
    local t=0 p f
    for p in "$@"; do
        f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null || echo "0 0")
        t=$((t + ${f% *} + ${f#* }))
    done
    echo "$t"
}
HZ=$(getconf CLK_TCK)

# --- files --------------------------------------------------------------------------------
mkdir -p "$WORK/files/f"
: >"$WORK/files/locals.txt"
make_set locals.txt w1k 8 1024 k
make_set locals.txt w1m 4 1048576 m
make_set locals.txt w10m 2 10485760 t

# --- one pair per backend -------------------------------------------------------------------
IPC_FLAG=0
help=$("$BIN/webproxy" --help 2>&1 || true) # whole: grep -q would SIGPIPE it under pipefail
[[ $help == *--ipc* ]] && IPC_FLAG=1
declare -A PORT=() CPID=() PPID_=()
ipc_args() { [ "$IPC_FLAG" = 1 ] && echo "--ipc $1"; return 0; }
start_cache() { # BACKEND
    local b=$1 a
    a=$(ipc_args "$b")
    # shellcheck disable=SC2086 # a is a word list
    start_bg "CPID[$b]" "$WORK/cache-$b.log" -C "$WORK/files" env GETFILE_RUNTIME_DIR="$WORK/rt-$b" \
        "$BIN/simplecached" -c locals.txt -t "$THREADS" $a
}
start_proxy() { # BACKEND
    local b=$1 a
    a=$(ipc_args "$b")
    # shellcheck disable=SC2086
    start_bg "PPID_[$b]" "$WORK/proxy-$b.log" -C "$WORK/files" env GETFILE_RUNTIME_DIR="$WORK/rt-$b" \
        "$BIN/webproxy" -p "${PORT[$b]}" -t "$THREADS" -n 16 -z 1048576 $a
    wait_port "${PORT[$b]}" "${PPID_[$b]}"
}
ok_request() { # BACKEND WORKLOAD: one request served in full
    local line
    line=$(timeout 30 "$BIN/gfload" -p "${PORT[$1]}" -c 1 -r 1 -i 5000 -w "$WORK/$2" 2>/dev/null) || return 1
    [[ $line == *" failures=0 "* ]]
}
ACTIVE=()
for b in "${BACKEND_LIST[@]}"; do
    if [ "$IPC_FLAG" = 0 ] && [ "$b" != posix ]; then
        say "$b: the programs have no --ipc option; skipped"
        continue
    fi
    mkdir -m 0700 "$WORK/rt-$b"
    PORT[$b]=$(free_port)
    start_cache "$b"
    if ! start_proxy "$b"; then
        say "$b: webproxy did not start; skipped"
        tail -n 3 "$WORK/proxy-$b.log" >&2 || true
        if [ "$STRICT" = 1 ] && ! grep -q "not built yet" "$WORK/proxy-$b.log"; then exit 1; fi
        continue
    fi
    ok=0
    for _ in $(seq 1 100); do
        if ok_request "$b" w1k && ok_request "$b" w10m; then ok=1; break; fi
        sleep 0.1
    done
    if [ "$ok" = 0 ]; then
        say "$b: requests fail; skipped"
        tail -n 3 "$WORK/cache-$b.log" "$WORK/proxy-$b.log" >&2 || true
        [ "$STRICT" = 1 ] && exit 1
        continue
    fi
    ACTIVE+=("$b")
done
[ "${#ACTIVE[@]}" -gt 0 ] || { say "no backend works"; exit 1; }
say "backends: ${ACTIVE[*]}; $REPS x ${DURATION}s per cell"

TSV=$WORK/results.tsv
printf 'kind\tbackend\trep\tworkload\tclients\trps\tgbps\tp50_us\tp99_us\tbytes\tcpu_s\tfailures\n' >"$TSV"
# Idle cost: both daemons' CPU over a few seconds with no request (a polled wait shows here).
IDLE_S=$([ "$QUICK" = 1 ] && echo 1 || echo 4)
declare -A IDLE0=()
for b in "${ACTIVE[@]}"; do IDLE0[$b]=$(cpu_ticks "${CPID[$b]}" "${PPID_[$b]}"); done
sleep "$IDLE_S"
for b in "${ACTIVE[@]}"; do
    t1=$(cpu_ticks "${CPID[$b]}" "${PPID_[$b]}")
    printf 'idle\t%s\t%s\n' "$b" "$(awk -v a="${IDLE0[$b]}" -v b="$t1" -v hz="$HZ" -v s="$IDLE_S" \
        'BEGIN { printf "%.1f", (b - a) / hz * 1000 / s }')" >>"$TSV"
done
field() { sed -nE "s/.* $1=([^ ]*).*/\1/p" <<<" $2"; }
for ((rep = 1; rep <= REPS; rep++)); do
    for cell in w1k:1 w1k:8 w1m:1 w1m:8 w10m:1 w10m:8; do
        wl=${cell%:*} c=${cell#*:}
        for b in "${ACTIVE[@]}"; do
            t0=$(cpu_ticks "${CPID[$b]}" "${PPID_[$b]}")
            if [ "$QUICK" = 1 ]; then span=(-r $((c * 4))); else span=(-d "$DURATION"); fi
            line=$(timeout 120 "$BIN/gfload" -T -p "${PORT[$b]}" -c "$c" "${span[@]}" \
                -w "$WORK/$wl" 2>/dev/null || true)
            t1=$(cpu_ticks "${CPID[$b]}" "${PPID_[$b]}")
            cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
            printf 'perf\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$b" "$rep" "${wl#w}" "$c" \
                "$(field rps "$line")" "$(field gbps "$line")" "$(field p50_us "$line")" \
                "$(field p99_us "$line")" "$(field bytes "$line")" "$cpu" \
                "$(field failures "$line")" >>"$TSV"
        done
    done
    say "repetition $rep done"
done
[ -n "$OUT" ] && cp "$TSV" "$OUT/results.tsv" # kept even if a later step fails

# --- kill -9 of either side: what is left, how long until a new start is clean ---------------
# objects_of PID: IPC objects owned by PID: POSIX names with -PID-, System V queues whose key
# holds PID (ours: 0x67 magic, kind 0), System V segments PID created, and socket or other
# files naming PID in the backend's runtime directory.
objects_of() {
    local pid=$1 b=$2 f
    for f in /dev/shm/getfile-*-"$pid"-* /dev/mqueue/getfile-*-"$pid"-*; do
        [ -e "$f" ] && echo "posix:$(basename "$f")"
    done
    awk -v pid="$pid" 'NR > 1 && int($1 / 4194304) == 412 && ($1 % 4194304) == pid { print "sysv-msg:" $2 }' /proc/sysvipc/msg
    awk -v pid="$pid" 'NR > 1 && $5 == pid { print "sysv-shm:" $2 }' /proc/sysvipc/shm
    find "$WORK/rt-$b" -name "*$pid*" -printf 'file:%f\n' 2>/dev/null
    # The socket backends' names hold no pid: the dead cache's socket is the inode it left
    # and time it left (a new cache binds a new one under the same name; inode numbers may be
    # reused, hence the time too).
    local id name
    if [ "$pid" = "${DEAD_CACHE:-}" ] && [ -n "${DEAD_SOCKS:-}" ]; then
        find "$WORK/rt-$b" -type s -printf '%i:%T@ %f\n' 2>/dev/null | while read -r id name; do
            case " $DEAD_SOCKS " in *" $id "*) echo "socket:$name" ;; esac
        done
    fi
    return 0
}
# after_start PID BACKEND T0: "CLEAN FIRST": ms from T0 until objects_of PID is empty and until
# a request is served, polled together (20 s at most each: then "never").
after_start() {
    local clean=never first=never t i
    for ((i = 0; i < 2000; i++)); do
        t=$(($(now_ms) - $3))
        [ "$t" -gt 20000 ] && break
        if [ "$clean" = never ] && [ -z "$(objects_of "$1" "$2")" ]; then clean=$t; fi
        if [ "$first" = never ] && ok_request "$2" w1k; then first=$(($(now_ms) - $3)); fi
        [ "$clean" != never ] && [ "$first" != never ] && break
        sleep 0.01
    done
    echo "$clean $first"
}
if [ "$KILL" = 1 ]; then
    for b in "${ACTIVE[@]}"; do
        # The cache, killed mid-load, then a request (quick error expected), then a new cache.
        timeout 20 "$BIN/gfload" -T -p "${PORT[$b]}" -c 4 -d 3 -w "$WORK/w10m" >/dev/null 2>&1 &
        load=$!
        sleep 1
        dead=${CPID[$b]}
        DEAD_CACHE=$dead
        DEAD_SOCKS=$(find "$WORK/rt-$b" -type s -printf '%i:%T@\n' 2>/dev/null | xargs)
        kill -KILL "$dead"
        wait "$dead" 2>/dev/null || true
        wait "$load" 2>/dev/null || true
        left=$(objects_of "$dead" "$b" | sed -E 's/:.*//' | sort | uniq -c | awk '{printf "%s%s x%d", sep, $2, $1; sep=", "}')
        t0=$(now_ms)
        line=$(timeout 30 "$BIN/gfload" -p "${PORT[$b]}" -c 1 -r 1 -i 20000 -w "$WORK/w1k" 2>/dev/null || true)
        err_ms=$(($(now_ms) - t0))
        t0=$(now_ms)
        start_cache "$b"
        read -r clean first < <(after_start "$dead" "$b" "$t0")
        DEAD_CACHE='' DEAD_SOCKS=''
        printf 'kill\t%s\tcache\t%s\t%s\t%s\t%s\n' "$b" "${left:-nothing}" "$err_ms" "$clean" "$first" >>"$TSV"
        # The proxy, killed mid-load, then a new proxy on the same port.
        timeout 20 "$BIN/gfload" -T -p "${PORT[$b]}" -c 4 -d 3 -w "$WORK/w10m" >/dev/null 2>&1 &
        load=$!
        sleep 1
        dead=${PPID_[$b]}
        kill -KILL "$dead"
        wait "$dead" 2>/dev/null || true
        wait "$load" 2>/dev/null || true
        sleep 0.2 # the cache's workers notice the death (pidfd) within a slice
        left=$(objects_of "$dead" "$b" | sed -E 's/:.*//' | sort | uniq -c | awk '{printf "%s%s x%d", sep, $2, $1; sep=", "}')
        t0=$(now_ms)
        start_proxy "$b" || say "$b: proxy restart failed"
        read -r clean first < <(after_start "$dead" "$b" "$t0")
        printf 'kill\t%s\tproxy\t%s\t-\t%s\t%s\n' "$b" "${left:-nothing}" "$clean" "$first" >>"$TSV"
        say "$b: kill -9 timings done"
    done
fi

# --- lines of code per backend (non-blank, non-comment lines of its own files) ---------------
loc() {
    local n=0 f
    for f in "$@"; do
        [ -f "$SRC_DIR/$f" ] || continue
        n=$((n + $(grep -cvE '^\s*($|/\*|\*|//)' "$SRC_DIR/$f")))
    done
    echo "$n"
}
# Each backend's own files; what it reuses is said in docs/ipc-lab.md (sysv: the posix ring,
# pool and discovery; unix and fd share theirs, counted for both; fd's kept descriptors are its
# own).
backend_files() {
    case "$1" in
    posix) echo src/ipc/cmdq_client.c src/ipc/cmdq_server.c src/ipc/cmdq_msg.c src/ipc/shm_chan.c \
        src/ipc/shm_sem.c src/ipc/ipc_names.c src/proxy/handle_with_cache.c src/proxy/seg_pool.c \
        src/cache/attach_cache.c ;;
    sysv) echo src/ipc/sysv_keys.c src/ipc/sysv_msgq.c src/ipc/sysv_seg.c src/cache/cache_sysv.c ;;
    unix) echo src/ipc/sock_msg.c src/ipc/sock_chan.c src/cache/cache_sock.c src/proxy/cache_sock_chan.c ;;
    fd) echo src/ipc/sock_msg.c src/ipc/sock_chan.c src/cache/cache_sock.c src/proxy/cache_sock_chan.c \
        src/proxy/fd_keep.c ;;
    esac
}
for b in "${ACTIVE[@]}"; do
    # shellcheck disable=SC2046
    files=$(for f in $(backend_files "$b"); do if [ -f "$SRC_DIR/$f" ]; then echo "$f"; fi; done | xargs)
    # shellcheck disable=SC2086
    printf 'loc\t%s\t%s\t%s\n' "$b" "$(loc $files)" "$files" >>"$TSV"
done

# --- report ----------------------------------------------------------------------------------
# Debian's python3 has python3-matplotlib (scripts/deps.sh bench); another python3 first in
# PATH may not.
PY=python3
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null && PY=/usr/bin/python3
meta="$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(uname -r), $REPS x ${DURATION}s per cell, $THREADS threads"
if [ -n "$OUT" ]; then
    cp "$TSV" "$OUT/results.tsv"
    "$PY" "$BENCH_DIR/ipc_lab_report.py" --tsv "$TSV" --meta "$meta" --doc "$OUT/ipc-lab.md" --png "$OUT/ipc-lab.png"
else
    "$PY" "$BENCH_DIR/ipc_lab_report.py" --tsv "$TSV" --meta "$meta" --doc "$SRC_DIR/docs/ipc-lab.md" \
        --png "$SRC_DIR/docs/ipc-lab.png"
fi
