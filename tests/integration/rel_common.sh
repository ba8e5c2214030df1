# rel_common.sh - shared by the rel_*.sh reliability scenarios. Source it right after lib.sh.
#
# Gives: a corpus of files and the cache index naming them, daemon start helpers, a download
# that verifies every byte it saved, sanitizer and exit-status checks of a daemon's log, IPC
# object counts, and the counters every scenario prints at the end in one parseable line:
#   RELIABILITY test=<name> runs=N faults=N signals=N downloads=N failed_reported=N leaks=N
# (runs: scenario runs, faults: faults injected, signals: signals sent to daemons, ok: requests
# answered OK, downloads: saved files compared byte for byte with the original (the client keeps
# one file per path, so a path requested many times in one run is compared once),
# failed_reported: requests the client reported as failed, leaks: sanitizer leak reports,
# known_weak: checks of known weaknesses that reproduced). docs/reliability.md quotes these.
# shellcheck shell=bash

REL_FULL=${RELIABILITY_FULL:-0}
declare -A REL=([runs]=0 [faults]=0 [signals]=0 [ok]=0 [downloads]=0 [failed_reported]=0 [leaks]=0)
REL_UID=$(id -u)
REL_DL_SEQ=0

rel_add() { REL[$1]=$((REL[$1] + ${2:-1})); }

# Weaknesses found by this campaign and reported, not yet fixed (docs/reliability.md lists
# them). A check tagged with one of these ids logs "KNOWN WEAKNESS" instead of failing; once
# the weakness is fixed the check passes and then FAILS until its id is removed here, so this
# list never outlives the bugs. REL_STRICT=1 makes every tagged check an ordinary one.
REL_KNOWN=()

# rel_known ID WHAT COMMAND...: a check of a known weakness (see REL_KNOWN).
rel_known() {
    local id=$1 what=$2 known=0 k
    shift 2
    for k in "${REL_KNOWN[@]}"; do [ "$k" = "$id" ] && known=1; done
    [ "${REL_STRICT:-0}" = 1 ] && known=0
    CHECKS=$((CHECKS + 1))
    if "$@"; then
        if [ "$known" = 1 ]; then
            fail "$what: known weakness '$id' no longer reproduces: remove it from REL_KNOWN in tests/integration/rel_common.sh"
        fi
        return 0
    fi
    if [ "$known" = 1 ]; then
        log "KNOWN WEAKNESS $id: $what"
        REL_WEAK=$((REL_WEAK + 1))
    else
        fail "$what"
    fi
    return 0
}
REL_WEAK=0

rel_report() {
    echo "RELIABILITY test=$TEST_NAME runs=${REL[runs]} faults=${REL[faults]}" \
        "signals=${REL[signals]} ok=${REL[ok]} downloads=${REL[downloads]}" \
        "failed_reported=${REL[failed_reported]} leaks=${REL[leaks]} known_weak=$REL_WEAK" \
        "full=$REL_FULL"
}

# ---- corpus -------------------------------------------------------------------------------
# $CORPUS holds the files; $CORPUS/locals.txt indexes them by absolute local path, so the cache
# may run in any directory. Paths: /empty (0 B), /small (1 KiB), /road.jpg (138177 B), /multi
# (300000 B: many chunks in a small segment), /big (5 MiB, only with rel_corpus big). /missing
# is not in the index (FILE_NOT_FOUND), /unreadable is indexed but its file does not exist.
CORPUS=$WORK/corpus

rel_corpus() {
    mkdir -p "$CORPUS/files"
    make_file "$CORPUS/files/empty" 0
    make_file "$CORPUS/files/small" 1024
    make_file "$CORPUS/files/road.jpg" 138177
    make_file "$CORPUS/files/multi" 300000
    {
        echo "/empty $CORPUS/files/empty"
        echo "/small $CORPUS/files/small"
        echo "/road.jpg $CORPUS/files/road.jpg"
        echo "/multi $CORPUS/files/multi"
        echo "/unreadable $CORPUS/files/does-not-exist"
    } >"$CORPUS/locals.txt"
    if [ "${1:-}" = big ]; then
        make_file "$CORPUS/files/big" $((5 << 20))
        echo "/big $CORPUS/files/big" >>"$CORPUS/locals.txt"
    fi
}

# rel_workload NAME PATH...: writes a workload file, prints its path.
rel_workload() {
    local f=$WORK/$1.wl
    shift
    printf '%s\n' "$@" >"$f"
    echo "$f"
}

