#!/usr/bin/env bash
# rel_summary.sh - runs the reliability tests of a build directory and prints the figures for
# docs/reliability.md: one row per scenario from its closing "RELIABILITY ..." line, and totals.
#   tests/rel/rel_summary.sh BUILD_DIR [--full] [ctest args...]
# --full runs the long forms (RELIABILITY_FULL=1; configure with -DRELIABILITY_FULL=ON for the
# longer ctest timeouts). Without running anything: tests/rel/rel_summary.sh --parse LOG...
set -euo pipefail

if [ "${1:-}" = -h ] || [ $# -lt 1 ]; then
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    [ $# -ge 1 ]
    exit $?
fi

summarize() { # LOG: one row per scenario; parts of a split run (REL_FAULT_FNS) add up
    sed -E 's/^[0-9]+: //' "$1" | awk '
    /^RELIABILITY / {
        delete v
        for (i = 2; i <= NF; i++) {
            split($i, kv, "=")
            v[kv[1]] = kv[2]
        }
        t = v["test"]
        if (!(t in seen)) { seen[t] = 1; order[n++] = t }
        parts[t]++
        split("runs faults signals ok downloads failed_reported leaks known_weak", keys, " ")
        for (k in keys) sum[t, keys[k]] += v[keys[k]]
    }
    / tests passed, / { result = $0 }
    END {
        split("runs faults signals ok downloads failed_reported leaks known_weak", keys, " ")
        for (i = 0; i < n; i++) {
            t = order[i]
            name = parts[t] > 1 ? t " (" parts[t] " parts)" : t
            printf "| %s |", name
            for (k = 1; k <= 8; k++) {
                printf " %d |", sum[t, keys[k]]
                total[k] += sum[t, keys[k]]
            }
            printf "\n"
        }
        printf "| **total (%d scenarios)** |", n
        for (k = 1; k <= 8; k++) printf " %d |", total[k]
        printf "\n"
        if (result != "") print "\nctest: " result
    }'
}

header() {
    echo "| scenario | runs | faults injected | signals sent | requests OK | files verified | failures reported | leaks | known weaknesses hit |"
    echo "|---|---|---|---|---|---|---|---|---|"
}

if [ "$1" = --parse ]; then
    shift
    header
    cat "$@" | summarize /dev/stdin
    exit 0
fi

build=$1
shift
if [ "${1:-}" = --full ]; then
    export RELIABILITY_FULL=1
    shift
fi
out=$(mktemp /tmp/rel_summary.XXXXXX)
status=0
ctest --test-dir "$build" -L reliability -V "$@" >"$out" 2>&1 || status=$?
header
summarize "$out"
grep -E '[0-9]+/[0-9]+ Test +#|tests passed' "$out" | sed 's/^/    /' || true
echo "full log: $out"
exit $status
