# metrics_lib.sh - helpers of the metrics_*.sh tests: scraping a --metrics endpoint and reading
# one sample. Source it after lib.sh and cache_lib.sh.
# shellcheck shell=bash

# scrape PORT FILE: GET /metrics on 127.0.0.1:PORT into FILE (bounded); fails on a non-200.
scrape() {
    curl -sS -f --max-time 10 -o "$2" "http://127.0.0.1:$1/metrics"
}

# sample FILE 'NAME{LABELS}': the value of that sample (exactly as written), "" if absent.
sample() {
    awk -v k="$2" '$1 == k { print $2; exit }' "$1"
}

# metric_is PORT 'NAME{LABELS}' VALUE: a fresh scrape shows VALUE for the sample.
metric_is() {
    local f="$WORK/scrape.$1.tmp"
    scrape "$1" "$f" && [ "$(sample "$f" "$2")" = "$3" ]
}

# expect_metric PORT 'NAME{LABELS}' VALUE: waits (bounded) until the sample reads VALUE, then
# checks it. Counters move when a connection is done, which may be just after the client has
# its last byte, hence the wait; it never accepts a value other than VALUE.
expect_metric() {
    local got
    wait_for 10 metric_is "$1" "$2" "$3" || true
    scrape "$1" "$WORK/last.scrape" || true
    got=$(sample "$WORK/last.scrape" "$2")
    check "$2 on port $1 is $3 (got '$got')" test "$got" = "$3"
}

# http_code METHOD URL [curl options]: the HTTP status (000 when none came).
http_code() {
    local m=$1 u=$2
    shift 2
    curl -s -o /dev/null --max-time 10 -X "$m" -w '%{http_code}' "$@" "$u" || true
}
