#!/usr/bin/env bash
# proxy_args.sh - webproxy's command line: -h, and bad values exit 2 with a one-line reason and
# a pointer to --help.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

WP=$BIN_DIR/webproxy

# expect_usage_error WHAT PATTERN ARGS...: exit status 2, PATTERN in the first stderr line,
# "Try 'webproxy --help'" after it and nothing more, nothing on stdout.
expect_usage_error() {
    local what=$1 pattern=$2 rc=0
    shift 2
    timeout 10 "$WP" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    check "$what: exit status 2 (got $rc)" test "$rc" -eq 2
    check "$what: reason '$pattern' on stderr" grep -q -- "$pattern" <(head -n 1 "$WORK/err")
    check "$what: 'Try --help' follows the reason" \
        test "$(sed -n 2p "$WORK/err")" = "Try 'webproxy --help' for more information."
    check "$what: two lines on stderr" test "$(wc -l <"$WORK/err")" -eq 2
    check "$what: nothing on stdout" test ! -s "$WORK/out"
}

rc=0
timeout 10 "$WP" -h >"$WORK/out" 2>"$WORK/err" || rc=$?
check "-h exits 0 (got $rc)" test "$rc" -eq 0
check "-h prints usage on stdout" grep -q '^usage: webproxy' "$WORK/out"
for opt in -p -t -s -n -z --port --threads --origin --segments --segment-size --connect-timeout \
    --low-speed-time --spool-max --spool-dir --help --version; do
    check "-h documents $opt" grep -qE -- " ${opt}[ ,]" "$WORK/out"
done
check "-h says nothing on stderr" test ! -s "$WORK/err"

expect_usage_error "no scheme" "-s: '127.0.0.1:8080': " -s 127.0.0.1:8080
expect_usage_error "ftp scheme" "http:// or https://" -s ftp://127.0.0.1/x
expect_usage_error "no host" "-s: 'http://': " -s http://
expect_usage_error "query in base" "query" -s 'http://127.0.0.1/x?a=1'
expect_usage_error "fragment in base" "fragment" -s 'http://127.0.0.1/x#f'
expect_usage_error "bad port in URL" "-s: " -s http://127.0.0.1:70000/
expect_usage_error "empty URL" "-s: " -s ''
expect_usage_error "port 0" "-p: '0'" -p 0 -s http://127.0.0.1:1
expect_usage_error "port 70000" "-p: '70000'" -p 70000 -s http://127.0.0.1:1
expect_usage_error "port not a number" "-p: 'x'" -p x -s http://127.0.0.1:1
expect_usage_error "0 threads" "-t: '0'" -t 0 -s http://127.0.0.1:1
expect_usage_error "too many threads" "-t: '100000'" -t 100000 -s http://127.0.0.1:1
expect_usage_error "0 segments" "-n: '0'" -n 0
expect_usage_error "tiny segments" "-z: '100'" -z 100
expect_usage_error "size classes with -n" "--segments SIZE:COUNT sets the segments: not with -n or -z" --segments 8K:4 -n 4
expect_usage_error "size classes with -z" "not with -n or -z" -z 4096 --segments 8K:4,1M:1
expect_usage_error "bad size class" "--segments: '8K:0': a COUNT" --segments 8K:0
expect_usage_error "bad connect timeout" "--connect-timeout: '0'" -s http://127.0.0.1:1 --connect-timeout 0
expect_usage_error "bad low-speed time" "--low-speed-time: 'x'" -s http://127.0.0.1:1 --low-speed-time x
expect_usage_error "bad spool dir" "--spool-dir: '/nonexistent/x'" -s http://127.0.0.1:1 --spool-dir /nonexistent/x
expect_usage_error "missing value" "-s needs a value" -s
expect_usage_error "unknown option" "unknown option -x" -x
expect_usage_error "unknown long option" "unknown option --bogus" --bogus
expect_usage_error "long option without value" "--port needs a value" --port
expect_usage_error "bad long port" "-p: 'x'" --port x -s http://127.0.0.1:1
expect_usage_error "bad long segment size" "-z: '1'" --segment-size 1
expect_usage_error "stray argument" "unexpected argument 'extra'" -s http://127.0.0.1:1 extra

finish