# ---- daemons ------------------------------------------------------------------------------
# rel_start_cache VAR [BINARY] [ARGS...]: simplecached on the corpus index (extra args after).
# Env for the daemon (GF_FAULT, ...) goes in REL_ENV (an array of NAME=VALUE); a command
# prefix (prlimit, setpriv, ...) in REL_PREFIX.
declare -a REL_ENV=() REL_PREFIX=()
# spawn adds --ipc only to a command that starts with the daemon itself, not with env.
declare -a REL_IPC_ARGS=()
[ -z "${GETFILE_TEST_IPC:-}" ] || REL_IPC_ARGS=(--ipc "$GETFILE_TEST_IPC")
rel_start_cache() {
    local __v=$1 bin=${2:-simplecached}
    shift 2 || shift $#
    spawn "$__v" "${REL_PREFIX[@]}" env "${REL_ENV[@]}" "$BIN_DIR/$bin" "${REL_IPC_ARGS[@]}" \
        -c "$CORPUS/locals.txt" -t 4 -d 0 "$@"
}

# rel_start_proxy VAR PORT [BINARY] [ARGS...]: webproxy in cache mode (default -n 2 -z 8192).
rel_start_proxy() {
    local __v=$1 port=$2 bin=${3:-webproxy}
    shift 3 || shift $#
    local -a args=("$@")
    [ ${#args[@]} -gt 0 ] || args=(-n 2 -z 8192)
    spawn "$__v" "${REL_PREFIX[@]}" env "${REL_ENV[@]}" "$BIN_DIR/$bin" "${REL_IPC_ARGS[@]}" \
        -p "$port" -t 4 "${args[@]}"
}

# rel_alive PID: the process runs (and is not a zombie).
rel_alive() {
    proc_alive "$1"
}

# ---- backends -----------------------------------------------------------------------------
# REL_IPC: the --ipc backend of this run (GETFILE_TEST_IPC, which spawn passes to both daemons;
# the _fi copies are named here too). The helpers below look at that backend's objects.
REL_IPC=${GETFILE_TEST_IPC:-posix}

# rel_sock_listening PID: PID holds its backend's listening socket (unix, fd). By the socket's
# inode, so a file left by a killed cache, or another test's socket of the same path (the
# network namespace is shared), is not taken for it.
rel_sock_listening() {
    local name="getfile-$REL_UID-$REL_IPC.sock" inodes _n _r _p flags _t _s ino path
    inodes=" $(find "/proc/$1/fd" -lname 'socket:*' -printf '%l ' 2>/dev/null) "
    while read -r _n _r _p flags _t _s ino path; do
        [[ "$path" == */"$name" && "$flags" == 00010000 && "$inodes" == *" socket:[$ino] "* ]] &&
            return 0
    done </proc/net/unix
    return 1
}

# rel_sysv_cmdq_of PID: the System V command queue of cache PID exists (key 0x67 << 24 | pid,
# src/ipc/sysv_keys.h; the IPC namespace is private, so everything listed is ours).
rel_sysv_cmdq_of() {
    awk -v k=$(((0x67 << 24) | $1)) 'NR > 1 && $1 == k { f = 1 } END { exit !f }' /proc/sysvipc/msg
}

# rel_sysv_segs_of PID: System V segments created by PID (their cpid).
rel_sysv_segs_of() {
    awk -v p="$1" 'NR > 1 && $5 == p { n++ } END { print n + 0 }' /proc/sysvipc/shm
}

# rel_cache_ready PID: the cache with this pid has published its queue (every backend opens
# the posix one, for gfctl) and its backend's endpoint.
rel_cache_ready() {
    [ -n "$(find /dev/mqueue -maxdepth 1 -user "$REL_UID" -name "getfile-$REL_UID-$1-cmd*" \
        -print -quit 2>/dev/null)" ] || return 1
    case $REL_IPC in
    unix | fd) rel_sock_listening "$1" ;;
    sysv) rel_sysv_cmdq_of "$1" ;;
    esac
}

# rel_wait_cache PID [TIMEOUT_S]: waits for the queue of cache PID.
rel_wait_cache() {
    wait_for "${2:-20}" rel_cache_ready "$1"
}

