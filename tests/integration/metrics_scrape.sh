#!/usr/bin/env bash
# metrics_scrape.sh - simplecached and webproxy with --metrics: the page passes `promtool check
# metrics`, its counters and histograms move by exactly the requests made (hits, misses; an
# invalid request and port probes are no request), other paths get 404 and other methods 405,
# a port alone binds 127.0.0.1, the endpoint's limits (connections, header size, idle timeout)
# hold without disturbing the daemons, an IPv6 address in brackets works, a metrics port in use
# exits 3, bad values exit 2, SIGTERM/SIGINT stop both cleanly and nothing is left.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"
source "$(dirname "$0")/metrics_lib.sh"

command -v promtool >/dev/null || die "promtool missing (scripts/deps.sh test installs prometheus)"
add_file /a.bin 1000
add_file /b.bin 70000

# Bad values are usage errors, for both daemons.
for prog in webproxy simplecached; do
    for bad in x 0 65536 "::1:80" "localhost:9100" "1.2.3.4:" "[::1]"; do
        rc=0
        "$BIN_DIR/$prog" --metrics "$bad" >/dev/null 2>"$WORK/bad.err" || rc=$?
        check "$prog --metrics '$bad' exits 2 (got $rc)" test "$rc" -eq 2
        check "$prog --metrics '$bad' says why" grep -qF "$prog: --metrics: '$bad'" "$WORK/bad.err"
    done
    check "$prog --help documents --metrics" bash -c \
        "'$BIN_DIR/$prog' --help | grep -q -- '--metrics \[ADDR:\]PORT'"
done

PORT=$(free_port)
MP=$(free_port)
MC=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 4 -n 4 -z 65536 --metrics "$MP"
wait_port "$PORT" 30
wait_port "$MP" 30

# A metrics port in use: simplecached says so and exits 3, leaving no queue behind.
rc=0
(cd "$CONTENT" && timeout 30 "$BIN_DIR/simplecached" -c locals.txt --metrics "$MP") \
    >"$WORK/taken.log" 2>&1 || rc=$?
check "simplecached with its metrics port in use exits 3 (got $rc)" test "$rc" -eq 3
check "simplecached names the metrics port in use" \
    grep -q "cannot serve metrics on 127.0.0.1 port $MP: Address already in use" "$WORK/taken.log"
check "simplecached left no queue" test -z "$(ls -A /dev/mqueue)"

start_cache CACHE -t 2 --metrics "$MC"
wait_port "$MC" 30

# And webproxy the same (its own port is free).
rc=0
timeout 30 "$BIN_DIR/webproxy" -p "$(free_port)" -n 1 --metrics "127.0.0.1:$MC" \
    >"$WORK/taken2.log" 2>&1 || rc=$?
check "webproxy with its metrics port in use exits 3 (got $rc)" test "$rc" -eq 3
check "webproxy names the metrics port in use" \
    grep -q "cannot serve metrics on 127.0.0.1 port $MC: Address already in use" "$WORK/taken2.log"

# A port alone listens on loopback only.
for p in "$MP" "$MC"; do
    check "metrics port $p listens on 127.0.0.1 only" \
        test "$(ss -Hltn "sport = :$p" | awk '{print $4}')" = "127.0.0.1:$p"
done

# Before any request: every counter at zero, and the pages pass promtool.
for p in "$MP" "$MC"; do
    check "scrape of port $p" scrape "$p" "$WORK/m0.$p"
    check "promtool accepts the page of port $p" promtool check metrics <"$WORK/m0.$p"
done
check "content type is the text format 0.0.4" bash -c "curl -sS --max-time 10 -D - -o /dev/null \
    http://127.0.0.1:$MP/metrics | grep -qi '^content-type: text/plain; version=0.0.4'"
check "webproxy hit counter starts at 0" test "$(sample "$WORK/m0.$MP" 'webproxy_requests_total{outcome="hit"}')" = 0
check "simplecached hit counter starts at 0" test "$(sample "$WORK/m0.$MC" 'simplecached_requests_total{outcome="hit"}')" = 0
check "webproxy page has HELP and TYPE for its counter" grep -q '^# TYPE webproxy_requests_total counter$' "$WORK/m0.$MP"
check "webproxy page has a duration histogram" grep -q '^# TYPE webproxy_request_duration_seconds histogram$' "$WORK/m0.$MP"

