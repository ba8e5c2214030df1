#!/usr/bin/env bash
# bench_smoke.sh - bench/run.sh in a few seconds, so that it cannot rot: the cache pair with and
# without a gfmon reader, the pair on --ipc fd (a second instance) and the filling cache's miss
# path, 2 repetitions of 1 s at 2 clients.
# Checks that it exits 0 with no failed request, that the second repetition runs the systems
# in reverse order, that every miss sample made its fixed number of requests, and that the
# report has the paired ratios.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"

for p in gfload webproxy simplecached gfmon; do
    [ -x "$BIN_DIR/$p" ] || { log "SKIP: $p is not built (cmake --build --target bench)"; exit 77; }
done
command -v nginx >/dev/null || { log "SKIP: no nginx (scripts/deps.sh bench)"; exit 77; }

# Already isolated by lib.sh: no package install, no build, no second namespace.
export GF_BENCH_ISOLATED=1 GF_BENCH_BUILD_DIR=${BIN_DIR%/bin} GF_BENCH_STAMP=smoke
rc=0
timeout 240 bash "$SRC_DIR/bench/run.sh" --no-build --quick --no-micro --no-rss --clients 2 \
    --duration 1 --reps 2 --miss-requests 16 --systems cache,cache_reader,cache_fd,fill_miss \
    --out "$WORK/res" >"$WORK/run.log" 2>&1 || rc=$?
check "run.sh exits 0 (see $WORK/run.log)" test "$rc" -eq 0
tsv=$WORK/res/smoke.tsv md=$WORK/res/smoke.md
check "every sample has 0 failures" test "$(grep -c 'failures=0 ' "$tsv")" -eq 24
check "rep 1 runs the systems in order" \
    test "$(awk -F'\t' '$1 == 1 && $2 == "1k" { printf "%s ", $4 }' "$tsv")" = "cache cache_reader cache_fd fill_miss "
check "rep 2 runs them in reverse" \
    test "$(awk -F'\t' '$1 == 2 && $2 == "1k" { printf "%s ", $4 }' "$tsv")" = "fill_miss cache_fd cache_reader cache "
# --miss-requests 16 at 1 KiB; 16/8 and 16/64, raised to 8, at 1 and 10 MiB.
check "each miss sample made its fixed number of requests" \
    test "$(awk -F'\t' '$4 == "fill_miss" && $5 ~ ($2 == "1k" ? " requests=16 " : " requests=8 ")' "$tsv" | wc -l)" -eq 6
check "the report pairs reader and no reader over 2 repetitions" \
    grep -Eq '^\| gfmon --json reading .* \| 1 KiB \| 2 \| .* \| 2 \|$' "$md"
check "the report has the --ipc fd column" \
    grep -q 'webproxy cache, --ipc fd' "$md"
check "the report says no failures" grep -q '^\*\*Failures:\*\* none' "$md"
[ "$FAILURES" -eq 0 ] || tail -n 30 "$WORK/run.log" >&2
finish
