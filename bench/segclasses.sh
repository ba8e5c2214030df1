#!/usr/bin/env bash
# segclasses.sh - segment size classes against one segment size, side by side in one run: the
# proxy's segment memory (bytes of its /dev/shm segments) and throughput on a mixed workload
# (many small files, some of 1 MiB, a few of 10 MiB), one simplecached serving every proxy,
# repetitions interleaved; medians and ratios against the first configuration.
#
# Usage: bench/segclasses.sh [--reps N] [--passes N] [--clients N] [--no-build] [--build-dir DIR]
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$SRC_DIR/bench/lib.sh"
REPS=5 PASSES=4 CLIENTS=8 BUILD=1 BUILD_DIR=$SRC_DIR/build/release ARGS_ORIG=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) REPS=$2; shift ;;
    --passes) PASSES=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --build-dir) BUILD_DIR=$2; shift ;;
    -h | --help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    *) echo "segclasses.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
for v in REPS PASSES CLIENTS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "segclasses.sh: bad ${v,,} '${!v}'" >&2; exit 2; }
done

# The configurations: NAME|webproxy segment options. The first is the baseline of the ratios.
CONFIGS=(
    "one size 16 x 1 MiB|-n 16 -z 1048576"
    "classes 16K:12,1M:4|--segments 16K:12,1M:4"
    "one size 16 x 256 KiB|-n 16 -z 262144"
    "one size 16 x 8 MiB|-n 16 -z 8388608"
    "classes 16K:12,1M:2,8M:2|--segments 16K:12,1M:2,8M:2"
)

if [ -z "${GF_SEGCLASSES_ISOLATED:-}" ]; then
    if [ "$BUILD" = 1 ]; then
        echo "building: cmake --preset release; webproxy simplecached gfclient_measure" >&2
        (cd "$SRC_DIR" && cmake --preset release >/dev/null &&
            cmake --build --preset release -j2 --target webproxy simplecached gfclient_measure \
                >/dev/null)
    fi
    export GF_SEGCLASSES_BIN=$BUILD_DIR/bin
    # A private IPC namespace (fresh /dev/shm, /dev/mqueue, runtime directory) when root.
    gf_isolate GF_SEGCLASSES_ISOLATED 2g "$0" "${ARGS_ORIG[@]}" --no-build ||
        echo "segclasses.sh: not root: no private IPC namespace (a private runtime directory)" >&2
