#!/usr/bin/env bash
# cache_fill.sh - simplecached --origin: a miss is fetched once and kept (the second request is a
# hit, the origin's log shows one GET), the client's first bytes come while the origin is still
# sending, index entries are never fetched, chunked bodies are spooled then kept, origin
# failures answer ERROR (before the header) or a short transfer (after it) and keep nothing,
# retries with backoff, and --origin without --store-dir is refused.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

add_file /pinned.bin 5000
printf '/pinned-missing files/nothing-here\n' >>"$CONTENT/locals.txt"
start_origin
start_fill_cache CACHE --origin-retry-ms 100
PPORT=$(free_port)
start_proxy PROXY "$PPORT" 8 8 65536

# Fill, then hit: one origin GET.
fetch_ok "$PPORT" /ok/300000/a 300000
fetch_ok "$PPORT" /ok/300000/a 300000
check "fill then hit: one origin request (got $(attempts /ok/300000/a))" \
    test "$(attempts /ok/300000/a)" -eq 1
check "the entry is a file in the store" test "$(store_files | wc -l)" -eq 1
fetch_ok "$PPORT" /ok/0/empty 0
fetch_ok "$PPORT" /ok/0/empty 0
check "an empty body is kept too: one request" test "$(attempts /ok/0/empty)" -eq 1

# Index entries are pinned: served from the index, never fetched, even when their file is gone.
expect_get "$PPORT" /pinned.bin OK
expect_status "$PPORT" /pinned-missing FILE_NOT_FOUND
check "index entries never reach the origin" test "$(attempts /pinned.bin)$(attempts /pinned-missing)" = 00

# The first bytes reach the client while the origin is still sending: the origin sends
# 500000 of 2000000 bytes and waits for $RELEASE; the client must hold bytes before that.
rm -f "$RELEASE"
PROG=$WORK/progress
rm -f "$PROG"
(gfget "$PPORT" /pause/2000000/500000/p --out "$WORK/p.out" --progress "$PROG" >"$WORK/p.line") &
CLIENT=$!
got_bytes() { [ -s "$PROG" ] && [ "$(cat "$PROG")" -gt 0 ]; }
check "first bytes while the origin is paused mid-body" wait_for 30 got_bytes
check "... and the origin has not finished (no release yet)" test ! -e "$RELEASE"
touch "$RELEASE"
wait "$CLIENT" || true
check "paused body: OK (got $(cat "$WORK/p.line"))" test "$(status_of "$(cat "$WORK/p.line")")" = OK
check "paused body: the origin's bytes" \
    test "$(sha256sum <"$WORK/p.out" | cut -d' ' -f1)" = "$(sha_of 2000000)"
fetch_ok "$PPORT" /pause/2000000/500000/p 2000000
check "paused body then hit: one origin request" test "$(attempts /pause/2000000/500000/p)" -eq 1

# No Content-Length: spooled whole, announced with its length, kept.
fetch_ok "$PPORT" /chunked/200000/c 200000
fetch_ok "$PPORT" /chunked/200000/c 200000
check "chunked: one origin request" test "$(attempts /chunked/200000/c)" -eq 1

# 4xx: FILE_NOT_FOUND, asked once per request (no retry), nothing kept.
expect_status "$PPORT" /status/404/n FILE_NOT_FOUND
check "404: one origin request, no retry" test "$(attempts /status/404/n)" -eq 1
expect_status "$PPORT" /status/404/n FILE_NOT_FOUND
check "404 is not kept: asked again" test "$(attempts /status/404/n)" -eq 2

# Retry with backoff: two 503s then 200 fills on the third attempt.
fetch_ok "$PPORT" /flaky/2/5000/r 5000
check "two 503s then 200: three attempts" test "$(attempts /flaky/2/5000/r)" -eq 3
# The gaps grow: with --origin-retry-ms 100 the first pause is 50..100 ms, the second 100..200
# (equal jitter); the origin's log has the attempts' monotonic times. Lower bounds only: load
# can lengthen a gap, never shorten it.
read -r g1 g2 < <(awk '$2 == "/flaky/2/5000/r" { t[n++] = $1 } END { printf "%d %d\n", (t[1] - t[0]) * 1000, (t[2] - t[1]) * 1000 }' "$OLOG")
echo "retry gaps: $g1 ms, $g2 ms"
check "backoff: first gap >= 50 ms (got $g1)" test "$g1" -ge 48
check "backoff: second gap >= 100 ms, the doubled base (got $g2)" test "$g2" -ge 98
fetch_ok "$PPORT" /flaky/2/5000/r 5000
check "... then kept" test "$(attempts /flaky/2/5000/r)" -eq 3

# A failure before the header (503 every time): ERROR after 1 + 2 retries; the next request
# tries again.
expect_status "$PPORT" /flaky/9/5000/e ERROR
check "always 503: three attempts" test "$(attempts /flaky/9/5000/e)" -eq 3
expect_status "$PPORT" /flaky/9/5000/e ERROR
check "... and the next request tries again" test "$(attempts /flaky/9/5000/e)" -eq 6

# A failure after the first bytes went out: a short transfer, no retry, nothing partial kept.
# The origin sends 100000 of 400000 bytes, waits until the client has some, then resets.
short_after_bytes() {
    rm -f "$RELEASE" "$PROG"
    (gfget "$PPORT" /pause-reset/400000/100000/s --progress "$PROG" >"$WORK/s.line") &
    CLIENT=$!
    check "reset mid-body: the client has bytes first" wait_for 30 got_bytes
    touch "$RELEASE"
    wait "$CLIENT" || true
    check "reset mid-body: SHORT (got $(cat "$WORK/s.line"))" \
        test "$(status_of "$(cat "$WORK/s.line")")" = SHORT
}
short_after_bytes
check "reset mid-body: one attempt (no retry after bytes went out)" \
    test "$(attempts /pause-reset/400000/100000/s)" -eq 1
short_after_bytes
check "... nothing kept: the next request fetches again" \
    test "$(attempts /pause-reset/400000/100000/s)" -eq 2
check "no temporary file left" test -z "$(store_tmp_files)"

# The live figures (gfmon): one origin fetch per fill started, and the retries made.
CLOG=$(logfile_of "$CACHE")
fills=$(grep -c "miss; fetching it from the origin" "$CLOG")
check "live figures: $fills origin fetches (got $(cache_figure origin_fetches))" \
    test "$(cache_figure origin_fetches)" -eq "$fills"
check "live figures: 6 retries (got $(cache_figure retries))" test "$(cache_figure retries)" -eq 6
check "live figures: fills counted (got $(cache_figure requests.fill))" test "$(cache_figure requests.fill)" -gt 0
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
check "the cache logged its fills" grep -q "fills (.* kept" "$CLOG"

# --origin without --store-dir: a usage error.
rc=0
"$BIN_DIR/simplecached" --origin "$OURL" >"$WORK/usage.out" 2>&1 || rc=$?
check "--origin without --store-dir exits 2 (got $rc)" test "$rc" -eq 2
check "... naming it" grep -q -- "--origin needs --store-dir" "$WORK/usage.out"
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
