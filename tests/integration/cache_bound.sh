#!/usr/bin/env bash
# cache_bound.sh - a 16 MiB --store-max under 30 MiB of fills (15 bodies of 2 MiB, one after
# another): sampled every 10 ms, the store directory never holds more than the bound plus the
# one entry in flight; the oldest entries are evicted first, in order; the newest are hits.
# SPDX-License-Identifier: MIT
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

BOUND=$((16 * 1024 * 1024))
SIZE=$((2 * 1024 * 1024))
N=15
SLACK=4096 # an entry's header and path on top of its body
start_origin
start_fill_cache CACHE --store-max $BOUND
CLOG=$(logfile_of "$CACHE")
PPORT=$(free_port)
start_proxy PROXY "$PPORT" 4 4 262144

# The sampler: the largest sum of the store's file sizes it has seen, in $WORK/max.
cat >"$WORK/sampler.py" <<'PY'
import os, sys, time
d, out, peak = sys.argv[1], sys.argv[2], 0
while True:
    total = 0
    for n in os.listdir(d):
        try:
            total += os.stat(os.path.join(d, n)).st_size
        except FileNotFoundError:
            pass
    if total > peak:
        peak = total
        with open(out + ".new", "w") as f:
            f.write("%d\n" % peak)
        os.replace(out + ".new", out)
    time.sleep(0.01)
PY
echo 0 >"$WORK/max"
spawn SAMPLER python3 "$WORK/sampler.py" "$STORE" "$WORK/max"

for ((i = 1; i <= N; i++)); do
    fetch_ok "$PPORT" /ok/$SIZE/b$i $SIZE
done
sleep 0.1
kill "$SAMPLER" 2>/dev/null || true
peak=$(cat "$WORK/max")
echo "store bytes: peak $peak (bound $BOUND, one entry $SIZE)"
total=0
while read -r f; do total=$((total + $(stat -c %s "$f"))); done < <(store_files)
check "after 30 MiB: the store is under the bound ($total <= $BOUND)" test "$total" -le $BOUND
check "never more than the bound plus one entry in flight (peak $peak <= $((BOUND + SIZE + SLACK)))" \
    test "$peak" -le $((BOUND + SIZE + SLACK))
check "the sampler saw the store fill (peak $peak > $((BOUND / 2)))" test "$peak" -gt $((BOUND / 2))
# 7 entries of 2 MiB and a bit fit in 16 MiB: b9..b15 are kept, b1..b8 went, oldest first.
order=$(grep -o "store: evicted '/ok/$SIZE/b[0-9]*'" "$CLOG" | sed 's/.*\/b//; s/.$//' | tr '\n' ' ')
check "evicted oldest first: b1..b8 in order (got: $order)" test "$order" = "1 2 3 4 5 6 7 8 "
for i in 9 15; do
    fetch_ok "$PPORT" /ok/$SIZE/b$i $SIZE
    check "b$i is a hit (got $(attempts /ok/$SIZE/b$i))" test "$(attempts /ok/$SIZE/b$i)" -eq 1
done
fetch_ok "$PPORT" /ok/$SIZE/b1 $SIZE
check "b1 was evicted: fetched again (got $(attempts /ok/$SIZE/b1))" test "$(attempts /ok/$SIZE/b1)" -eq 2

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
