#!/usr/bin/env bash
# compat_legacy_clients.sh - the course's prebuilt GETFILE client (emulated from the facts,
# tests/integration/legacy_client.py) against every server we ship with --framing legacy:
# gfserver_main, webproxy in origin mode (python's http.server as the origin) and in cache mode
# (a real simplecached). Files byte-exact, FILE_NOT_FOUND and ERROR handled, INVALID in the
# older form, no hang; a control shows the emulation saves a corrupted file from the
# documented framing (the reported problem). Our own gfclient_download works against
# --framing legacy too.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

# legacy_get PORT PATH OUT [DUMP]: one request from the emulated older client; its exit status
# (0 OK, 3 FILE_NOT_FOUND, 4 ERROR, 5 other status, 6 hang, 7 short, 8 no header) in LRC,
# its line in LLINE. Bounded: 10 s without a byte is a hang, and timeout(1) backs that up.
legacy_get() {
    local args=("$1" "$2" --out "$3" --timeout 10)
    [ -n "${4:-}" ] && args+=(--dump "$4")
    LRC=0
    LLINE=$(timeout 30 python3 "$SRC_DIR/tests/integration/legacy_client.py" "${args[@]}") || LRC=$?
}

# expect_legacy PORT PATH RC WHAT: one request answers with exit status RC.
expect_legacy() {
    legacy_get "$1" "$2" "$WORK/lc.out"
    check "$4: GET $2 gives exit $3 (got $LRC: $LLINE)" test "$LRC" -eq "$3"
}

# legacy_files PORT WHAT: every file of the workload, byte-exact through the older client.
legacy_files() {
    local p
    while read -r p; do
        rm -f "$WORK/lc.out"
        legacy_get "$1" "$p" "$WORK/lc.out"
        check "$2: GET $p OK (exit $LRC: $LLINE)" test "$LRC" -eq 0
        check "$2: $p byte-exact" cmp -s "$WORK/lc.out" "$CONTENT/files$p"
    done <"$WORK/wl"
}

# exact_reply PORT PATH WANT WHAT: the server's whole reply is exactly WANT (printf format).
exact_reply() {
    legacy_get "$1" "$2" "$WORK/lc.out" "$WORK/dump"
    # shellcheck disable=SC2059 # the expected reply is a printf format on purpose
    printf -- "$3" >"$WORK/want"
    check "$4: reply to '$2' is exactly '$3' (exit $LRC)" cmp -s "$WORK/dump" "$WORK/want"
}

add_classic_set
add_file /empty.bin 0
add_file /big/m1.bin $((1 << 20))
awk '{print $1}' "$CONTENT/locals.txt" >"$WORK/wl"
# gfserver_main's index: the same files, plus a UNIX socket, which open(2) refuses with ENXIO:
# a server-side failure before any header, so ERROR.
cp "$CONTENT/locals.txt" "$CONTENT/content.txt"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$CONTENT/files/sock"
echo "/sock files/sock" >>"$CONTENT/content.txt"
ROAD=/courses/ud923/filecorpus/road.jpg

start_gfserver() { # VAR PORT OPTIONS...: gfserver_main in $CONTENT
    local __v=$1 __pid port=$2
    shift 2
    pushd "$CONTENT" >/dev/null || die "no $CONTENT"
    spawn __pid "$BIN_DIR/gfserver_main" -p "$port" -t 4 -m content.txt "$@"
    popd >/dev/null || die "popd"
    wait_port "$port"
    printf -v "$__v" '%s' "$__pid"
}

log "control: the documented framing (the default) corrupts the older client's files"
PORT=$(free_port)
start_gfserver SRV "$PORT"
legacy_get "$PORT" "$ROAD" "$WORK/road.doc"
check "control: a file is saved (exit $LRC: $LLINE)" test "$LRC" -eq 0
starts_with_crlf() { [ "$(head -c 2 "$1" | od -An -c | tr -d ' ')" = '\r\n' ]; }
check "control: it differs from the file" bash -c "! cmp -s '$WORK/road.doc' '$CONTENT/files$ROAD'"
check "control: it starts with the CRLF of the terminator" starts_with_crlf "$WORK/road.doc"
stop_ok "$SRV" TERM gfserver_main
PORT=$(free_port)
start_gfserver SRV "$PORT" --framing documented
legacy_get "$PORT" "$ROAD" "$WORK/road.doc2"
check "control: --framing documented is the default form" cmp -s "$WORK/road.doc" "$WORK/road.doc2"
stop_ok "$SRV" TERM gfserver_main

