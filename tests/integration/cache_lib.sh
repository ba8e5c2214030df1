# cache_lib.sh - helpers shared by the cache_*.sh tests: content, starting simplecached and
# webproxy in cache mode, a small GETFILE client, downloads checked by sha256. Source it right
# after lib.sh (which isolates the test in its own IPC namespace).
# shellcheck shell=bash

UIDN=$(id -u)
CONTENT="$WORK/content" # files/ + locals.txt + manifest (sha256 of every file)
mkdir -p "$CONTENT/files"

# add_file REQPATH SIZE: creates files/REQPATH of SIZE bytes and indexes it (relative path).
add_file() {
    make_file "$CONTENT/files$1" "$2"
    printf '%s files%s\n' "$1" "$1" >>"$CONTENT/locals.txt"
    (cd "$CONTENT/files" && sha256sum ".$1") >>"$CONTENT/manifest"
}

# add_classic_set: stand-ins of the framework's classic file set.
add_classic_set() {
    local i ext=(png html png jpg png)
    for i in 0 1 2 3 4; do
        add_file "/courses/ud923/filecorpus/1kb-sample-file-$i.${ext[$i]}" $((1000 + 37 * i))
    done
    add_file /courses/ud923/filecorpus/yellowstone.jpg 104244
    add_file /courses/ud923/filecorpus/road.jpg 138177
    add_file /courses/ud923/filecorpus/paraglider.jpg 233174
    add_file /courses/ud923/filecorpus/moranabovejacksonlake.jpg 452231
}

# workload FILE PATH...: writes a workload file.
workload() {
    local f=$1
    shift
    printf '%s\n' "$@" >"$f"
}

# cache_queue_exists PID: the cache PID's queue (ours, whatever its serial: docs/ipc.md).
cache_queue_exists() {
    [ -n "$(find /dev/mqueue -maxdepth 1 -user "$UIDN" -name "getfile-$UIDN-$1-cmd*" \
        -print -quit 2>/dev/null)" ]
}