fi
BIN=${GF_SEGCLASSES_BIN:-$BUILD_DIR/bin}
WORK=$(mktemp -d /tmp/segclasses.XXXXXX)
export GETFILE_RUNTIME_DIR=$WORK/rt
cleanup() {
    stop_all TERM
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- content: 400 files of 1..8 KiB, 12 of 1 MiB, 3 of 10 MiB --------------------------------
mkdir -p "$WORK/files"
python3 - "$WORK/files" <<'PY'
import os, random, sys
d = sys.argv[1]
rnd = random.Random(14)
files = [("/s/%d" % i, rnd.randint(1024, 8192)) for i in range(400)]
files += [("/m/%d" % i, 1 << 20) for i in range(12)]
files += [("/l/%d" % i, 10 << 20) for i in range(3)]
with open(os.path.join(d, "locals.txt"), "w") as idx:
    for p, n in files:
        os.makedirs(os.path.dirname(d + p), exist_ok=True)
        with open(d + p, "wb") as f:
            f.write(os.urandom(n))
        idx.write("%s .%s\n" % (p, p))
paths = [p for p, _ in files]
rnd.shuffle(paths)
with open(os.path.join(d, "workload.txt"), "w") as w:
    w.write("\n".join(paths) + "\n")
PY
NFILES=$(wc -l <"$WORK/files/workload.txt")
BYTES_PASS=$(awk '{print $2}' "$WORK/files/locals.txt" | (cd "$WORK/files" && xargs stat -c %s) |
    awk '{s += $1} END {print s}')

start_bg cache_pid "$WORK/cache.log" -C "$WORK/files" "$BIN/simplecached" -c locals.txt -t 16
sleep 0.5
declare -a PORTS MEM
for i in "${!CONFIGS[@]}"; do
    opts=${CONFIGS[$i]#*|}
    port=$(free_port)
    # shellcheck disable=SC2086 # the options are separate words
    start_bg pid "$WORK/proxy$i.log" "$BIN/webproxy" -p "$port" -t 16 --cache-wait 60000 $opts
    # shellcheck disable=SC2154 # set by start_bg
    port_up "$port" 10 "$pid" || { echo "segclasses.sh: nothing listens on $port" >&2; exit 1; }
    PORTS[i]=$port
    # Segment memory: the bytes of this proxy's segments in /dev/shm.
    MEM[i]=$(find /dev/shm -maxdepth 1 -name "getfile-$(id -u)-$pid-seg*" -printf '%s\n' |
        awk '{s += $1} END {print s + 0}')
    # Warm-up: one pass (the cache maps the segments; the proxy learns every size).
    (cd "$WORK" && "$BIN/gfclient_measure" -p "$port" -t "$CLIENTS" -w files/workload.txt \
        -r "$NFILES" -m /dev/null >/dev/null)
done

# --- measure: repetitions interleaved across the configurations -------------------------------
echo -e "rep\tconfig\tMB_per_s\trequests_per_s\tp50_ms\tp99_ms" >"$WORK/samples.tsv"
for ((r = 1; r <= REPS; r++)); do
    for i in "${!CONFIGS[@]}"; do
        out=$(cd "$WORK" && "$BIN/gfclient_measure" -p "${PORTS[$i]}" -t "$CLIENTS" \
            -w files/workload.txt -r $((NFILES * PASSES)) -m /dev/null)
        failed=$(awk '/^failed:/ {print $2}' <<<"$out")
        [ "$failed" = 0 ] || { echo "segclasses.sh: $failed failed requests" >&2; exit 1; }
        awk -v r="$r" -v c="$i" '/^MB_per_s:/ {m=$2} /^requests_per_s:/ {q=$2}
            /^latency_p50_ms:/ {p=$2} /^latency_p99_ms:/ {p9=$2}
            END {printf "%s\t%s\t%s\t%s\t%s\t%s\n", r, c, m, q, p, p9}' <<<"$out" \
            >>"$WORK/samples.tsv"
    done
done

python3 - "$WORK/samples.tsv" "$NFILES" "$BYTES_PASS" "$CLIENTS" "$REPS" "$PASSES" \
    "${MEM[@]}" -- "${CONFIGS[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
tsv, nfiles, bytes_pass, clients, reps, passes = args[:6]
rest = args[6:]
sep = rest.index("--")
mem = [int(x) for x in rest[:sep]]
names = [c.split("|")[0] for c in rest[sep + 1:]]
rows = [l.rstrip("\n").split("\t") for l in open(tsv)][1:]
def med(i, col):
    return statistics.median(float(r[col]) for r in rows if int(r[1]) == i)
print("Mixed workload: %s files per pass (400 of 1-8 KiB, 12 of 1 MiB, 3 of 10 MiB; %.1f MiB),"
      " %s passes per sample, %s clients, %s repetitions interleaved; medians."
      % (nfiles, int(bytes_pass) / 2**20, passes, clients, reps))
print()
print("| configuration | segment memory | memory ratio | MB/s | MB/s min-max | MB/s ratio | req/s | p50 ms | p99 ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
b_mb, b_mem = med(0, 2), mem[0]
for i, n in enumerate(names):
    mb = med(i, 2)
    v = [float(r[2]) for r in rows if int(r[1]) == i]
    print("| %s | %.2f MiB | %.2fx | %.0f | %.0f-%.0f | %.2fx | %.0f | %.1f | %.1f |"
          % (n, mem[i] / 2**20, mem[i] / b_mem, mb, min(v), max(v), mb / b_mb, med(i, 3),
             med(i, 4), med(i, 5)))
PY
