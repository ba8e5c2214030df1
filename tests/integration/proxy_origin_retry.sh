#!/usr/bin/env bash
# proxy_origin_retry.sh - origin mode retries a fetch that failed before anything was answered
# (5xx, reset) with growing pauses, at most --origin-retries times and within
# --origin-retry-budget; never a 4xx, never once the client had the header. The origin's log
# (fault_origin.py --log) is the count of attempts.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENT=(python3 "$SRC_DIR/tests/integration/proxy_client.py")
FAULT=$SRC_DIR/tests/integration/fault_origin.py
OLOG=$WORK/origin.log
: >"$OLOG"

# get PORT PATH: one request; sets RC (0 OK, 3 FILE_NOT_FOUND, 4 ERROR, 1 short) and OUT.
get() {
    RC=0
    OUT=$("${CLIENT[@]}" "$1" "$2" --timeout 30) || RC=$?
}
# attempts PATH: requests the origin received for exactly PATH.
attempts() { awk -v p="$1" '$2 == p' "$OLOG" | wc -l; }
# gaps_ok PATH MIN_MS...: the pauses between the attempts for PATH are at least these.
gaps_ok() {
    local p=$1
    shift
    awk -v p="$p" -v mins="$*" 'BEGIN { n = split(mins, m, " ") }
        $2 == p { t[++k] = $1 }
        END { if (k != n + 1) exit 1
              for (i = 1; i <= n; i++) { g = (t[i + 1] - t[i]) * 1000
                  printf "gap %d: %.0f ms (at least %d)\n", i, g, m[i]; if (g < m[i]) exit 1 } }' "$OLOG"
}

OPORT=$(free_port)
spawn ORIGIN python3 "$FAULT" --port "$OPORT" --log "$OLOG"
wait_port "$OPORT"
PPORT=$(free_port)
# Pauses of 100..200 ms, then 200..400 ms.
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t 4 -s "http://127.0.0.1:$OPORT" \
    --origin-retries 2 --origin-retry-ms 200 -G 1000
wait_port "$PPORT"

# Two 503s, then 200: the third attempt answers, after growing pauses.
get "$PPORT" /flaky/2/5000/a
check "two 503s then 200: OK (got $RC: $OUT)" test "$RC" -eq 0
check "two 503s then 200: three attempts (got $(attempts /flaky/2/5000/a))" \
    test "$(attempts /flaky/2/5000/a)" -eq 3
check "pauses of at least 100 then 200 ms" gaps_ok /flaky/2/5000/a 100 200

# A connection reset before any answer is retried too.
# Two: libcurl itself reconnects once when a kept connection dies before an answer.
get "$PPORT" /flaky-reset/2/5000/b
check "two resets then 200: OK (got $RC: $OUT)" test "$RC" -eq 0
check "two resets then 200: three attempts" test "$(attempts /flaky-reset/2/5000/b)" -eq 3

# Bounded in count: three 503s are one more than two retries cure.
get "$PPORT" /flaky/3/5000/c
check "three 503s, two retries: ERROR (got $RC: $OUT)" test "$RC" -eq 4
check "three 503s: exactly three attempts" test "$(attempts /flaky/3/5000/c)" -eq 3

# Never for a 4xx.
get "$PPORT" /status/404/d
check "404: FILE_NOT_FOUND (got $RC: $OUT)" test "$RC" -eq 3
check "404: one attempt" test "$(attempts /status/404/d)" -eq 1

# Never once the client had the header: the reset mid-body ends the transfer short.
get "$PPORT" /close-mid-body/400000/e
check "reset mid-body: short transfer (got $RC: $OUT)" test "$RC" -eq 1
check "reset mid-body: one attempt" test "$(attempts /close-mid-body/400000/e)" -eq 1
stop_rc=0
stop "$PROXY" TERM 20 || stop_rc=$?
check "proxy exits 0 (got $stop_rc)" test "$stop_rc" -eq 0
check "the proxy logged its retries" grep -q "retry 2 of 2" "$(logfile_of "$PROXY")"

# Bounded in time: a first pause of at least 500 ms does not fit in a 50 ms budget.
spawn PROXY2 "$BIN_DIR/webproxy" -p "$PPORT" -t 2 -s "http://127.0.0.1:$OPORT" \
    --origin-retries 5 --origin-retry-ms 1000 --origin-retry-budget 50 -G 1000
wait_port "$PPORT"
get "$PPORT" /flaky/1/5000/f
check "budget too small for a pause: ERROR (got $RC: $OUT)" test "$RC" -eq 4
check "budget too small: one attempt" test "$(attempts /flaky/1/5000/f)" -eq 1
stop "$PROXY2" TERM 20 || true

# --origin-retries 0: none at all.
spawn PROXY3 "$BIN_DIR/webproxy" -p "$PPORT" -t 2 -s "http://127.0.0.1:$OPORT" \
    --origin-retries 0 -G 1000
wait_port "$PPORT"
get "$PPORT" /flaky/1/5000/g
check "--origin-retries 0: ERROR (got $RC: $OUT)" test "$RC" -eq 4
check "--origin-retries 0: one attempt" test "$(attempts /flaky/1/5000/g)" -eq 1
stop "$PROXY3" TERM 20 || true
stop "$ORIGIN" TERM 5 || true
finish
