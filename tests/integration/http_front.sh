#!/usr/bin/env bash
# http_front.sh - webproxy --http: curl and raw clients against the HTTP/1.1 front end in cache
# mode (a real simplecached) and origin mode (fault_origin.py): bytes, HEAD, keep-alive, the
# error statuses, ranges, 304, the access log, and the bounds (slow header, slow reader,
# per-client limit), while the GETFILE port keeps serving; SIGTERM leaves nothing behind.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$SRC_DIR/tests/integration/cache_lib.sh"

HC=(python3 "$SRC_DIR/tests/integration/http_client.py")
FAULT=$SRC_DIR/tests/integration/fault_origin.py
CURL=(curl -sS --max-time 20)

add_file /small.txt 1000
add_file /big.bin 3000000
add_file /huge.bin 16000000
add_file /empty 0
start_cache CACHE -t 2

GPORT=$(free_port)
HPORT=$(free_port)
# -H 2000: a header must be complete within 2 s; -S 1000 -R 65536: a reader must take 64 KiB
# per second of waiting.
spawn PROXY "$BIN_DIR/webproxy" -p "$GPORT" --http "127.0.0.1:$HPORT" -t 4 -n 4 -z 65536 \
    -H 2000 -S 1000 -R 65536 --access-log "$WORK/access.log"
wait_port "$GPORT"
wait_port "$HPORT"
URL=http://127.0.0.1:$HPORT

sha_file() { sha256sum "$1" | cut -d' ' -f1; }
# code URL [curl options]: the status curl got.
code() {
    local u=$1
    shift
    "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" "$u" || true
}

# ---- cache mode -----------------------------------------------------------------------------
for f in /small.txt /big.bin /empty; do
    rm -f "$WORK/got"
    c=$("${CURL[@]}" -o "$WORK/got" -w '%{http_code}' "$URL$f" || true)
    check "GET $f: 200 (got $c)" test "$c" = 200
    check "GET $f: byte-exact" cmp -s "$WORK/got" "$CONTENT/files$f"
done
if [ "$GETFILE_TEST_IPC" = fd ]; then
    # --ipc fd: libmicrohttpd sends the bodies from the cache's descriptors, not copies.
    # Bodies of 1 MiB or more (big.bin, 3 MB) from a kept mapping, shorter ones (the range
    # of 500000 bytes below) with sendfile.
    check "fd: bodies sent from kept mappings of the descriptors" \
        grep -q "sent from the cache's file descriptors (kept mappings)" "$WORK"/webproxy.*.log
fi
read -r st cl extra <<<"$("${HC[@]}" head "$HPORT" /big.bin)"
check "HEAD: 200, Content-Length 3000000, no body (got $st $cl $extra)" \
    test "$st $cl $extra" = "200 3000000 0"
# Two requests on one connection.
"${CURL[@]}" -v -o "$WORK/k1" -o "$WORK/k2" "$URL/small.txt" "$URL/big.bin" 2>"$WORK/kv" || true
check "keep-alive: the second request reuses the connection" grep -q "Re-using existing connection" "$WORK/kv"
check "keep-alive: both bodies right" \
    test "$(sha_file "$WORK/k1") $(sha_file "$WORK/k2")" = \
    "$(sha_file "$CONTENT/files/small.txt") $(sha_file "$CONTENT/files/big.bin")"