# ipc_of [ARGS...]: the backend the arguments name (--ipc X), else GETFILE_TEST_IPC, else posix.
ipc_of() {
    local be=${GETFILE_TEST_IPC:-posix}
    while [ $# -gt 0 ]; do
        if [ "$1" = --ipc ] && [ $# -ge 2 ]; then
            be=$2
        fi
        shift
    done
    echo "$be"
}

# posix_segments: the backend of this run keeps its segments in /dev/shm (posix), so the checks
# by segment name apply (sysv has System V segments, unix and fd none: tests/ipc.cmake runs
# the cache tests on each; rel_peer_death and rel_faults check their segments per backend).
posix_segments() { [ "$(ipc_of)" = posix ]; }

# cache_socket_exists BACKEND: the socket of the cache on --ipc BACKEND (unix, fd) is bound.
cache_socket_exists() {
    [ -n "$(find "$GF_RUNDIR" -type s -name "getfile-$UIDN-$1.sock" -print -quit 2>/dev/null)" ]
}

# start_cache VAR [simplecached options]: starts simplecached in $CONTENT (relative paths) and
# waits until its command queue exists (and its socket, on --ipc unix or fd).
start_cache() {
    local __v=$1 __pid __be
    shift
    __be=$(ipc_of "$@")
    pushd "$CONTENT" >/dev/null || die "no $CONTENT"
    spawn __pid "$BIN_DIR/simplecached" -c locals.txt "$@"
    popd >/dev/null || die "popd"
    wait_for 30 cache_queue_exists "$__pid" || die "simplecached $__pid did not create its queue"
    case $__be in
    unix | fd) wait_for 30 cache_socket_exists "$__be" || die "simplecached $__pid has no $__be socket" ;;
    esac
    printf -v "$__v" '%s' "$__pid"
}

# start_proxy VAR PORT THREADS NSEG SEGSIZE [webproxy options]: webproxy in cache mode; waits
# for its port.
start_proxy() {
    local __v=$1 __pid
    spawn __pid "$BIN_DIR/webproxy" -p "$2" -t "$3" -n "$4" -z "$5" "${@:6}"
    wait_port "$2" 30
    printf -v "$__v" '%s' "$__pid"
}

# segments_of PID: names of the proxy PID's segments in /dev/shm, sorted.
segments_of() {
    # shellcheck disable=SC2010 # our names are plain ASCII
    ls -A /dev/shm | grep -E "^getfile-$UIDN-$1-seg[0-9]+\$" | sort || true
}

# initial_segments PID N: the names of a fresh pool of N segments (serials 1..N), sorted.
initial_segments() {
    local i
    for ((i = 1; i <= $2; i++)); do
        echo "getfile-$UIDN-$1-seg$i"
    done | sort
}

# stop_ok PID SIGNAL WHAT: stops a process and checks it exited 0.
stop_ok() {
    local rc=0
    stop "$1" "$2" 20 || rc=$?
    check "$3 exits 0 on SIG$2 (got $rc)" test "$rc" -eq 0
}

# The GETFILE client of these tests: one request, prints
#   STATUS ANNOUNCED RECEIVED ELAPSED_MS
# with STATUS one of OK FILE_NOT_FOUND ERROR INVALID SHORT (OK header, fewer bytes) NOHEADER.
# --out saves the body (only when complete); --rate reads at most that many bytes per second;
# --progress writes the bytes received so far to a file (for "mid-transfer" waits); --hold FILE
# stops reading after the first body bytes for as long as FILE exists (a transfer held open).
cat >"$WORK/gfget.py" <<'PY'
import socket, sys, time, argparse
ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("path")
ap.add_argument("--out")
ap.add_argument("--rate", type=int, default=0)
ap.add_argument("--progress")
ap.add_argument("--timeout", type=float, default=60)
ap.add_argument("--hold")
a = ap.parse_args()
t0 = time.monotonic()
s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
s.sendall(b"GETFILE GET " + a.path.encode() + b"\r\n\r\n")
buf = b""
status, length, body = "NOHEADER", 0, bytearray()
last_report = 0
def report(n):
    global last_report
    if a.progress and (n - last_report >= 65536 or n == 0):
        with open(a.progress + ".tmp", "w") as f:
            f.write(str(n))
        import os
        os.replace(a.progress + ".tmp", a.progress)
        last_report = n
try:
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    if b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        parts = head.decode("ascii", "replace").split(" ")
        status = parts[1] if len(parts) > 1 else "INVALID"
        if status == "OK":
            length = int(parts[2])
            body += rest
            report(0)
            chunk = 65536 if not a.rate else max(1024, a.rate // 20)
            while len(body) < length:
                t = time.monotonic()
                d = s.recv(min(chunk, length - len(body)))
                if not d:
                    break
                body += d
                report(len(body))
                if a.hold:
                    import os
                    while os.path.exists(a.hold) and time.monotonic() - t0 < a.timeout:
                        time.sleep(0.02)
                if a.rate:
                    need = len(d) / a.rate - (time.monotonic() - t)
                    if need > 0:
                        time.sleep(need)
            if len(body) < length:
                status = "SHORT"
except (socket.timeout, ConnectionError):
    if status == "OK":
        status = "SHORT"
if a.progress:
    with open(a.progress, "w") as f:
        f.write(str(len(body)))
if status == "OK" and a.out:
    with open(a.out, "wb") as f:
        f.write(body)
print(status, length, len(body), int((time.monotonic() - t0) * 1000))
PY

# gfget PORT PATH [options]: runs the client above (bounded by its own timeout).
gfget() {
    timeout 120 python3 "$WORK/gfget.py" "$@" || echo "CLIENTFAIL 0 0 0"
}

# status_of "LINE": the first word.
status_of() { echo "${1%% *}"; }

# expect_get PORT PATH STATUS: one request; checks the status, and for OK the bytes.
expect_get() {
    local out line st
    out="$WORK/get.$$.$RANDOM"
    line=$(gfget "$1" "$2" --out "$out")
    st=$(status_of "$line")
    check "GET $2 answers $3 (got: $line)" test "$st" = "$3"
    if [ "$3" = OK ] && [ "$st" = OK ]; then
        check "GET $2: bytes match" cmp -s "$out" "$CONTENT/files$2"
    fi
    rm -f "$out"
}

# get_ok PORT PATH: succeeds when one request returns OK with the right bytes (for wait_for).
get_ok() {
    local out="$WORK/probe.$$" line
    line=$(gfget "$1" "$2" --out "$out" --timeout 10)
    [ "$(status_of "$line")" = OK ] && cmp -s "$out" "$CONTENT/files$2"
    local rc=$?
    rm -f "$out"
    return $rc
}

# download DIR PORT WORKLOAD THREADS REQUESTS: gfclient_download into DIR (created); returns its
# exit status; its output goes to DIR.log.
download() {
    local dir=$1
    mkdir -p "$dir"
    local rc=0
    (cd "$dir" && timeout 150 "$BIN_DIR/gfclient_download" -s 127.0.0.1 -p "$2" -w "$3" \
        -t "$4" -r "$5") >"$dir.log" 2>&1 || rc=$?
    return $rc
}

# verify_all DIR WORKLOAD: every path of the workload was saved in DIR with the right sha256.
verify_all() {
    local dir=$1 p bad=0 want got
    while read -r p; do
        [ -n "$p" ] || continue
        want=$(awk -v p=".$p" '$2 == p { print $1; exit }' "$CONTENT/manifest")
        got=$(sha256sum "$dir$p" 2>/dev/null | cut -d' ' -f1)
        if [ -z "$got" ] || [ "$got" != "$want" ]; then
            log "missing or wrong: $p"
            bad=1
        fi
    done <"$2"
    return $bad
}

# verify_present DIR: every file that was saved in DIR is byte-identical to its source (after
# failures some may be missing, but none may be wrong).
verify_present() {
    local dir=$1 f bad=0 n=0
    files_under "$dir" "$WORK/verify.files"
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        if ! cmp -s "$f" "$CONTENT/files${f#"$dir"}"; then
            log "corrupted file reported as good: ${f#"$dir"}"
            bad=1
        fi
    done <"$WORK/verify.files"
    log "$n saved files checked"
    return $bad
}
