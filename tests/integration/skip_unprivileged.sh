#!/usr/bin/env bash
# skip_unprivileged.sh - an integration test run by a user who is not root is reported skipped
# by ctest, not failed: lib.sh exits 77 before it tries its namespaces, and every script test
# is registered with SKIP_RETURN_CODE 77. Runs the real registration (this build's
# tests/CTestTestfile.cmake, copied where nobody can write its logs) as nobody.
source "$(dirname "$0")/lib.sh"
: "${BUILD_DIR:?BUILD_DIR: the build tree}"

# Every script test carries SKIP_RETURN_CODE 77.
(cd "$BUILD_DIR" && ctest -N --show-only=json-v1) >"$WORK/tests.json"
check "every integration test has SKIP_RETURN_CODE 77" python3 - "$WORK/tests.json" <<'PY'
import json, sys
tests = json.load(open(sys.argv[1]))["tests"]
bad = [t["name"] for t in tests if t["name"].startswith("integration.") and
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

# lib_selftest needs root for its namespaces: as nobody it is skipped and ctest succeeds.
rc=0
(cd "$run" && "${nobody[@]}" env -u GF_TEST_ISOLATED HOME="$run" ctest -R '^integration\.lib_selftest$' \
    -V) >"$WORK/ctest.log" 2>&1 || rc=$?
cat "$WORK/ctest.log"
check "ctest ran the test" grep -q 'integration\.lib_selftest' "$WORK/ctest.log"
check "ctest reports it skipped" grep -Eq 'integration\.lib_selftest \.+\*\*\*Skipped' "$WORK/ctest.log"
check "ctest reports no failure (status $rc)" test "$rc" -eq 0
check "the test said why" grep -q 'SKIP: needs root' "$WORK/ctest.log"
finish
