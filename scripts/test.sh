#!/usr/bin/env bash
# test.sh - the whole test suite: format check, then the TSan, fuzz and ASan+UBSan builds and
# their tests. Installs what it needs. Ends with ctest's summary of the full ASan+UBSan run.
#   scripts/test.sh             everything (what CI runs)
#   scripts/test.sh --valgrind  additionally the unit tests and servers under valgrind
#   scripts/test.sh --quick     only the ASan+UBSan build and its tests
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0 valgrind=0
for a in "$@"; do
    case "$a" in
    --quick) quick=1 ;;
    --valgrind) valgrind=1 ;;
    -h | --help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option '$a'" >&2; exit 2 ;;
    esac
done

scripts/deps.sh test
jobs=$(nproc)
werror=-DWERROR=ON
status=0

rm -f build/*/junit.xml # a run that fails to build must not report an older run's results
step() { printf '\n==== %s\n' "$*"; }

build() { # build PRESET [extra cmake args]
    local preset=$1
    shift
    cmake --preset "$preset" "$werror" "$@" >/dev/null
    cmake --build --preset "$preset" -j "$jobs" >/dev/null
}

if [ "$quick" -eq 0 ]; then
    step "clang-format"
    mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find src tools tests bench -name '*.[ch]')
    if ! clang-format --dry-run -Werror "${sources[@]}"; then
        echo "clang-format: files above need formatting (clang-format -i)"
        status=1
    fi

    step "TSan: threaded tests"
    build tsan
    ctest --preset tsan -L tsan -j "$jobs" --output-junit "$root/build/tsan/junit.xml" || status=1

    step "libFuzzer: short runs of every fuzz target"
    build fuzz
    ctest --preset fuzz -L fuzz -j "$jobs" --output-junit "$root/build/fuzz/junit.xml" || status=1

    if [ "$valgrind" -eq 1 ]; then
        step "valgrind"
        build valgrind
        ctest --preset valgrind -j "$jobs" --output-junit "$root/build/valgrind/junit.xml" || status=1
    fi
fi

step "ASan+UBSan: the whole suite"
build asan
# The benchmark programs are outside "all": built here so an interface change cannot break them
# unnoticed.
cmake --build --preset asan -j "$jobs" --target bench >/dev/null
ctest --preset asan -j "$jobs" -LE fuzz --output-junit "$root/build/asan/junit.xml" || status=1

# One line per test of every run, then the host's IPC objects (the tests run in private
# namespaces; anything here escaped one), each named with its evidence and likely cause.
reports=()
if [ "$quick" -eq 0 ]; then
    reports+=(tsan="$root/build/tsan/junit.xml" fuzz="$root/build/fuzz/junit.xml")
    [ "$valgrind" -eq 1 ] && reports+=(vg="$root/build/valgrind/junit.xml")
fi
reports+=(asan="$root/build/asan/junit.xml")
scripts/test_report.py "${reports[@]}" || status=1
step "IPC objects left on this host"
if scripts/ipc_leaks.py; then echo "none"; else status=1; fi
exit $status
