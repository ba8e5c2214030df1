#!/usr/bin/env bash
# cache_classes.sh - webproxy --segments SIZE:COUNT,...: the classes are refused with -n/-z
# (exit 2) and shown by gfmon --json; a first transfer of a path (size unknown) takes the
# largest class, the next one of a small file the small class (seen IN_USE in gfmon --json while
# the cache's -d delay holds the lookup); a mixed workload (small, 1 MiB, 10 MiB files) through
# the classes is byte-exact; clean stop, nothing left.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

GFMON=$BIN_DIR/gfmon
WP=$BIN_DIR/webproxy
for i in $(seq 1 16); do add_file "/small/$i.txt" $((500 + 97 * i)); done
add_file /med.bin 30000
add_file /mid/1.bin $((1024 * 1024))
add_file /mid/2.bin $((1024 * 1024))
add_file /big/10.bin $((10 * 1024 * 1024))

# --- command line ---------------------------------------------------------------------------
usage_rc() {
    local rc=0
    timeout 10 "$WP" "$@" >"$WORK/cli.out" 2>"$WORK/cli.err" || rc=$?
    echo "$rc"
}
for bad in "--segments 8K:4 -n 4" "-z 8192 --segments 8K:4" "--segments 8K:4 --segments 4 " \
    "--segments 8K" "--segments 100:4" "--segments 8K:0" "--segments 8K:1,8K:2" "--segments 8Q:1"; do
    # shellcheck disable=SC2086 # the words are separate arguments
    check "webproxy $bad: exit 2" test "$(usage_rc $bad)" -eq 2
    check "webproxy $bad: says why, then Try --help" \
        test "$(sed -n 2p "$WORK/cli.err")" = "Try 'webproxy --help' for more information."
done
check "the mix is named" grep -q "not with -n or -z" <(usage_rc --segments 8K:4 -n 4 >/dev/null; cat "$WORK/cli.err")
"$WP" --help >"$WORK/help.out"
check "--help documents --segments SIZE:COUNT" grep -q -- "--segments SIZE:COUNT" "$WORK/help.out"

# jtrue EXPR: gfmon --json succeeds and EXPR holds for its object j (seg(path): the size of the
# segment IN_USE for path, or None).
jtrue() {
    "$GFMON" --json >"$WORK/j.json" 2>"$WORK/j.err" || return 1
    python3 - "$WORK/j.json" "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
p = j["proxies"][0] if j["proxies"] else {"segments": [], "classes": []}
def seg(path):
    m = [s["size"] for s in p["segments"] if s["state"] == "IN_USE" and s["path"] == path]
    return m[0] if m else None
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
PY
}
jcheck() {
    if jtrue "$2"; then
        CHECKS=$((CHECKS + 1))
    else
        check "$1" false
        cat "$WORK/j.json" "$WORK/j.err" >&2 || true
    fi
}

# --- the classes in use -----------------------------------------------------------------------
start_cache CACHE -t 4 -d 1500000 # every lookup takes 1.5 s: a transfer stays visible
PORT=$(free_port)
spawn PROXY "$WP" -p "$PORT" -t 8 --segments 1M:2,8K:6,64K:2
wait_port "$PORT" 30
check "10 segments created" test "$(segments_of "$PROXY")" = "$(initial_segments "$PROXY" 10)"
jcheck "gfmon --json shows the classes, smallest first" \
    "p['classes'] == [{'size': 8192, 'count': 6}, {'size': 65536, 'count': 2},
                      {'size': 1048576, 'count': 2}]
     and [s['size'] for s in p['segments']] == [8192] * 6 + [65536] * 2 + [1048576] * 2"
"$GFMON" --once >"$WORK/once.txt" 2>&1
check "gfmon --once: the classes in the proxy line" grep -qE "^proxy  pid $PROXY .*segments 6x8K\+2x64K\+2x1M" "$WORK/once.txt"
check "gfmon --once: each segment with its size" grep -qE '^  \[8\] seg9 1M +FREE' "$WORK/once.txt"

# seen_in PATH SIZE: the transfer of PATH is IN_USE in a segment of SIZE bytes right now.
seen_in() { jtrue "seg('$1') == $2"; }
# first_seen PATH PID: while the client PID runs, waits for PATH IN_USE and prints its segment's
# size ("none" when the transfer ended unseen).
first_seen() {
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$2" 2>/dev/null || break
        jtrue "seg('$1') is not None" && {
            python3 -c "import json; p=json.load(open('$WORK/j.json'))['proxies'][0]; print([s['size'] for s in p['segments'] if s['state']=='IN_USE' and s['path']=='$1'][0])"
            return 0
        }
    done
    echo none
}

gfget "$PORT" /small/3.txt --out "$WORK/s3.a" >"$WORK/g1" &
g=$!
sz=$(first_seen /small/3.txt "$g")
wait "$g"
check "first transfer of /small/3.txt (size unknown): the largest class (got $sz)" test "$sz" = 1048576
check "first transfer: bytes exact" cmp -s "$WORK/s3.a" "$CONTENT/files/small/3.txt"
gfget "$PORT" /small/3.txt --out "$WORK/s3.b" >"$WORK/g2" &
g=$!
sz=$(first_seen /small/3.txt "$g")
wait "$g"
check "second transfer of /small/3.txt (hint): the 8 KiB class (got $sz)" test "$sz" = 8192
check "second transfer: bytes exact" cmp -s "$WORK/s3.b" "$CONTENT/files/small/3.txt"

# via PATH SIZE WHAT: one transfer of PATH, seen IN_USE in a segment of SIZE bytes, bytes exact.
via() {
    local g sz
    gfget "$PORT" "$1" --out "$WORK/via" >"$WORK/via.line" &
    g=$!
    sz=$(first_seen "$1" "$g")
    wait "$g"
    check "$3: $1 in a segment of $2 bytes (got $sz)" test "$sz" = "$2"
    check "$3: $1 bytes exact" cmp -s "$WORK/via" "$CONTENT/files$1"
}
via /med.bin 1048576 "first transfer (size unknown): the largest class"
via /med.bin 65536 "second transfer (30000 bytes known): the smallest class that holds it"

via /big/10.bin 1048576 "first transfer (size unknown)"
via /big/10.bin 1048576 "second transfer (known, larger than every class): the largest class"

# --- a mixed workload, twice over (the second round knows every size) ------------------------
# A cache without the delay; the proxy follows it (docs/ipc.md) and keeps what it learnt.
stop_ok "$CACHE" TERM simplecached
start_cache CACHE -t 4
wait_for 30 get_ok "$PORT" /small/1.txt || check "the proxy found the new cache" false
wl="$WORK/mixed.txt"
awk '{print $1}' "$CONTENT/locals.txt" >"$wl"
check "mixed workload, round 1" download "$WORK/dl1" "$PORT" "$wl" 8 "$(wc -l <"$wl")"
check "mixed workload, round 1: bytes exact" verify_all "$WORK/dl1" "$wl"
check "mixed workload, round 2" download "$WORK/dl2" "$PORT" "$wl" 8 "$(wc -l <"$wl")"
check "mixed workload, round 2: bytes exact" verify_all "$WORK/dl2" "$wl"
# A worker marks its segment FREE just after its last send: wait for it (bounded).
all_free="all(s['state'] == 'FREE' for s in p['segments'])"
wait_for 10 jtrue "$all_free" || true
jcheck "every segment FREE again, none replaced" \
    "$all_free and [s['serial'] for s in p['segments']] == list(range(1, 11))"

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached
assert_no_ipc_left
finish