check "cache miss: 404" test "$(code "$URL/nothing-here")" = 404
# HTTP requests are in the access log like GETFILE ones (the source's status and result).
alog_has() { wait_for 10 grep -Eq "$1" "$WORK/access.log"; }
check "access log: the HTTP hit" alog_has '^[^ ]+ 127\.0\.0\.1:[0-9]+ /small\.txt OK 1000 [0-9.]+ HIT$'
check "access log: the HTTP miss" alog_has '^[^ ]+ 127\.0\.0\.1:[0-9]+ /nothing-here FILE_NOT_FOUND 0 [0-9.]+ MISS$'
check "DELETE: 405" test "$(code "$URL/small.txt" -X DELETE)" = 405
"${CURL[@]}" -D "$WORK/h405" -o /dev/null -X POST -d x "$URL/small.txt" || true
check "POST: 405 with Allow: GET, HEAD" grep -qi "^Allow: GET, HEAD" "$WORK/h405"
st=$("${HC[@]}" raw "$HPORT" 'GET /small.txt HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n')
check "malformed header line: 400 (got $st)" test "$st" = 400
st=$("${HC[@]}" raw "$HPORT" 'GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n')
check "NUL escape in the path: 400 (got $st)" test "$st" = 400
st=$("${HC[@]}" raw "$HPORT" 'GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n')
check "bad escape in the path: 400 (got $st)" test "$st" = 400
st=$("${HC[@]}" raw "$HPORT" 'GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n' --pad-header 100000)
check "100 kB header: 431 (got $st)" test "$st" = 431
st=$("${HC[@]}" raw "$HPORT" 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' --pad-uri 100000)
check "100 kB request line: 414 (got $st)" test "$st" = 414
st=$("${HC[@]}" raw "$HPORT" 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' --pad-uri 5000)
check "path over GF_PATH_MAX: 414 (got $st)" test "$st" = 414

# Ranges.
"${CURL[@]}" -D "$WORK/hr" -o "$WORK/r" -H 'Range: bytes=100000-100999' "$URL/big.bin" || true
check "range: 206" grep -q "^HTTP/1.1 206" "$WORK/hr"
check "range: Content-Range" grep -qi "^Content-Range: bytes 100000-100999/3000000" "$WORK/hr"
check "range: the right bytes" cmp -s "$WORK/r" <(tail -c +100001 "$CONTENT/files/big.bin" | head -c 1000)
"${CURL[@]}" -o "$WORK/r" -H 'Range: bytes=-10' "$URL/big.bin" || true
check "suffix range: the last 10 bytes" cmp -s "$WORK/r" <(tail -c 10 "$CONTENT/files/big.bin")
"${CURL[@]}" -o "$WORK/r" -H 'Range: bytes=2999990-' "$URL/big.bin" || true
check "open range: the last 10 bytes" cmp -s "$WORK/r" <(tail -c 10 "$CONTENT/files/big.bin")
# Ranges above 64 KiB (not gathered whole: with --ipc fd, sent from the descriptor).
"${CURL[@]}" -D "$WORK/hr" -o "$WORK/r" -H 'Range: bytes=500000-1599999' "$URL/big.bin" || true
check "large range: 206 bytes 500000-1599999" \
    grep -qi "^Content-Range: bytes 500000-1599999/3000000" "$WORK/hr"
check "large range: the right bytes" \
    cmp -s "$WORK/r" <(tail -c +500001 "$CONTENT/files/big.bin" | head -c 1100000)
"${CURL[@]}" -o "$WORK/r" -H 'Range: bytes=-1500000' "$URL/big.bin" || true
check "large suffix range: the last 1500000 bytes" \
    cmp -s "$WORK/r" <(tail -c 1500000 "$CONTENT/files/big.bin")
# A range under 1 MiB and over 64 KiB (with --ipc fd: sendfile of the descriptor).
"${CURL[@]}" -o "$WORK/r" -H 'Range: bytes=100000-599999' "$URL/big.bin" || true
check "range of 500000 bytes: the right bytes" \
    cmp -s "$WORK/r" <(tail -c +100001 "$CONTENT/files/big.bin" | head -c 500000)
# A range of 2 MiB at an odd offset (with --ipc fd, from the kept mapping of the file).
"${CURL[@]}" -o "$WORK/r" -H 'Range: bytes=700001-2899999' "$URL/big.bin" || true
check "2 MiB range at an odd offset: the right bytes" \
    cmp -s "$WORK/r" <(tail -c +700002 "$CONTENT/files/big.bin" | head -c 2199999)
if [ "$GETFILE_TEST_IPC" = fd ]; then
    check "fd: bodies under 1 MiB sent from the descriptors (sendfile)" \
        grep -q "sent from the cache's file descriptors (sendfile)" "$WORK"/webproxy.*.log
fi
"${CURL[@]}" -D "$WORK/hr" -o /dev/null -H 'Range: bytes=3000000-' "$URL/big.bin" || true
check "range past the end: 416" grep -q "^HTTP/1.1 416" "$WORK/hr"
check "416: Content-Range bytes */3000000" grep -qi "^Content-Range: bytes \*/3000000" "$WORK/hr"
check "two ranges: the whole file (200)" \
    test "$(code "$URL/big.bin" -H 'Range: bytes=0-1,5-6')" = 200
check "cache mode: no validators, so If-None-Match * is not 304" \
    test "$(code "$URL/small.txt" -H 'If-None-Match: *')" = 200

# ---- the bounds, each while a normal client is served -------------------------------------
"${HC[@]}" slowloris "$HPORT" --interval 0.3 --limit 10 >"$WORK/sl" &
SLPID=$!
GF_PIDS+=("$SLPID")
c=$("${CURL[@]}" -o "$WORK/got" -w '%{http_code}' "$URL/big.bin" || true)
check "served beside a slow header sender" test "$c" = 200
wait "$SLPID" || true
check "slowloris: cut by the header deadline ($(cat "$WORK/sl"))" grep -q "^closed" "$WORK/sl"

"${HC[@]}" slowread "$HPORT" /huge.bin --size 16000000 --limit 6 >"$WORK/sr" &
SRPID=$!
GF_PIDS+=("$SRPID")
"${HC[@]}" slowread "$HPORT" /huge.bin --size 16000000 --limit 6 --trickle 4096 >"$WORK/st" &
STPID=$!
GF_PIDS+=("$STPID")
c=$("${CURL[@]}" -o "$WORK/got" -w '%{http_code}' "$URL/big.bin" || true)
check "served beside slow readers" test "$c" = 200
check "beside slow readers: byte-exact" cmp -s "$WORK/got" "$CONTENT/files/big.bin"
wait "$SRPID" || true
wait "$STPID" || true
check "a reader that stops is cut ($(cat "$WORK/sr"))" grep -q "^cut" "$WORK/sr"
check "a reader under the minimum rate is cut ($(cat "$WORK/st"))" grep -q "^cut" "$WORK/st"
# The access log has the body bytes each cut transfer sent: some, not all (on fd, counted from
# the socket, as libmicrohttpd gives no count: at most what the reader received, header and all).
cut_logged() {
    awk -v most="$1" '$3 == "/huge.bin" && $4 == "OK" && $7 == "ERROR" {
        n++; if (!($5 > 0 && $5 < 16000000 && $5 <= most)) bad = 1 }
        END { exit !(n == 2 && !bad) }' "$WORK/access.log"
}
most=16000000
if [ "$GETFILE_TEST_IPC" = fd ]; then
    read -r _ r1 <"$WORK/sr"
    read -r _ r2 <"$WORK/st"
    most=$((r1 > r2 ? r1 : r2))
fi
wait_for 10 cut_logged "$most" || true
check "access log: the cut transfers' bytes, 0 < n <= $most ($(awk '$3 == "/huge.bin" { printf "%s ", $5 }' "$WORK/access.log"))" \
    cut_logged "$most"

if [ "$GETFILE_TEST_IPC" = fd ]; then
    # fd: a file touched while libmicrohttpd sends it is cut at once (not left to complete).
    "${HC[@]}" slowread "$HPORT" /huge.bin --size 16000000 --limit 6 --ready "$WORK/fdb" \
        >"$WORK/sf" &
    SFPID=$!
    GF_PIDS+=("$SFPID")
    check "fd: the transfer to change has begun" wait_for 20 test -e "$WORK/fdb"
    touch "$CONTENT/files/huge.bin"
    wait "$SFPID" || true
    check "fd: a file changed while sent is cut ($(cat "$WORK/sf"))" grep -q "^cut" "$WORK/sf"
    check "fd: the change was seen during the send" \
        grep -q "huge.bin': the file changed while it was sent" "$WORK"/webproxy.*.log
fi

# The GETFILE port still serves with --http.
OUT=$(python3 "$SRC_DIR/tests/integration/proxy_client.py" "$GPORT" /small.txt --timeout 20 || true)
read -r gst glen _ gsha _ <<<"$OUT"
check "GETFILE beside HTTP ($OUT)" \
    test "$gst $glen $gsha" = "OK 1000 $(sha_file "$CONTENT/files/small.txt")"

# SIGTERM with a transfer in flight whose client reads nothing (and -S 30000, so only the stop
# can end it): the grace (-G 1000) passes, the transfer is cut, the proxy exits 0 well before
# the send timeout.
GPORT2=$(free_port)
HPORT2=$(free_port)
spawn PROXY2 "$BIN_DIR/webproxy" -p "$GPORT2" --http "127.0.0.1:$HPORT2" -t 2 -n 2 -z 65536 \
    -S 30000 -G 1000
wait_port "$HPORT2"
"${HC[@]}" slowread "$HPORT2" /huge.bin --size 16000000 --limit 3 --ready "$WORK/begun" \
    >"$WORK/sr2" 2>&1 &
SR2PID=$!
GF_PIDS+=("$SR2PID")
check "the transfer in flight has begun" wait_for 20 test -e "$WORK/begun"
t0=$SECONDS
stop_ok "$PROXY2" TERM "webproxy with an HTTP transfer in flight"
check "it stopped within 8 s of SIGTERM (took $((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 8
wait "$SR2PID" || true
check "the transfer in flight was cut ($(cat "$WORK/sr2"))" grep -q "^cut" "$WORK/sr2"

# ---- origin mode ----------------------------------------------------------------------------
OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
HOPORT=$(free_port)
spawn OPROXY "$BIN_DIR/webproxy" -p "$(free_port)" --http "127.0.0.1:$HOPORT" -t 4 \
    -s "http://127.0.0.1:$OPORT" --low-speed-time 1 -C 3
wait_port "$HOPORT"
OURL=http://127.0.0.1:$HOPORT
c=$("${CURL[@]}" -o "$WORK/got" -w '%{http_code}' "$OURL/ok/2500000" || true)
check "origin: 200 (got $c)" test "$c" = 200
check "origin: byte-exact" test "$(sha_file "$WORK/got")" = "$(python3 "$FAULT" --sha256 2500000)"
read -r st cl extra <<<"$("${HC[@]}" head "$HOPORT" /ok/5000)"
check "origin HEAD: 200 5000, no body (got $st $cl $extra)" test "$st $cl $extra" = "200 5000 0"
check "origin 404: 404" test "$(code "$OURL/status/404")" = 404
check "origin 500: 502" test "$(code "$OURL/status/500")" = 502
check "origin silent: 504" test "$(code "$OURL/stall-headers")" = 504
"${CURL[@]}" -D "$WORK/hv" -o /dev/null "$OURL/validators/1000" || true
check "origin validators passed on: ETag" grep -q '^ETag: "v1000"' "$WORK/hv"
check "origin validators passed on: Last-Modified" \
    grep -q '^Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT' "$WORK/hv"
check "If-None-Match matching: 304" \
    test "$(code "$OURL/validators/1000" -H 'If-None-Match: "x", W/"v1000"')" = 304
check "If-None-Match other: 200" test "$(code "$OURL/validators/1000" -H 'If-None-Match: "x"')" = 200
check "If-Modified-Since same date: 304" \
    test "$(code "$OURL/validators/1000" -H 'If-Modified-Since: Tue, 01 Dec 2026 10:00:00 GMT')" = 304
check "If-Modified-Since earlier: 200" \
    test "$(code "$OURL/validators/1000" -H 'If-Modified-Since: Mon, 30 Nov 2026 10:00:00 GMT')" = 200
check "origin without validators: If-Modified-Since is no 304" \
    test "$(code "$OURL/ok/1000" -H 'If-Modified-Since: Tue, 01 Dec 2099 10:00:00 GMT')" = 200
# A connection of the checks above (the 504's, whose handler waits out the origin) can still
# count against -C for a moment: "an earlier connection was closed" then means the limit was
# already full. Tried again, bounded, until the earlier ones are gone.
for _ in 1 2 3 4 5; do
    st=$("${HC[@]}" idle "$HOPORT" 3 || true)
    [ "$st" = "an earlier connection was closed" ] || break
    sleep 1
done
check "-C 3: a fourth connection from one address is refused ($st)" test "$st" = refused
# Both sources: the cache first, the origin on a miss.
HBPORT=$(free_port)
spawn BPROXY "$BIN_DIR/webproxy" -p "$(free_port)" --http "127.0.0.1:$HBPORT" -t 2 -n 2 -z 65536 \
    -s "http://127.0.0.1:$OPORT"
wait_port "$HBPORT"
"${CURL[@]}" -o "$WORK/got" "http://127.0.0.1:$HBPORT/small.txt" || true
check "both: a cache hit" cmp -s "$WORK/got" "$CONTENT/files/small.txt"
"${CURL[@]}" -o "$WORK/got" "http://127.0.0.1:$HBPORT/ok/7000" || true
check "both: a miss from the origin" test "$(sha_file "$WORK/got")" = "$(python3 "$FAULT" --sha256 7000)"
check "both: at neither, 404" test "$(code "http://127.0.0.1:$HBPORT/status/404")" = 404
stop_ok "$BPROXY" TERM "webproxy (both sources)"

# The origin gone: 502.
stop "$ORIGIN" TERM 10 || true
check "origin down: 502" test "$(code "$OURL/ok/1000")" = 502

# Usage: a bad --http is a usage error (2); a port in use cannot start (3).
rc=0
"$BIN_DIR/webproxy" --http "::1:80" >/dev/null 2>&1 || rc=$?
check "--http with an unbracketed IPv6 address: exit 2 (got $rc)" test "$rc" -eq 2
rc=0
"$BIN_DIR/webproxy" --http 0 >/dev/null 2>&1 || rc=$?
check "--http 0: exit 2 (got $rc)" test "$rc" -eq 2
rc=0
timeout 20 "$BIN_DIR/webproxy" -p "$(free_port)" --http "127.0.0.1:$HPORT" -n 1 >/dev/null 2>&1 || rc=$?
check "--http on a port in use: exit 3 (got $rc)" test "$rc" -eq 3

for pid in "$PROXY" "$OPROXY" "$CACHE"; do
    stop_ok "$pid" TERM "process $pid"
done
assert_no_ipc_left
finish
