#!/usr/bin/env bash
# http_front_quick.sh - webproxy --http --ipc fd: a hit from a kept descriptor is served on
# libmicrohttpd's thread, without a worker (http_front.h, "quick"), and the body it promised is
# still watched: a reader that stops is cut, a file changed while sent is cut and logged, a stop
# cuts it after the grace; the access log has what was sent. --http-map-min moves the line
# between sendfile and kept mappings. A descriptor is kept for 1 s (simplecached's KEEP_MS), so
# each case asks for the file once (kept), then at once for the transfer under test; the log line
# of the first quick request proves the transfer under test was the quick one (a fresh proxy per
# case, tried again if the machine was too slow for the 1 s).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$SRC_DIR/tests/integration/cache_lib.sh"

HC=(python3 "$SRC_DIR/tests/integration/http_client.py")
CURL=(curl -sS --max-time 20)
QUICK_LOG="served on libmicrohttpd's threads"
export GETFILE_TEST_IPC=fd

add_file /big.bin 3000000
add_file /huge.bin 16000000
start_cache CACHE -t 2

# proxy VAR HPORT [options]: a webproxy with --http on HPORT, its access log in $WORK/alog.VAR.
proxy() {
    local __v=$1 __pid
    spawn __pid "$BIN_DIR/webproxy" -p "$(free_port)" --http "127.0.0.1:$2" -t 2 -n 2 -z 65536 \
        --access-log "$WORK/alog.$1" "${@:3}"
    wait_port "$2"
    printf -v "$__v" '%s' "$__pid"
}
quick_seen() { grep -q "$QUICK_LOG" "$(logfile_of "$1")"; }

# ---- a kept hit without a worker: the bytes, HEAD and a range --------------------------------
# A fresh proxy, a HEAD (through a worker: it keeps the descriptor, and has no body to outlast
# the 1 s keep on a slow machine) and at once a GET: the first quick request, so the log line
# is the GET's. Tried again with a new proxy if the GET came too late.
for n in 1 2 3 4; do
    HP=$(free_port)
    rm -f "$WORK/alog.P1"
    proxy P1 "$HP"
    URL=http://127.0.0.1:$HP
    "${CURL[@]}" -o /dev/null -I "$URL/big.bin" || true
    "${CURL[@]}" -o "$WORK/got2" "$URL/big.bin" || true
    wait_for 2 quick_seen "$P1" && break
    [ "$n" = 4 ] || stop_ok "$P1" TERM "webproxy (a GET past the keep)"
done
check "GET after a HEAD: byte-exact" cmp -s "$WORK/got2" "$CONTENT/files/big.bin"
check "the GET was served without a worker (log: $QUICK_LOG; tries: $n)" quick_seen "$P1"
gets_hit() { grep -q ' /big\.bin OK 3000000 [0-9.]* HIT$' "$WORK/alog.P1"; }
check "access log: the GET is a hit" wait_for 10 gets_hit
"${CURL[@]}" -o /dev/null "$URL/big.bin" || true
"${CURL[@]}" -o "$WORK/r" -H 'Range: bytes=100000-599999' "$URL/big.bin" || true
check "quick range: the right bytes" \
    cmp -s "$WORK/r" <(tail -c +100001 "$CONTENT/files/big.bin" | head -c 500000)
read -r st cl extra <<<"$("${HC[@]}" head "$HP" /big.bin)"
check "quick HEAD: 200, Content-Length 3000000, no body (got $st $cl $extra)" \
    test "$st $cl $extra" = "200 3000000 0"
stop_ok "$P1" TERM "webproxy (quick hits)"

# ---- the watcher on a quick body -------------------------------------------------------------
# quick_case NAME PROXY_OPTIONS... -- SLOWREAD_OPTIONS...: a fresh proxy, huge.bin kept by one
# GET, then a slow reader of huge.bin started at once (its output in $WORK/NAME.out, its pid in
# SR, the proxy's in QP and its access log in $WORK/alog.QP); tried up to 4 times until that
# reader was the quick request. Returns 1 if it never was.
quick_case() {
    local name=$1 popts=() sopts=() i
    shift
    while [ "$1" != -- ]; do popts+=("$1"); shift; done
    shift
    sopts=("$@")
    for i in 1 2 3 4; do
        QH=$(free_port)
        rm -f "$WORK/alog.QP"
        proxy QP "$QH" "${popts[@]}"
        "${CURL[@]}" -o /dev/null "http://127.0.0.1:$QH/huge.bin" || true
        "${HC[@]}" slowread "$QH" /huge.bin --size 16000000 "${sopts[@]}" >"$WORK/$name.out" 2>&1 &
        SR=$!
        GF_PIDS+=("$SR")
        # The quick line comes before the body's first byte; a worker's transfer never logs it.
        if wait_for 5 quick_seen "$QP"; then
            return 0
        fi
        wait "$SR" || true
        stop "$QP" TERM 20 || true
        log "$name: try $i was not a kept hit (the machine took over 1 s); again"
    done
    return 1
}

