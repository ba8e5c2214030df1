#!/usr/bin/env bash
# demo_cache.sh - the cache mode end to end: generates content, starts simplecached and webproxy
# (cache mode), downloads a workload through the proxy with gfclient_download, verifies every
# byte by sha256, prints a summary, stops both with SIGTERM and shows that no IPC object is left.
#   scripts/demo_cache.sh BUILD_DIR [REQUESTS] [CLIENT_THREADS]
# Run as root it isolates itself in private IPC/mount namespaces (its own /dev/shm and
# /dev/mqueue); otherwise it runs beside everything else and checks only its own objects.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    [ $# -lt 1 ] && exit 2 || exit 0
fi
BUILD=$(cd "$1" && pwd)
REQUESTS=${2:-400}
CLIENTS=${3:-8}
BIN="$BUILD/bin"
for p in simplecached webproxy gfclient_download; do
    [ -x "$BIN/$p" ] || { echo "demo_cache: $BIN/$p not built (cmake --build $1)" >&2; exit 1; }
done

# shellcheck source=scripts/isolate.sh
source "$(dirname "$0")/isolate.sh"
gf_isolate GF_DEMO_ISOLATED 1g "$0" "$@" || true

WORK=$(mktemp -d /tmp/gfdemo.XXXXXX)
cleanup() {
    stop_all KILL
    rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '[demo] %s\n' "$*"; }

say "generating content in $WORK/content"
mkdir -p "$WORK/content/files" "$WORK/download"
cd "$WORK/content"
: >locals.txt
: >workload.txt
add() { # add REQPATH SIZE
    mkdir -p "files$(dirname "$1")"
    head -c "$2" /dev/urandom >"files$1"
    echo "$1 files$1" >>locals.txt
    echo "$1" >>workload.txt
}
ext=(png html png jpg png)
for i in 0 1 2 3 4; do
    add "/courses/ud923/filecorpus/1kb-sample-file-$i.${ext[$i]}" $((1000 + 37 * i))
done
add /courses/ud923/filecorpus/yellowstone.jpg 104244
add /courses/ud923/filecorpus/road.jpg 138177
add /courses/ud923/filecorpus/paraglider.jpg 233174
add /courses/ud923/filecorpus/moranabovejacksonlake.jpg 452231
add /big/1mib.bin $((1024 * 1024))
add /big/10mib.bin $((10 * 1024 * 1024))
add /empty.bin 0
(cd files && find . -type f -exec sha256sum {} +) >"$WORK/manifest"

PORT=$(free_port)
say "starting simplecached -t 4"
start_bg CACHE_PID "$WORK/simplecached.log" "$BIN/simplecached" -c locals.txt -t 4
wait_for 20 grep -q "serving" "$WORK/simplecached.log" ||
    { cat "$WORK/simplecached.log" >&2; echo "demo_cache: simplecached did not start" >&2; exit 1; }
say "starting webproxy -p $PORT -t 8 -n 8 -z 1048576 (cache mode)"
start_bg PROXY_PID "$WORK/webproxy.log" "$BIN/webproxy" -p "$PORT" -t 8 -n 8 -z 1048576
port_up "$PORT" 20 "$PROXY_PID" ||
    { cat "$WORK/webproxy.log" >&2; echo "demo_cache: webproxy did not start" >&2; exit 1; }

say "downloading $REQUESTS requests with $CLIENTS client threads"
t0=$(date +%s%N)
rc=0
(cd "$WORK/download" && "$BIN/gfclient_download" -s 127.0.0.1 -p "$PORT" -t "$CLIENTS" \
    -w "$WORK/content/workload.txt" -r "$REQUESTS") >"$WORK/download.log" 2>&1 || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))

# Bytes requested: the workload cycled over REQUESTS requests.
mapfile -t paths <"$WORK/content/workload.txt"
bytes=0
for ((i = 0; i < REQUESTS; i++)); do
    p=${paths[$((i % ${#paths[@]}))]}
    bytes=$((bytes + $(stat -c %s "$WORK/content/files$p")))
done
verified=0 bad=0
for p in "${paths[@]}"; do
    want=$(awk -v p=".$p" '$2 == p { print $1; exit }' "$WORK/manifest")
    got=$(sha256sum "$WORK/download$p" 2>/dev/null | cut -d' ' -f1 || true)
    if [ -n "$got" ] && [ "$got" = "$want" ]; then
        verified=$((verified + 1))
    else
        bad=$((bad + 1))
        say "MISMATCH or missing: $p"
    fi
done

say "stopping both with SIGTERM"
prc=0 crc=0
stop_pid "$PROXY_PID" || prc=$?
stop_pid "$CACHE_PID" || crc=$?
cpid=$CACHE_PID ppid=$PROXY_PID

if [ -n "${GF_DEMO_ISOLATED:-}" ]; then
    left=$(find /dev/shm /dev/mqueue /run/getfile -mindepth 1 -printf "%f ") # all would be ours
else
    left=$( (ls -A /dev/shm; ls -A /dev/mqueue 2>/dev/null || true) |
        grep -E "^getfile-$(id -u)-(cache\$|$cpid-|$ppid-)" || true)
fi

mbps=$(awk -v b="$bytes" -v ms="$ms" 'BEGIN { printf "%.1f", ms ? b / ms / 1000 : 0 }')
echo
echo "==== summary"
printf '  requests          %d (%d client threads), gfclient_download exit %d\n' "$REQUESTS" "$CLIENTS" "$rc"
printf '  bytes             %d in %d ms (%s MB/s)\n' "$bytes" "$ms" "$mbps"
printf '  files verified    %d of %d by sha256\n' "$verified" "${#paths[@]}"
printf '  exit status       webproxy %d, simplecached %d (after SIGTERM)\n' "$prc" "$crc"
grep -h "stopped:" "$WORK/simplecached.log" | sed 's/^.* I /  simplecached      /' || true
if [ -z "$left" ]; then
    echo "  IPC objects left  none ($( [ -n "${GF_DEMO_ISOLATED:-}" ] && echo "/dev/shm and /dev/mqueue are empty" || echo "no getfile object of these processes"))"
else
    echo "  IPC objects left  $left"
fi
[ "$rc" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$prc" -eq 0 ] && [ "$crc" -eq 0 ] && [ -z "$left" ] ||
    { echo "demo_cache: FAILED"; exit 1; }
echo "demo_cache: OK"
