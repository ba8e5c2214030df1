#!/usr/bin/env bash
# lib_no_exit.sh LIB.a...: no library of the product calls exit, _exit, _Exit, quick_exit or
# abort (a library returns -errno and its program decides; only src/cli, linked by programs
# alone, may exit). Reads each archive's undefined symbols with nm.
# SPDX-License-Identifier: MIT
set -u
passed=0 failed=0
for lib in "$@"; do
    bad=$(nm -u "$lib" | awk '{ print $NF }' | grep -xE '(exit|_exit|_Exit|quick_exit|abort)' |
        sort -u | tr '\n' ' ')
    if [ -z "$bad" ] && nm "$lib" >/dev/null; then
        passed=$((passed + 1))
    else
        echo "FAIL: $(basename "$lib") calls: $bad"
        failed=$((failed + 1))
    fi
done
echo "lib_no_exit: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
