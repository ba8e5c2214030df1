#!/usr/bin/env bash
# metrics_prometheus.sh - a real Prometheus server (loopback only, its own storage) scrapes
# simplecached and webproxy started with --metrics; its HTTP API then returns the counters
# and a histogram's count as the requests made them. Prometheus is stopped by PID at the end.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"
source "$(dirname "$0")/metrics_lib.sh"

PROM=$(command -v prometheus) || die "prometheus missing (scripts/deps.sh test installs it)"
add_file /a.bin 5000

PORT=$(free_port)
MP=$(free_port)
MC=$(free_port)
start_cache CACHE -t 2 --metrics "$MC"
spawn PROXY "$BIN_DIR/webproxy" -p "$PORT" -t 4 -n 2 -z 65536 --metrics "$MP"
wait_port "$PORT" 30
wait_port "$MP" 30
wait_port "$MC" 30

for i in 1 2 3; do expect_get "$PORT" /a.bin OK; done
for i in 1 2; do expect_get "$PORT" /nowhere FILE_NOT_FOUND; done
expect_metric "$MP" 'webproxy_requests_total{outcome="hit"}' 3
expect_metric "$MC" 'simplecached_requests_total{outcome="miss"}' 2

PP=$(free_port)
cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: webproxy
    static_configs:
      - targets: ['127.0.0.1:$MP']
  - job_name: simplecached
    static_configs:
      - targets: ['127.0.0.1:$MC']
YML
check "promtool accepts the scrape config" promtool check config "$WORK/prometheus.yml"
mkdir -p "$WORK/tsdb"
spawn PROMPID "$PROM" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PP" --storage.tsdb.retention.time=1h
wait_port "$PP" 60

# query EXPR: the value of the first series Prometheus returns for EXPR now, "" when none.
query() {
    curl -sS -G --max-time 5 "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1" |
        python3 -c '
import json, sys
d = json.load(sys.stdin)
r = d.get("data", {}).get("result", [])
print(r[0]["value"][1] if d.get("status") == "success" and r else "")' 2>/dev/null || true
}

query_is() { [ "$(query "$1")" = "$2" ]; }

# expect_query EXPR VALUE: waits (bounded: 30 s, many scrape intervals) for VALUE.
expect_query() {
    local got end=$((SECONDS + 30))
    while ! query_is "$1" "$2" && [ "$SECONDS" -lt "$end" ]; do
        nap 0.2
    done
    got=$(query "$1")
    check "Prometheus: $1 = $2 (got '$got')" test "$got" = "$2"
}

expect_query 'up{job="webproxy"}' 1
expect_query 'up{job="simplecached"}' 1
expect_query 'webproxy_requests_total{job="webproxy",outcome="hit"}' 3
expect_query 'webproxy_requests_total{job="webproxy",outcome="miss"}' 2
expect_query 'simplecached_requests_total{job="simplecached",outcome="hit"}' 3
expect_query 'simplecached_requests_total{job="simplecached",outcome="miss"}' 2
expect_query 'webproxy_request_duration_seconds_count{job="webproxy"}' 5
expect_query 'webproxy_request_duration_seconds_bucket{job="webproxy",le="+Inf"}' 5
expect_query 'webproxy_sent_bytes_total{job="webproxy"}' 15000
expect_query 'webproxy_response_size_bytes_bucket{job="webproxy",le="4096"}' 2
expect_query 'webproxy_response_size_bytes_bucket{job="webproxy",le="16384"}' 5

# More requests: Prometheus sees the counter move by exactly that many.
for i in 1 2 3 4; do expect_get "$PORT" /a.bin OK; done
expect_query 'webproxy_requests_total{job="webproxy",outcome="hit"}' 7
expect_query 'simplecached_requests_total{job="simplecached",outcome="hit"}' 7

rc=0
stop "$PROMPID" TERM 30 || rc=$?
check "Prometheus stops on SIGTERM (got $rc)" test "$rc" -eq 0
stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