# 5 hits (3 + 2), 4 misses, 1 malformed request.
for i in 1 2 3; do expect_get "$PORT" /a.bin OK; done
for i in 1 2; do expect_get "$PORT" /b.bin OK; done
for i in 1 2 3 4; do expect_get "$PORT" "/missing/$i" FILE_NOT_FOUND; done
python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GETFILE FETCH nothing\r\n\r\n")
while s.recv(4096):
    pass
PY

expect_metric "$MP" 'webproxy_requests_total{outcome="hit"}' 5
expect_metric "$MP" 'webproxy_requests_total{outcome="miss"}' 4
expect_metric "$MP" 'webproxy_requests_total{outcome="error"}' 0
expect_metric "$MP" 'webproxy_requests_total{outcome="cancelled"}' 0
expect_metric "$MP" 'webproxy_request_duration_seconds_count' 9
expect_metric "$MC" 'simplecached_requests_total{outcome="hit"}' 5
expect_metric "$MC" 'simplecached_requests_total{outcome="miss"}' 4
expect_metric "$MC" 'simplecached_requests_total{outcome="error"}' 0

scrape "$MP" "$WORK/m1.p"
scrape "$MC" "$WORK/m1.c"
check "promtool accepts webproxy's page after requests" promtool check metrics <"$WORK/m1.p"
check "promtool accepts simplecached's page after requests" promtool check metrics <"$WORK/m1.c"
s() { sample "$WORK/m1.p" "$1"; }
c() { sample "$WORK/m1.c" "$1"; }
check "webproxy sent 3 x 1000 + 2 x 70000 bytes" test "$(s 'webproxy_sent_bytes_total')" = 143000
check "simplecached sent as many into the segments" test "$(c 'simplecached_sent_bytes_total')" = 143000
check "durations: +Inf bucket 9" test "$(s 'webproxy_request_duration_seconds_bucket{le="+Inf"}')" = 9
check "sizes: 7 of at most 1 KiB (3 hits, 4 misses)" test "$(s 'webproxy_response_size_bytes_bucket{le="1024"}')" = 7
check "sizes: still 7 at 64 KiB (cumulative)" test "$(s 'webproxy_response_size_bytes_bucket{le="65536"}')" = 7
check "sizes: 9 at 256 KiB" test "$(s 'webproxy_response_size_bytes_bucket{le="262144"}')" = 9
check "sizes: _count 9" test "$(s 'webproxy_response_size_bytes_count')" = 9
check "sizes: _sum 143000" test "$(s 'webproxy_response_size_bytes_sum')" = 143000
check "simplecached sizes: 2 above 64 KiB" test "$(c 'simplecached_response_size_bytes_bucket{le="65536"}')" = 7
check "simplecached durations: _count 9" test "$(c 'simplecached_request_duration_seconds_count')" = 9
check "segments all free again" test "$(s 'webproxy_segments{state="free"}')" = 4
check "no segment in use" test "$(s 'webproxy_segments{state="in_use"}')" = 0
check "workers all free again" test "$(c 'simplecached_workers{state="free"}')" = 2
check "index entries" test "$(c 'simplecached_store_entries')" = 2
check "webproxy has no cache-only figures" bash -c "! grep -q '^webproxy_queue_depth' '$WORK/m1.p'"
# Buckets never decrease along le, and end at _count.
for f in "$WORK/m1.p" "$WORK/m1.c"; do
    check "duration buckets are cumulative in $(basename "$f")" awk '
        /_request_duration_seconds_bucket/ { if ($2 + 0 < prev) bad = 1; prev = $2 + 0 }
        /_request_duration_seconds_count/ { if ($2 + 0 != prev) bad = 1 }
        END { exit bad }' "$f"
done
check "uptime is a positive gauge" awk '$1 == "simplecached_uptime_seconds" { ok = ($2 > 0) } END { exit !ok }' "$WORK/m1.c"

# Other paths 404, other methods 405 (with Allow), HEAD 200.
for p in "$MP" "$MC"; do
    u="http://127.0.0.1:$p"
    check "GET / on $p is 404" test "$(http_code GET "$u/")" = 404
    check "GET /metrics/x on $p is 404" test "$(http_code GET "$u/metrics/x")" = 404
    check "POST /metrics on $p is 405" test "$(http_code POST "$u/metrics" -d x=1)" = 405
    check "DELETE /metrics on $p is 405" test "$(http_code DELETE "$u/metrics")" = 405
    check "HEAD /metrics on $p is 200" test "$(http_code HEAD "$u/metrics" -I)" = 200
    check "GET /metrics?x=1 on $p is 200" test "$(http_code GET "$u/metrics?x=1")" = 200
