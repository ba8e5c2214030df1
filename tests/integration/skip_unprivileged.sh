#!/usr/bin/env bash
# skip_unprivileged.sh - a test that needs root, run by a user who is not root, is reported
# skipped by ctest, not failed: lib.sh (integration tests) and ipc_testutil.h (unit tests) exit
# 77 before they try their namespaces, and every script and unit test is registered with
# SKIP_RETURN_CODE 77. Runs the real registration (this build's
# tests/CTestTestfile.cmake, copied where nobody can write its logs) as nobody.
source "$(dirname "$0")/lib.sh"
: "${BUILD_DIR:?BUILD_DIR: the build tree}"

# Every script test carries SKIP_RETURN_CODE 77.
(cd "$BUILD_DIR" && ctest -N --show-only=json-v1) >"$WORK/tests.json"
check "every integration and unit test has SKIP_RETURN_CODE 77" python3 - "$WORK/tests.json" <<'PY'
import json, sys
tests = json.load(open(sys.argv[1]))["tests"]
bad = [t["name"] for t in tests if t["name"].startswith(("integration.", "unit.")) and
       not any(p["name"] == "SKIP_RETURN_CODE" and p["value"] == 77
               for p in t.get("properties", []))]
if bad or not tests:
    print("without SKIP_RETURN_CODE 77:", bad, file=sys.stderr)
sys.exit(1 if bad or not tests else 0)
PY

nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
run=$WORK/asnobody
mkdir -p "$run"
chmod 755 "$WORK"
cp "$BUILD_DIR/tests/CTestTestfile.cmake" "$run/"
chown -R nobody:nogroup "$run"
check "nobody can read lib.sh" "${nobody[@]}" test -r "$SRC_DIR/tests/integration/lib.sh"

# lib_selftest and test_ipc_names need root for their namespaces: as nobody both are skipped
# and ctest succeeds.
rc=0
(cd "$run" && "${nobody[@]}" env -u GF_TEST_ISOLATED HOME="$run" ctest \
    -R '^(integration\.lib_selftest|unit\.test_ipc_names)$' -V) >"$WORK/ctest.log" 2>&1 || rc=$?
cat "$WORK/ctest.log"
for t in integration.lib_selftest unit.test_ipc_names; do
    check "ctest ran $t" grep -q "$t" "$WORK/ctest.log"
    check "ctest reports $t skipped" grep -Eq "${t//./\\.} \.+\*\*\*Skipped" "$WORK/ctest.log"
done
check "ctest reports no failure (status $rc)" test "$rc" -eq 0
check "lib.sh said why" grep -q 'lib_selftest: SKIP: needs root' "$WORK/ctest.log"
check "ipc_testutil.h said why" grep -q 'SKIP: needs root for a private mount and IPC namespace' "$WORK/ctest.log"
finish
