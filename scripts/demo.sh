#!/usr/bin/env bash
# demo.sh - the main job: build, start simplecached and webproxy (cache mode) on generated
# content, download a workload through the proxy, verify every byte, print a summary, stop
# both, and show that no IPC object is left.
#   scripts/demo.sh [-r REQUESTS] [-t CLIENT_THREADS] [-z SEGSIZE] [-n SEGMENTS] [-b BINDIR]
#   -b BINDIR  run the programs in BINDIR instead of building the release preset
# As root it runs in private mount and IPC namespaces with its own /dev/shm and /dev/mqueue
# (as the integration tests do, tests/integration/lib.sh), so it touches no other IPC object
# of the machine and "nothing left" is a plain listing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

requests=200 threads=8 segsize=1048576 nsegs=8 bin=
while getopts "r:t:z:n:b:h" o; do
    case "$o" in
    r) requests=$OPTARG ;;
    t) threads=$OPTARG ;;
    z) segsize=$OPTARG ;;
    n) nsegs=$OPTARG ;;
    b) bin=$(realpath -- "$OPTARG") ;;
    h) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done

if [ -z "$bin" ]; then
    scripts/deps.sh build
    echo "== Building (release)"
    cmake --preset release >/dev/null
    cmake --build --preset release -j "$(nproc)" >/dev/null
    bin=$root/build/release/bin
fi

# The rest runs in private mount and IPC namespaces: a fresh tmpfs on /dev/shm and a private
# mqueue mount on /dev/mqueue (scripts/isolate.sh, as the tests do). Without root it runs in the
# machine's namespaces; the IPC names carry the uid, so only this user's objects are concerned.
# shellcheck source=scripts/isolate.sh
source "$root/scripts/isolate.sh"
gf_isolate GF_DEMO_ISOLATED 2g "$root/scripts/demo.sh" -b "$bin" -r "$requests" -t "$threads" \
    -z "$segsize" -n "$nsegs" || true
if [ -n "${GF_DEMO_ISOLATED:-}" ]; then
    echo "== In a private IPC namespace ($(readlink /proc/self/ns/ipc)) with its own /dev/shm and /dev/mqueue"
    ours='^getfile-'
else
    echo "== Not root: in this machine's IPC namespace ($(readlink /proc/self/ns/ipc))"
    ours="^getfile-$(id -u)-"
fi

work=$(mktemp -d /tmp/getfile-demo.XXXXXX)
cache_pid='' proxy_pid='' # set by start_bg
cleanup() {
    stop_all TERM
    rm -rf "$work"
}
trap cleanup EXIT

echo "== Generating content in $work"
python3 "$root/scripts/gen_content.py" "$work" >/dev/null
cd "$work"

port=$(free_port)
echo "== Starting simplecached (4 threads) and webproxy (port $port, 8 threads, $nsegs x $segsize B segments)"
start_bg cache_pid cache.log "$bin/simplecached" -c locals.txt -t 4 -d 0
# The proxy's first requests find the cache once its command queue exists.
cmdq_made() { compgen -G "/dev/mqueue/getfile-$(id -u)-$cache_pid-cmd*" >/dev/null; }
if mountpoint -q /dev/mqueue; then wait_for 5 cmdq_made || true; fi
start_bg proxy_pid proxy.log "$bin/webproxy" -p "$port" -t 8 -n "$nsegs" -z "$segsize"
port_up "$port" 5 "$proxy_pid" || true
echo "== Downloading $requests requests with $threads client threads"
mkdir dl
(cd dl && "$bin/gfclient_download" -p "$port" -t "$threads" -w ../workload.txt -r "$requests") | tee download.txt
echo "== Verifying every byte"
bad=0 checked=0
while read -r req local; do
    f="dl/${req#/}"
    if [ -e "$f" ]; then
        checked=$((checked + 1))
        cmp -s "$f" "$local" || { echo "MISMATCH: $req"; bad=$((bad + 1)); }
    elif grep -qx "$req" workload.txt; then
        echo "MISSING: $req"
        bad=$((bad + 1))
    fi
done <locals.txt
echo "verified $checked files byte for byte, $bad bad"

echo "== Measuring ($requests requests, $threads threads)"
"$bin/gfclient_measure" -p "$port" -t "$threads" -w workload.txt -r "$requests" -m metrics.txt

echo "== Stopping (SIGTERM)"
rc_proxy=0 rc_cache=0
stop_pid "$proxy_pid" || rc_proxy=$?
stop_pid "$cache_pid" || rc_cache=$?
echo "webproxy exited $rc_proxy, simplecached exited $rc_cache"
left=$(ls -A /dev/shm /dev/mqueue 2>/dev/null | grep -E "$ours" || true)
if [ -n "$left" ]; then
    echo "IPC objects left: $left"
    bad=$((bad + 1))
else
    echo "IPC objects of ours left in /dev/shm and /dev/mqueue: none"
fi
[ "$bad" -eq 0 ] && [ "$rc_proxy" -eq 0 ] && [ "$rc_cache" -eq 0 ]