# rel_catches PID SIGNUM: the process is one of our programs (not the shell or env that is
# about to exec it, which may have handlers of its own) and has a handler for the signal.
rel_catches() {
    local mask exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    [[ "$exe" == "$(readlink -f "$BIN_DIR")"/* ]] || return 1
    mask=$(awk '$1 == "SigCgt:" {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$mask" ] && (((0x$mask >> ($2 - 1)) & 1))
}

# rel_signal PID SIG: sends a signal to a daemon, counted.
rel_signal() {
    ours "$1" && kill -"$2" "$1" 2>/dev/null || true
    rel_add signals
}

# ---- checks of a daemon's end -------------------------------------------------------------
# rel_log_clean LOG: no sanitizer report in the log (counts leak reports).
rel_log_clean() {
    local log=$1
    if grep -q 'LeakSanitizer' "$log" 2>/dev/null; then
        rel_add leaks
    fi
    ! grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer' "$log" 2>/dev/null
}

# rel_check_exit WHAT STATUS LOG [clean|any]: a daemon's end was orderly: no sanitizer report;
# never killed by a signal it did not ask for; with "clean", exit status 0; with "any", status 0
# or a non-zero exit (not a signal, not 124/125+) with an error line ("... E ...") in its log.
rel_check_exit() {
    local what=$1 st=$2 log=$3 mode=${4:-clean}
    CHECKS=$((CHECKS + 1))
    if ! rel_log_clean "$log"; then
        fail "$what: sanitizer report in $(basename "$log")"
        grep -m 20 -E 'ERROR|SUMMARY|runtime error|#[0-9] ' "$log" >&2 || true
        return 0
    fi
    if [ "$st" -ge 126 ]; then
        fail "$what: ended by signal $((st - 128)) (status $st)"
        return 0
    fi
    if [ "$mode" = clean ] && [ "$st" -ne 0 ]; then
        fail "$what: exit status $st, expected 0"
        return 0
    fi
    if [ "$st" -ne 0 ] && ! grep -q -E ' E |error|cannot' "$log"; then
        fail "$what: exit status $st without an error message"
    fi
    return 0
}

# rel_stop_check WHAT PID [clean|any]: SIGTERM, wait, rel_check_exit.
rel_stop_check() {
    local what=$1 pid=$2 mode=${3:-clean} st=0
    rel_add signals
    stop "$pid" TERM 15 || st=$?
    rel_check_exit "$what" "$st" "$(logfile_of "$pid")" "$mode"
}

# ---- IPC objects --------------------------------------------------------------------------
rel_segments_of() { # PID: segments of the proxy PID (posix, sysv)
    local f n=0
    if [ "$REL_IPC" = sysv ]; then
        rel_sysv_segs_of "$1"
        return
    fi
    for f in /dev/shm/getfile-"$REL_UID"-"$1"-seg*; do
        [[ -e "$f" && "${f##*-seg}" =~ ^[0-9]+$ ]] && n=$((n + 1))
    done
    echo "$n"
}

# rel_pool_whole WHAT PID N: the proxy PID has its N segments (a check). The socket backends
# have no segments: nothing to check there.
rel_pool_whole() {
    case $REL_IPC in unix | fd) return 0 ;; esac
    CHECKS=$((CHECKS + 1))
    [ "$(rel_segments_of "$2")" -eq "$3" ] ||
        fail "$1: the proxy has $(rel_segments_of "$2") segments, not $3"
}
rel_ipc_count() { ipc_objects | grep -c . || true; }

# rel_assert_no_objects_of WHAT PID: nothing named after PID is left.
rel_assert_no_objects_of() {
    local left="" f
    for f in /dev/shm/getfile-"$REL_UID"-"$2"-* /dev/mqueue/getfile-"$REL_UID"-"$2"-*; do
        [ -e "$f" ] && left+="${f##*/}"$'\n'
    done
    # System V: a cache's command queue (keyed by its pid), a proxy's segments (by creator).
    # A dead or stopped proxy's segments are already marked for removal; the kernel frees each
    # at its last detach, and the cache drops the attachments it kept within about 1 s
    # (src/cache/cache_sysv.c, KEEP_SWEEP_MS).
    rel_sysv_cmdq_of "$2" && left+="sysv-msg-of-$2"$'\n'
    wait_for 5 eval '[ "$(rel_sysv_segs_of "$2")" -eq 0 ]' || left+="sysv-shm-of-$2"$'\n'
    CHECKS=$((CHECKS + 1))
    if [ -n "$left" ]; then
        fail "$1: IPC objects of pid $2 left: $(echo "$left" | tr '\n' ' ')"
    fi
}

# ---- downloads ----------------------------------------------------------------------------
# rel_get PORT WORKLOAD [REQUESTS] [THREADS] [TIMEOUT_S]: runs gfclient_download in a fresh
# directory (-R 0: no connect retries) and checks what it says against what it saved. Sets:
#   DL_RC (exit status), DL_OK, DL_NF, DL_FAILED (from its summary), DL_DIR.
# Fails the test when: it hung, its counts do not add up, a saved file differs from the corpus
# in any byte, a temporary file is left, or exit 0 came with failures.
rel_get() {
    rel_get_start "$@"
    DL_RC=0
    wait "$DL_PID" || DL_RC=$?
    rel_get_check
}

# rel_get_start PORT WORKLOAD [REQUESTS] [THREADS] [TIMEOUT_S]: the same in the background:
# sets DL_PID and DL_DIR; then `wait $DL_PID` for DL_RC and call rel_get_check.
rel_get_start() {
    local port=$1 wl=$2 n=${3:-0} t=${4:-1} to=${5:-60}
    REL_DL_SEQ=$((REL_DL_SEQ + 1))
    DL_DIR=$WORK/dl.$REL_DL_SEQ
    mkdir -p "$DL_DIR"
    local -a rarg=()
    if [ "$n" -gt 0 ]; then
        rarg=(-r "$n")
    fi
    (cd "$DL_DIR" && exec timeout -k 5 "$to" "$BIN_DIR/gfclient_download" -s 127.0.0.1 \
        -p "$port" -w "$wl" -t "$t" -R 0 "${rarg[@]}" >"$DL_DIR.out" 2>"$DL_DIR.err") &
    DL_PID=$!
}

rel_get_check() {
    DL_OK=$(awk '$1 == "ok:" {print $2}' "$DL_DIR.out")
    DL_NF=$(awk '$1 == "not_found:" {print $2}' "$DL_DIR.out")
    DL_FAILED=$(awk '$1 == "failed:" {print $2}' "$DL_DIR.out")
    local req
    req=$(awk '$1 == "requests:" {print $2}' "$DL_DIR.out")
    CHECKS=$((CHECKS + 1))
    if [ "$DL_RC" -eq 124 ] || [ "$DL_RC" -ge 128 ]; then
        fail "gfclient_download hung or crashed (status $DL_RC)"
        DL_OK=0 DL_NF=0 DL_FAILED=0
        return 0
    fi
    if [ -z "$DL_OK" ] || [ -z "$DL_FAILED" ] || [ -z "$DL_NF" ] ||
        [ $((DL_OK + DL_NF + DL_FAILED)) -ne "${req:-0}" ]; then
        fail "gfclient_download summary does not add up: $(tr '\n' ' ' <"$DL_DIR.out")"
        DL_OK=${DL_OK:-0} DL_NF=${DL_NF:-0} DL_FAILED=${DL_FAILED:-0}
        return 0
    fi
    if [ "$DL_RC" -eq 0 ] && [ "$DL_FAILED" -ne 0 ]; then
        fail "gfclient_download exited 0 with $DL_FAILED failures"
    fi
    rel_add failed_reported "$DL_FAILED"
    rel_add ok "$DL_OK"
    local f rel
    # A list file, not "< <(find ...)": see files_under in lib.sh.
    files_under "$DL_DIR" "$DL_DIR.files"
    while IFS= read -r -d '' f; do
        rel=${f#"$DL_DIR"/}
        case "$rel" in
        *.part) fail "temporary file left by the client: $rel" ;;
        *)
            if ! cmp -s "$f" "$CORPUS/files/$rel"; then
                fail "downloaded /$rel differs from the original"
            else
                rel_add downloads
            fi
            ;;
        esac
    done <"$DL_DIR.files"
    rm -rf "$DL_DIR" "$DL_DIR.files"
    return 0
}

