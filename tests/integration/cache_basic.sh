#!/usr/bin/env bash
# cache_basic.sh - simplecached + webproxy in cache mode: index warnings, a second cache refused,
# a single request, a miss (FILE_NOT_FOUND), 12 concurrent requests on 8 segments, a 10 MiB file
# through 8 KiB segments, a 0-byte file; clean SIGTERM of both; nothing left.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

add_classic_set
add_file /empty.bin 0
add_file /big/10mib.bin $((10 * 1024 * 1024))
# Problems the cache must warn about and survive: a malformed line (line number known), and an
# entry whose file is missing (served as a miss).
echo "this-line-has-one-field" >>"$CONTENT/locals.txt"
bad_line=$(wc -l <"$CONTENT/locals.txt")
echo "/ghost.bin files/ghost.bin" >>"$CONTENT/locals.txt"

# Command line: -h prints the usage on stdout and exits 0; bad values exit 2 with a reason.
cli_rc() { local rc=0; "$BIN_DIR/simplecached" "$@" >"$WORK/cli.out" 2>"$WORK/cli.err" || rc=$?; echo "$rc"; }
check "-h exits 0" test "$(cli_rc -h)" -eq 0
check "-h prints the usage on stdout" grep -q "usage: simplecached" "$WORK/cli.out"
for bad in "-t 0" "-t 513" "-t x" "-d 2500001" "-d -1" "-q" "-c"; do
    # shellcheck disable=SC2086 # split on purpose
    check "simplecached $bad exits 2" test "$(cli_rc $bad)" -eq 2
    check "simplecached $bad says why on stderr" grep -q "^simplecached: .*-[tdqc]" "$WORK/cli.err"
done
check "-d 2500000 is accepted" bash -c "cd '$CONTENT' && timeout --preserve-status -s INT 2 '$BIN_DIR/simplecached' -d 2500000 -t 1; test \$? -eq 0"

start_cache CACHE -t 4
clog=$(logfile_of "$CACHE")
check "warning names the bad line" grep -q "locals.txt:$bad_line:" "$clog"
check "warning names the missing file" grep -q "files/ghost.bin" "$clog"

# A second cache beside the running one refuses, names the running pid, touches nothing.
rc=0
(cd "$CONTENT" && timeout 20 "$BIN_DIR/simplecached" -c locals.txt -w 0) >"$WORK/second.log" 2>&1 || rc=$?
check "second simplecached exits 3 (got $rc)" test "$rc" -eq 3
check "second simplecached names the running pid" grep -q "pid $CACHE" "$WORK/second.log"
check "live queue untouched" cache_queue_exists "$CACHE"

PORT=$(free_port)
start_proxy PROXY "$PORT" 12 8 8192
posix_segments && check "8 segments created" test "$(segments_of "$PROXY")" = "$(initial_segments "$PROXY" 8)"

# Case 6: a single request.
expect_get "$PORT" /courses/ud923/filecorpus/road.jpg OK
# Case 7: a miss, and an indexed file that does not exist.
expect_get "$PORT" /not/in/the/index.html FILE_NOT_FOUND
expect_get "$PORT" /ghost.bin FILE_NOT_FOUND
expect_get "$PORT" /empty.bin OK

# Case 8: 12 concurrent requests on 8 segments (12 proxy threads, 12 client threads).
wl="$WORK/classic.txt"
awk '{print $1}' "$CONTENT/locals.txt" | grep filecorpus >"$wl"
check "12 concurrent downloads succeed" download "$WORK/dl8" "$PORT" "$wl" 12 12
check "12 concurrent downloads: bytes match" verify_all "$WORK/dl8" "$wl"

# Case 9: a 10 MiB file through 8 KiB segments, four at once.
workload "$WORK/big.txt" /big/10mib.bin
check "10 MiB downloads succeed" download "$WORK/dl9" "$PORT" "$WORK/big.txt" 4 4
check "10 MiB download: bytes match" verify_all "$WORK/dl9" "$WORK/big.txt"

# Clean transfers never replace a segment.
posix_segments && check "still the initial 8 segments" test "$(segments_of "$PROXY")" = "$(initial_segments "$PROXY" 8)"

stop_ok "$PROXY" TERM webproxy
posix_segments && check "proxy removed its segments" test -z "$(segments_of "$PROXY")"
stop_ok "$CACHE" TERM simplecached
check "cache logged its counters" grep -q "stopped: .* served" "$clog"
assert_no_ipc_left
finish