# A reader under the minimum rate (4 KiB per 0.2 s against -S 1000 -R 65536: 64 KiB per second
# of waiting): cut by the watcher. It is never idle, so libmicrohttpd's own timeout cannot.
if quick_case stall -S 1000 -R 65536 -- --limit 6 --trickle 4096; then
    wait "$SR" || true
    check "quick: a reader under the minimum rate is cut ($(cat "$WORK/stall.out"))" \
        grep -q "^cut" "$WORK/stall.out"
    read -r _ got <"$WORK/stall.out"
    cut_logged() {
        awk -v most="$1" '$3 == "/huge.bin" && $4 == "OK" && $7 == "ERROR" {
            n++; if (!($5 > 0 && $5 < 16000000 && $5 <= most)) bad = 1 }
            END { exit !(n == 1 && !bad) }' "$WORK/alog.QP"
    }
    check "quick: access log: the cut transfer is an ERROR with 0 < sent <= $got" \
        wait_for 10 cut_logged "${got:-0}"
    stop_ok "$QP" TERM "webproxy (stalled reader)"
else
    check "quick: a kept hit for the stalled reader within 4 tries" false
fi

# SIGTERM with a quick body in flight to a reader that takes nothing (-S 30000: only the stop
# can end it): cut after the grace (-G 1000), exit 0 well before the send timeout.
if quick_case stop -S 30000 -G 1000 -- --limit 4 --ready "$WORK/stop.ready"; then
    check "quick: the transfer in flight has begun" wait_for 20 test -e "$WORK/stop.ready"
    t0=$SECONDS
    stop_ok "$QP" TERM "webproxy with a quick transfer in flight"
    check "quick: stopped within 8 s of SIGTERM (took $((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 8
    wait "$SR" || true
    check "quick: the transfer in flight was cut ($(cat "$WORK/stop.out"))" grep -q "^cut" "$WORK/stop.out"
else
    check "quick: a kept hit for the stop case within 4 tries" false
fi

# A file changed while it is sent: cut at once, logged (last: the file is touched).
if quick_case change -S 30000 -- --limit 6 --ready "$WORK/change.ready"; then
    check "quick: the transfer to change has begun" wait_for 20 test -e "$WORK/change.ready"
    touch "$CONTENT/files/huge.bin"
    wait "$SR" || true
    check "quick: a file changed while sent is cut ($(cat "$WORK/change.out"))" \
        grep -q "^cut" "$WORK/change.out"
    check "quick: the change was seen during the send" \
        grep -q "huge.bin': the file changed while it was sent" "$(logfile_of "$QP")"
    stop_ok "$QP" TERM "webproxy (changed file)"
else
    check "quick: a kept hit for the changed file within 4 tries" false
fi

# ---- --http-map-min ---------------------------------------------------------------------------
HP=$(free_port)
proxy P4 "$HP" --http-map-min 4000000
"${CURL[@]}" -o "$WORK/got" "http://127.0.0.1:$HP/big.bin" || true
check "--http-map-min 4000000: byte-exact" cmp -s "$WORK/got" "$CONTENT/files/big.bin"
check "--http-map-min 4000000: a 3 MB body by sendfile" \
    grep -q "sent from the cache's file descriptors (sendfile)" "$(logfile_of "$P4")"
check "--http-map-min 4000000: not from a kept mapping" \
    bash -c "! grep -q 'kept mappings' '$(logfile_of "$P4")'"
stop_ok "$P4" TERM "webproxy --http-map-min 4000000"
HP=$(free_port)
proxy P5 "$HP"
"${CURL[@]}" -o /dev/null -H 'Range: bytes=0-1048575' "http://127.0.0.1:$HP/big.bin" || true
check "default --http-map-min: a body of 1 MiB from a kept mapping" \
    grep -q "sent from the cache's file descriptors (kept mappings)" "$(logfile_of "$P5")"
stop_ok "$P5" TERM "webproxy (default --http-map-min)"
rc=0
"$BIN_DIR/webproxy" --http-map-min 0 >/dev/null 2>&1 || rc=$?
check "--http-map-min 0: exit 2 (got $rc)" test "$rc" -eq 2

stop_ok "$CACHE" TERM "simplecached"
assert_no_ipc_left
finish
