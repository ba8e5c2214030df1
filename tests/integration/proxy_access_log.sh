#!/usr/bin/env bash
# proxy_access_log.sh - webproxy --access-log: one line per request with the cache result that
# each mode can give (cache: HIT, MISS, ERROR; origin: ORIGIN, ERROR; both: HIT, ORIGIN after a
# miss or without a cache, ERROR), the library's INVALID, and SIGUSR1 after renaming the log: a
# new file, no line lost or torn.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

FAULT=$SRC_DIR/tests/integration/fault_origin.py
add_file /a.txt 1234
add_file "/p%41.txt" 77
# TIME CLIENT PATH STATUS BYTES SECONDS RESULT (docs/observability.md)
LINE_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z 127\.0\.0\.1:[0-9]+ [^ ]+ (OK|FILE_NOT_FOUND|ERROR|INVALID|-) [0-9]+ [0-9]+\.[0-9]{6} (HIT|MISS|ORIGIN|ERROR|-)$'
# has_line FILE "PATH STATUS BYTES" RESULT: FILE has a well-formed line with those fields.
has_line() {
    grep -E "$LINE_RE" "$1" 2>/dev/null | grep -qE " $(sed 's/[.]/\\./g' <<<"$2") [0-9]+\.[0-9]{6} $3\$"
}
# expect_line FILE "PATH STATUS BYTES" RESULT
expect_line() { check "access log: $2 $3" wait_for 10 has_line "$@"; }
well_formed() { ! grep -vE "$LINE_RE" "$1"; }

# --- cache mode: HIT, MISS, ERROR (no cache running), INVALID from the library
start_cache CACHE -t 2
PORT=$(free_port)
ALOG=$WORK/access.log
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 4 -n 2 -z 8192 --access-log "$ALOG"
wait_port "$PORT"
expect_get "$PORT" /a.txt OK
expect_line "$ALOG" "/a.txt OK 1234" HIT
expect_get "$PORT" "/p%41.txt" OK
expect_line "$ALOG" "/p%2541.txt OK 77" HIT
expect_get "$PORT" /nope FILE_NOT_FOUND
expect_line "$ALOG" "/nope FILE_NOT_FOUND 0" MISS
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GETFILE PUT /x\r\n\r\n' >&3
reply=$(timeout 10 cat <&3)
exec 3>&-
check "a bad request is answered INVALID (got: $reply)" test "${reply%%$'\r'*}" = "GETFILE INVALID"
expect_line "$ALOG" "- INVALID 0" -

# --- SIGUSR1 after renaming the log: a new file; every line lands whole in one of the two
count() { { cat "$@" 2>/dev/null || true; } | wc -l; }
before=$(count "$ALOG")
mv "$ALOG" "$ALOG.1"
kill -USR1 "$PROXY"
# The reopen comes before the next line: ask (up to 40 times) until a line lands in the new file.
asked=0
ask_until_new() { gfget "$PORT" /a.txt >/dev/null; asked=$((asked + 1)); [ -s "$ALOG" ]; }
check "SIGUSR1 after renaming the log creates a new file" wait_for 2 ask_until_new
# A burst from 4 clients while the log is renamed and reopened again and again.
workload "$WORK/wl" /a.txt /nope "/p%41.txt"
spawn DL bash -c "cd '$WORK' && mkdir -p dl && cd dl && exec '$BIN_DIR/gfclient_download' -s 127.0.0.1 -p $PORT -w ../wl -t 4 -r 300"
for i in 2 3 4 5; do
    mv "$ALOG" "$ALOG.$i"
    kill -USR1 "$PROXY"
    check "a new file after rename $i and SIGUSR1" wait_for 2 ask_until_new
done
check "the client burst ends" wait_for 120 eval "! proc_alive $DL"
rc=0
wait "$DL" || rc=$?
check "gfclient_download succeeded (got $rc)" test "$rc" -eq 0
want=$((before + asked + 300))
all() { count "$ALOG" "$ALOG".[1-5]; }
check "every request has its line across the rotated files ($want)" wait_for 10 eval '[ "$(all)" -eq $want ]'
for f in "$ALOG" "$ALOG".[1-5]; do
    check "every line of $(basename "$f") is whole" well_formed "$f"
done
check "the proxy survived the SIGUSR1s" proc_alive "$PROXY"

# The cache gone: ERROR.
stop_ok "$CACHE" TERM simplecached
expect_get "$PORT" /a.txt ERROR
expect_line "$ALOG" "/a.txt ERROR 0" ERROR
stop_ok "$PROXY" TERM webproxy

# --- origin mode, log on stderr: ORIGIN whatever the origin says, ERROR when it fails
OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT"
wait_port "$OPORT"
PORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 2 -s "http://127.0.0.1:$OPORT" --access-log -
wait_port "$PORT"
PLOG=$(logfile_of "$PROXY")
line=$(gfget "$PORT" /ok/1000)
check "origin OK (got: $line)" test "$(status_of "$line")" = OK
expect_line "$PLOG" "/ok/1000 OK 1000" ORIGIN
line=$(gfget "$PORT" /status/404)
check "origin 404 (got: $line)" test "$(status_of "$line")" = FILE_NOT_FOUND
expect_line "$PLOG" "/status/404 FILE_NOT_FOUND 0" ORIGIN
line=$(gfget "$PORT" /status/500)
check "origin 500 (got: $line)" test "$(status_of "$line")" = ERROR
expect_line "$PLOG" "/status/500 ERROR 0" ORIGIN
line=$(gfget "$PORT" /wrong-length-short/4000)
check "origin short body (got: $line)" test "$(status_of "$line")" = SHORT
expect_line "$PLOG" "/wrong-length-short/4000 OK [0-9]+" ERROR
check "SIGUSR1 with the log on stderr is harmless" eval 'kill -USR1 $PROXY && gfget $PORT /ok/10 >/dev/null'
expect_line "$PLOG" "/ok/10 OK 10" ORIGIN
stop_ok "$PROXY" TERM webproxy

# --- both: HIT from the cache, ORIGIN on a miss
start_cache CACHE -t 2
PORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 2 -n 2 -z 8192 -s "http://127.0.0.1:$OPORT" \
    --access-log "$WORK/both.log"
wait_port "$PORT"
expect_get "$PORT" /a.txt OK
expect_line "$WORK/both.log" "/a.txt OK 1234" HIT
line=$(gfget "$PORT" /ok/500)
check "a miss from the origin (got: $line)" test "$(status_of "$line")" = OK
expect_line "$WORK/both.log" "/ok/500 OK 500" ORIGIN
line=$(gfget "$PORT" /wrong-length-short/3000)
check "a miss the origin breaks off (got: $line)" test "$(status_of "$line")" = SHORT
expect_line "$WORK/both.log" "/wrong-length-short/3000 OK [0-9]+" ERROR
stop_ok "$CACHE" TERM simplecached
line=$(gfget "$PORT" /ok/300)
check "no cache running: the origin (got: $line)" test "$(status_of "$line")" = OK
expect_line "$WORK/both.log" "/ok/300 OK 300" ORIGIN
stop_ok "$PROXY" TERM webproxy
stop "$ORIGIN" TERM 10 || true

# --- bad uses
rc=0
out=$("$BIN_DIR/webproxy" --access-log "$WORK/no/such/dir/log" -p "$(free_port)" 2>&1) || rc=$?
check "an access log that cannot be opened: exit 3 (got $rc: $out)" test "$rc" -eq 3
assert_no_ipc_left
finish
