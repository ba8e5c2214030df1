#!/usr/bin/env bash
# cache_ipc_mismatch.sh - every pair of a proxy and a cache on different --ipc backends (posix,
# sysv, unix, fd, both ways: 12 pairs), with and without an origin (-s): they do not find each
# other, and the request gets the origin's file when the proxy has one, else a quick ERROR;
# never a hang (docs/ipc.md, "Backends"; issue 14). The path is in the cache's index with other
# bytes than the origin's, so an answer from the cache would show.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

BACKENDS=(posix sysv unix fd)
REQ=/ok/1000 # fault_origin.py: 1000 bytes of gen_body(1000)
add_file "$REQ" 1000
python3 "$SRC_DIR/tests/integration/fault_origin.py" --sha256 1000 >"$WORK/origin.sha"
read -r ORIGIN_SHA _ <"$WORK/origin.sha"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

OPORT=$(free_port)
spawn ORIGIN python3 "$SRC_DIR/tests/integration/fault_origin.py" --port "$OPORT"
wait_port "$OPORT"

# One cache per backend, each its own instance: a proxy of instance cX finds cache X only.
declare -A CACHES=()
for c in "${BACKENDS[@]}"; do
    start_cache pid --instance "c$c" --ipc "$c" -t 2
    CACHES[$c]=$pid
done

for c in "${BACKENDS[@]}"; do
    # The six proxies facing cache c, started together: three backends, with and without -s.
    declare -A PORTS=() PIDS=()
    for p in "${BACKENDS[@]}"; do
        [ "$p" = "$c" ] && continue
        for o in origin none; do
            port=$(free_port)
            args=(--instance "c$c" --ipc "$p" -p "$port" -t 1 -n 1 -z 65536)
            [ "$o" = origin ] && args+=(-s "http://127.0.0.1:$OPORT")
            spawn pid "$BIN_DIR/webproxy" "${args[@]}"
            PORTS[$p.$o]=$port PIDS[$p.$o]=$pid
        done
    done
    for k in "${!PORTS[@]}"; do
        wait_port "${PORTS[$k]}" 30
        p=${k%.*} o=${k#*.}
        out=$WORK/got.$p.$c.$o
        t0=$(now_ms)
        line=$(gfget "${PORTS[$k]}" "$REQ" --timeout 20 --out "$out")
        ms=$(($(now_ms) - t0))
        what="--ipc $p proxy, --ipc $c cache"
        if [ "$o" = origin ]; then
            got=$(sha256sum "$out" 2>/dev/null | cut -d" " -f1 || true)
            check "$what, with an origin: OK (got: $line)" test "$(status_of "$line")" = OK
            check "$what, with an origin: the origin's bytes" test "$got" = "$ORIGIN_SHA"
        else
            check "$what, no origin: ERROR (got: $line)" test "$(status_of "$line")" = ERROR
        fi
        check "$what, $o: within 3 s (took $ms ms)" test "$ms" -lt 3000
    done
    for k in "${!PIDS[@]}"; do
        stop_ok "${PIDS[$k]}" TERM "webproxy --ipc ${k%.*} ($k) facing $c"
    done
    unset PORTS PIDS
done

for c in "${BACKENDS[@]}"; do
    stop_ok "${CACHES[$c]}" TERM "simplecached --ipc $c"
done
stop "$ORIGIN" TERM 10 || true
assert_no_ipc_left
finish