done
check "405 names the allowed methods" bash -c "curl -sS --max-time 10 -X PUT -D - -o /dev/null \
    http://127.0.0.1:$MP/metrics | grep -qi '^allow: GET, HEAD'"

# Bounded: a request header over the connection's memory is refused, idle connections past the
# per-address limit are closed at once, and meanwhile the daemons serve and the endpoint
# answers again once they are gone.
big=$(head -c 40000 /dev/zero | tr '\0' a)
code=$(http_code GET "http://127.0.0.1:$MP/metrics" -H "X-Big: $big")
check "a 40 KB request header is refused with 431 (got $code)" test "$code" = 431
python3 - "$MP" "$PORT" >"$WORK/limits.out" 2>&1 <<'PY' || true
import socket, subprocess, sys, time
mport, gport = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", mport), timeout=10) for _ in range(8)]
# Wait (bounded) until the server's thread has accepted all eight: the listener's accept queue
# (Recv-Q of the listening socket in ss) is empty.
end = time.monotonic() + 20
while time.monotonic() < end:
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % mport], capture_output=True,
                         text=True).stdout.split()
    if out and out[1] == "0":
        break
    time.sleep(0.05)
else:
    print("accept queue never emptied")
extra = socket.create_connection(("127.0.0.1", mport), timeout=10)
extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    got = extra.recv(4096)
except ConnectionResetError:
    got = b""
print("ninth:", "closed" if got == b"" else got.split(b"\r\n")[0].decode())
g = socket.create_connection(("127.0.0.1", gport), timeout=10)
g.sendall(b"GETFILE GET /a.bin\r\n\r\n")
data = b""
while True:
    d = g.recv(65536)
    if not d:
        break
    data += d
print("getfile:", data.split(b"\r\n")[0].decode())
for s in held:
    s.close()
PY
check "a ninth connection from one address is closed unanswered" grep -q "^ninth: closed" "$WORK/limits.out"
check "webproxy serves while the endpoint is full" grep -q "^getfile: GETFILE OK 1000" "$WORK/limits.out"
check "the endpoint answers again" wait_for 10 scrape "$MP" "$WORK/m2.p"
# A connection that sends nothing is closed by the server after its idle timeout (10 s); the
# bound here is only how long the test waits for that.
python3 - "$MP" >"$WORK/idle.out" 2>&1 <<'PY' || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
try:
    print("idle:", "closed" if s.recv(1) == b"" else "data")
except socket.timeout:
    print("idle: still open after 30 s")
except ConnectionResetError:
    print("idle: closed")
PY
check "an idle connection is closed by the server ($(cat "$WORK/idle.out"))" grep -q "^idle: closed" "$WORK/idle.out"
expect_metric "$MP" 'webproxy_requests_total{outcome="hit"}' 6

# An IPv6 address in brackets (when this machine has ::1).
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    P6=$(free_port)
    spawn PROXY6 "$BIN_DIR/webproxy" -p "$(free_port)" -n 1 --metrics "[::1]:$P6"
    check "webproxy --metrics [::1]:PORT answers on ::1" wait_for 30 bash -c \
        "curl -sS -f --max-time 5 -o '$WORK/m6' 'http://[::1]:$P6/metrics'"
    check "its page passes promtool" promtool check metrics <"$WORK/m6"
    check "its log names the URL" grep -q "metrics at http://\[::1\]:$P6/metrics" "$(logfile_of "$PROXY6")"
    stop_ok "$PROXY6" TERM "webproxy on ::1"
else
    log "no IPv6 loopback here: the [::1] case is not run"
fi

# Clean stop by either signal: exit 0, and the metrics port is closed.
stop_ok "$PROXY" INT webproxy
stop_ok "$CACHE" TERM simplecached
for p in "$MP" "$MC"; do
    check "metrics port $p closed after the stop" test "$(http_code GET "http://127.0.0.1:$p/metrics")" = 000
done
assert_no_ipc_left
finish
