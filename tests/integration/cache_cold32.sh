#!/usr/bin/env bash
# cache_cold32.sh - a cold start: 32 concurrent clients ask a filling cache for the same 10 MiB
# file it does not have. One origin GET; all 32 get every byte, byte-exact; then a hit.
# SPDX-License-Identifier: MIT
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

N=32
SIZE=$((10 * 1024 * 1024))
P=/pause/$SIZE/1000000/cold
start_origin
start_fill_cache CACHE -t 40
CLOG=$(logfile_of "$CACHE")
PPORT=$(free_port)
start_proxy PROXY "$PPORT" $N $N 262144

joined() { grep -c -F "'$P': joined the fill in progress" "$CLOG" || true; }
all_joined() { [ "$(joined)" -ge $((N - 1)) ]; }

# The origin holds the body after its first MB until all 32 requests are at the cache, so the
# start is cold for every one of them.
rm -f "$RELEASE"
t0=$(date +%s.%N)
pids=()
for ((i = 0; i < N; i++)); do
    (gfget "$PPORT" "$P" --out "$WORK/c.$i.out" >"$WORK/c.$i.line") &
    pids+=($!)
done
check "$((N - 1)) requests joined the one fill" wait_for 60 all_joined
touch "$RELEASE"
for i in "${pids[@]}"; do wait "$i" || true; done
t1=$(date +%s.%N)
ok=$(cat "$WORK"/c.*.line | awk '$1 == "OK"' | wc -l)
check "$N clients: all OK (got $ok)" test "$ok" -eq $N
want=$(sha_of $SIZE)
bad=0
for ((i = 0; i < N; i++)); do
    [ "$(sha256sum <"$WORK/c.$i.out" | cut -d' ' -f1)" = "$want" ] || bad=$((bad + 1))
done
check "$N clients: every body byte-exact ($bad wrong)" test "$bad" -eq 0
check "one origin GET (got $(attempts $P))" test "$(attempts $P)" -eq 1
rm -f "$WORK"/c.*.out
echo "cold start: $N x $SIZE bytes in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s (one origin GET)"
fetch_ok "$PPORT" $P $SIZE
check "then a hit (got $(attempts $P))" test "$(attempts $P)" -eq 1

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