log "gfserver_main --framing legacy"
rc=0
"$BIN_DIR/gfserver_main" --framing bogus >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
check "--framing bogus exits 2 (got $rc)" test "$rc" -eq 2
check "--framing bogus says why" grep -q "framing" "$WORK/bad.err"
PORT=$(free_port)
start_gfserver SRV "$PORT" --framing legacy
legacy_files "$PORT" "gfserver_main"
expect_legacy "$PORT" /missing.bin 3 "gfserver_main"
expect_legacy "$PORT" /sock 4 "gfserver_main"
expect_legacy "$PORT" x 5 "gfserver_main (malformed request)"
exact_reply "$PORT" /missing.bin 'GETFILE FILE_NOT_FOUND 0\n' "gfserver_main"
exact_reply "$PORT" /sock 'GETFILE ERROR 0\n' "gfserver_main"
exact_reply "$PORT" x 'GETFILE INVALID 0\n' "gfserver_main"
exact_reply "$PORT" /empty.bin 'GETFILE OK 0 ' "gfserver_main"
# Our own client takes the older framing as it comes.
rc=0
download "$WORK/ours" "$PORT" "$WORK/wl" 4 "$(wc -l <"$WORK/wl")" || rc=$?
check "gfclient_download against --framing legacy: exit 0 (got $rc)" test "$rc" -eq 0
check "gfclient_download against --framing legacy: byte-exact" verify_all "$WORK/ours" "$WORK/wl"
stop_ok "$SRV" TERM gfserver_main

log "webproxy origin mode --framing legacy"
OPORT=$(free_port)
spawn ORIGIN python3 -m http.server --bind 127.0.0.1 "$OPORT" --directory "$CONTENT/files"
wait_port "$OPORT"
PORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 4 -s "http://127.0.0.1:$OPORT" --framing legacy
wait_port "$PORT"
legacy_files "$PORT" "origin mode"
expect_legacy "$PORT" /missing.bin 3 "origin mode"
exact_reply "$PORT" /missing.bin 'GETFILE FILE_NOT_FOUND 0\n' "origin mode"
exact_reply "$PORT" x 'GETFILE INVALID 0\n' "origin mode"
# An origin that is down: ERROR.
DEAD=$(free_port)
PORT2=$(free_port)
spawn PROXY2 "$BIN_DIR/webproxy" -p "$PORT2" -t 2 -s "http://127.0.0.1:$DEAD" --framing legacy
wait_port "$PORT2"
expect_legacy "$PORT2" "$ROAD" 4 "origin down"
exact_reply "$PORT2" "$ROAD" 'GETFILE ERROR 0\n' "origin down"
stop_ok "$PROXY2" TERM webproxy
stop_ok "$PROXY" TERM webproxy
stop "$ORIGIN" TERM 10 || true

log "webproxy cache mode --framing legacy"
PORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 4 -n 4 -z 8192 --framing legacy
wait_port "$PORT"
# No cache running yet: ERROR.
expect_legacy "$PORT" "$ROAD" 4 "cache not running"
exact_reply "$PORT" "$ROAD" 'GETFILE ERROR 0\n' "cache not running"
start_cache CACHE -t 4
legacy_ready() {
    legacy_get "$PORT" "$ROAD" "$WORK/ready.out"
    [ "$LRC" -eq 0 ] && cmp -s "$WORK/ready.out" "$CONTENT/files$ROAD"
}
check "cache mode: served once the cache is up" wait_for 15 legacy_ready
legacy_files "$PORT" "cache mode"
expect_legacy "$PORT" /missing.bin 3 "cache mode"
exact_reply "$PORT" /missing.bin 'GETFILE FILE_NOT_FOUND 0\n' "cache mode"
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
