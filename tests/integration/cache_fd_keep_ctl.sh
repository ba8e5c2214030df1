#!/usr/bin/env bash
# cache_fd_keep_ctl.sh - kept descriptors (--ipc fd) of store entries against gfctl: right after
# a store hit (its descriptor kept by the proxy), a purge of the path, and a ban of its prefix,
# are seen by the very next request (a new GET at the origin), within the answer's keep time;
# nothing left.
export GETFILE_TEST_IPC=fd
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

start_origin
start_fill_cache CACHE
PORT=$(free_port)
start_proxy PROXY "$PORT" 2 2 65536

# got PATH: one request, OK expected; its line in LINE.
got() {
    LINE=$(gfget "$PORT" "$1" --out "$WORK/got" --timeout 10)
    check "GET $1 OK (got: $LINE)" test "$(status_of "$LINE")" = OK
}
# kept_then CMD PATH: a fill, then a hit whose descriptor the proxy keeps (both quickly, so the
# keep time of 1 s has not passed), then CMD, then the next request: a new origin GET.
kept_then() {
    local before
    got "$2"
    got "$2"
    before=$(attempts "$2")
    timeout 30 "$BIN_DIR/gfctl" "${@:3}" >"$WORK/ctl.out" 2>&1 ||
        fail "gfctl ${*:3}: $(cat "$WORK/ctl.out")"
    got "$2"
    check "$1: the next request asked the origin again (GETs $before -> $(attempts "$2"))" \
        test "$(attempts "$2")" -eq $((before + 1))
}

kept_then purge /ok/3000/a purge /ok/3000/a
kept_then ban /ok/4000/img/b ban /ok/4000/img/
check "the bytes are the origin's" test "$(sha256sum <"$WORK/got" | cut -d' ' -f1)" = "$(sha_of 4000)"

stop_ok "$PROXY" TERM webproxy
log "proxy: $(grep -o "kept descriptors.*" "$(logfile_of "$PROXY")")"
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
