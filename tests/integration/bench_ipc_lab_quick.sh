#!/usr/bin/env bash
# bench_ipc_lab_quick.sh - smoke run of bench/ipc_lab.sh (--quick, a few seconds) so the lab
# script cannot rot: every backend the programs accept is measured without failures and the
# report (table, kill-free) is written; a backend that is built but does not serve fails it. Builds gfload (bench target, not in "all") if missing.
set -euo pipefail
: "${BIN_DIR:?}" "${SRC_DIR:?}"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a private IPC namespace"; exit 77; }
BUILD=$(dirname "$BIN_DIR")
[ -x "$BIN_DIR/gfload" ] || cmake --build "$BUILD" --target gfload >/dev/null
OUT=$(mktemp -d /tmp/gflabq.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
"$SRC_DIR/bench/ipc_lab.sh" --quick --strict --no-build --build-dir "$BUILD" --out "$OUT" >"$OUT/log" 2>&1 || {
    cat "$OUT/log"
    echo "FAIL: ipc_lab.sh --quick exited non-zero"
    exit 1
}
fail=0
backends=$(awk -F'\t' '$1 == "perf" { print $2 }' "$OUT/results.tsv" | sort -u)
echo "backends measured: $(echo "$backends" | xargs)"
echo "$backends" | grep -qx posix || { echo "FAIL: posix not measured"; fail=1; }
# Every cell has a number and no failures.
bad=$(awk -F'\t' '$1 == "perf" && ($6 == "" || $6 + 0 <= 0 || $12 != "0")' "$OUT/results.tsv")
[ -z "$bad" ] || { echo "FAIL: cells without a result or with failures:"; echo "$bad"; fail=1; }
for b in $backends; do
    grep -q "^| $b | " "$OUT/ipc-lab.md" || { echo "FAIL: no table row for $b"; fail=1; }
done
grep -q "ipc-lab:end" "$OUT/ipc-lab.md" || { echo "FAIL: report incomplete"; fail=1; }
[ "$fail" = 0 ] && echo "PASS"
exit "$fail"
