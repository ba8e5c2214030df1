#!/usr/bin/env bash
# tools_gfserver_e2e.sh - the load clients against the real gfserver_main: byte-exact downloads
# of 0 B .. 64 MiB and the classic file set, a missing path, 32 concurrent client processes,
# gfclient_measure, and a clean server stop.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"

DL=$BIN_DIR/gfclient_download
MEASURE=$BIN_DIR/gfclient_measure
SRVDIR=$WORK/srv
NCLIENTS=32

has_line() { grep -qxF -- "$2" "$1"; }

# The files and the content index (local paths relative to the server's directory).
declare -A SIZE=(
    [/sizes/empty.bin]=0 [/sizes/one.bin]=1 [/sizes/k1.bin]=1024
    [/sizes/m1.bin]=$((1 << 20)) [/sizes/m64.bin]=$((64 << 20))
    [/courses/ud923/filecorpus/1kb-sample-file-0.png]=1024
    [/courses/ud923/filecorpus/1kb-sample-file-1.html]=1024
    [/courses/ud923/filecorpus/yellowstone.jpg]=104244
    [/courses/ud923/filecorpus/road.jpg]=138177
    [/courses/ud923/filecorpus/paraglider.jpg]=233174
    [/courses/ud923/filecorpus/moranabovejacksonlake.jpg]=452231
)
mkdir -p "$SRVDIR"
: >"$SRVDIR/content.txt"
for p in "${!SIZE[@]}"; do
    make_file "$SRVDIR/files$p" "${SIZE[$p]}"
    printf '%s files%s\n' "$p" "$p" >>"$SRVDIR/content.txt"
done

PORT=$(free_port)
cd "$SRVDIR" || exit 1
spawn SRV "$BIN_DIR/gfserver_main" -p "$PORT" -t 8 -m content.txt
cd "$WORK" || exit 1
wait_port "$PORT"

# Every size, plus a path the server does not have, in one run.
printf '%s\n' "${!SIZE[@]}" /sizes/missing.bin >"$WORK/wl-all"
rc=0
# shellcheck disable=SC2086
(mkdir -p "$WORK/all" && cd "$WORK/all" && exec $TEST_WRAPPER "$DL" -p "$PORT" -t 4 \
    -w "$WORK/wl-all") >"$WORK/all.out" 2>"$WORK/all.err" || rc=$?
check "all: exit 0 (got $rc)" test "$rc" -eq 0
for p in "${!SIZE[@]}"; do
    check "all: $p byte-exact" cmp "$SRVDIR/files$p" "$WORK/all${p}"
done
check "all: missing path is FILE_NOT_FOUND" has_line "$WORK/all.out" "not_found: 1"
check "all: no file for the missing path" test ! -e "$WORK/all/sizes/missing.bin"
check "all: ok count" has_line "$WORK/all.out" "ok: ${#SIZE[@]}"
check "all: quiet stderr" test ! -s "$WORK/all.err"

# 32 client processes at once, each fetching the classic set and 1 MiB twice over 2 threads.
grep -v -e m64 -e missing "$WORK/wl-all" >"$WORK/wl-small"
nsmall=$(wc -l <"$WORK/wl-small")
declare -a CL=()
for ((i = 0; i < NCLIENTS; i++)); do
    mkdir -p "$WORK/c$i"
    cd "$WORK/c$i" || exit 1
    spawn CLPID "$DL" -p "$PORT" -t 2 -r $((2 * nsmall)) -w "$WORK/wl-small"
    CL+=("$CLPID")
done
cd "$WORK" || exit 1
bad=0
for ((i = 0; i < NCLIENTS; i++)); do
    rc=0
    wait "${CL[$i]}" || rc=$?
    if [ "$rc" -ne 0 ]; then
        bad=$((bad + 1))
        log "client $i exited $rc: $(tail -n 3 "$(logfile_of "${CL[$i]}")")"
    fi
done
check "32 clients: all exit 0" test "$bad" -eq 0
mism=0
for ((i = 0; i < NCLIENTS; i++)); do
    while read -r p; do
        cmp -s "$SRVDIR/files$p" "$WORK/c$i$p" || mism=$((mism + 1))
    done <"$WORK/wl-small"
done
check "32 clients: every file byte-exact ($mism mismatches)" test "$mism" -eq 0

# gfclient_measure: metrics header and summary against the real server.
rc=0
# shellcheck disable=SC2086
(mkdir -p "$WORK/ms" && cd "$WORK/ms" && exec $TEST_WRAPPER "$MEASURE" -p "$PORT" -t 4 \
    -r 20 -w "$WORK/wl-small") >"$WORK/ms.out" 2>"$WORK/ms.err" || rc=$?
check "measure: exit 0 (got $rc)" test "$rc" -eq 0
check "measure: metrics header" test "$(head -n 1 "$WORK/ms/metrics.txt")" = \
    "#Elapsed Time (secs),Bytes Received,Requests Serviced, Requests Failed, Comment"
check "measure: 20 done lines" test "$(grep -c ',done OK$' "$WORK/ms/metrics.txt")" -eq 20
check "measure: summary" has_line "$WORK/ms.out" "ok: 20"

rc=0
stop "$SRV" TERM 20 || rc=$?
check "server: exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0

finish