# rel_get_strict WHAT PORT WORKLOAD OK NF [REQUESTS] [THREADS]: as rel_get, and every request
# must have its expected answer (OK requests answered OK, NF requests FILE_NOT_FOUND).
rel_get_strict() {
    local what=$1 port=$2 wl=$3 ok=$4 nf=$5
    rel_get "$port" "$wl" "${6:-0}" "${7:-1}"
    CHECKS=$((CHECKS + 1))
    if [ "$DL_RC" -ne 0 ] || [ "$DL_OK" != "$ok" ] || [ "$DL_NF" != "$nf" ]; then
        fail "$what: expected $ok ok / $nf not found / 0 failed, got $DL_OK / $DL_NF / $DL_FAILED (status $DL_RC): $(head -c 300 "$DL_DIR.err" 2>/dev/null | tr '\n' ' ')"
    fi
}

# rel_serves PORT WORKLOAD: one quiet request that succeeds (for wait_for).
rel_serves() {
    local d=$WORK/probe
    # One fork of this shell per probe (it is polled): the rest happens in the subshell.
    (rm -rf "$d" && mkdir -p "$d" && cd "$d" &&
        exec timeout -k 2 10 "$BIN_DIR/gfclient_download" -s 127.0.0.1 -p "$1" -w "$2" -t 1 \
            -R 0 >/dev/null 2>&1)
}

# rel_proc_cpu_ticks PID: utime + stime of a process, in clock ticks.
rel_proc_cpu_ticks() {
    awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
rel_fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rel_map_count() { wc -l <"/proc/$1/maps" 2>/dev/null || echo 0; }
