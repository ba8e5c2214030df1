#!/usr/bin/env bash
# cache_coalesce.sh - concurrent misses for one path make one origin fetch, and every client
# streams from the entry as it grows; a fetch that fails fails every waiter cleanly (ERROR
# before the first bytes, a short transfer after them: never wrong bytes), and the next
# request tries again.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

N=16
SIZE=3000000
start_origin
start_fill_cache CACHE -t 24 --origin-retry-ms 50
CLOG=$(logfile_of "$CACHE")
PPORT=$(free_port)
start_proxy PROXY "$PPORT" 24 24 65536

# joined PATH: requests that joined the fill of PATH in progress (the cache's debug log).
joined() { grep -c -F "'$1': joined the fill in progress" "$CLOG" || true; }
all_joined() { [ "$(joined "$1")" -ge "$2" ]; }

# burst PATH TAG: N concurrent clients for PATH while the origin waits for $RELEASE; once all
# but the first have joined the fill, the origin is released. Lines in $WORK/TAG.*.line.
burst() {
    local path=$1 tag=$2 want_joined=$3 i pids=()
    rm -f "$RELEASE"
    for ((i = 0; i < N; i++)); do
        (gfget "$PPORT" "$path" --out "$WORK/$tag.$i.out" >"$WORK/$tag.$i.line") &
        pids+=($!)
    done
    check "$path: $((N - 1)) requests joined the fill" wait_for 60 all_joined "$path" "$want_joined"
    touch "$RELEASE"
    for i in "${pids[@]}"; do wait "$i" || true; done
}
# count TAG STATUS: clients of the burst TAG that answered STATUS.
count() { cat "$WORK/$1".*.line | awk -v s="$2" '$1 == s' | wc -l; }

burst /pause/$SIZE/100000/co co $((N - 1))
check "$N clients: all OK (got $(count co OK))" test "$(count co OK)" -eq "$N"
want=$(sha_of $SIZE)
bad=0
for ((i = 0; i < N; i++)); do
    [ "$(sha256sum <"$WORK/co.$i.out" | cut -d' ' -f1)" = "$want" ] || bad=$((bad + 1))
done
check "$N clients: every body byte-exact ($bad wrong)" test "$bad" -eq 0
check "$N concurrent misses: one origin request (got $(attempts /pause/$SIZE/100000/co))" \
    test "$(attempts /pause/$SIZE/100000/co)" -eq 1
fetch_ok "$PPORT" /pause/$SIZE/100000/co $SIZE
check "then a hit" test "$(attempts /pause/$SIZE/100000/co)" -eq 1

# A fetch that fails before any byte (503, retried twice): every waiter gets ERROR, and the
# origin saw one fetch (three attempts), not one per client.
burst /pause-status/503/fe fe $((N - 1))
check "failed fetch: all $N waiters ERROR (got $(count fe ERROR))" test "$(count fe ERROR)" -eq "$N"
check "failed fetch: one fetch of three attempts (got $(attempts /pause-status/503/fe))" \
    test "$(attempts /pause-status/503/fe)" -eq 3
touch "$RELEASE"
expect_status "$PPORT" /pause-status/503/fe ERROR
check "the next request tries again" test "$(attempts /pause-status/503/fe)" -eq 6

# A fetch that fails after the first bytes: every waiter gets a short transfer, none a body
# presented as complete.
rm -f "$RELEASE"
pids=()
for ((i = 0; i < N; i++)); do
    (gfget "$PPORT" /pause-reset/1000000/100000/fr --out "$WORK/fr.$i.out" --progress "$WORK/fr.$i.prog" >"$WORK/fr.$i.line") &
    pids+=($!)
done
started() { local i; for ((i = 0; i < N; i++)); do [ -s "$WORK/fr.$i.prog" ] && [ "$(cat "$WORK/fr.$i.prog")" -gt 0 ] || return 1; done; }
check "reset mid-body: all $N clients have bytes first" wait_for 60 started
touch "$RELEASE"
for i in "${pids[@]}"; do wait "$i" || true; done
check "reset mid-body: all $N short (got $(count fr SHORT))" test "$(count fr SHORT)" -eq "$N"
check "reset mid-body: no body saved as complete" test -z "$(ls "$WORK"/fr.*.out 2>/dev/null)"
check "reset mid-body: one origin request" test "$(attempts /pause-reset/1000000/100000/fr)" -eq 1
check "nothing partial kept" test -z "$(store_tmp_files)"

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
