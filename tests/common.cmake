gf_add_unit_test(NAME test_common SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_common.c LIBS gfcommon)

# The integration harness's own promises (tests/integration/lib.sh).
gf_add_script_test(NAME lib_selftest SCRIPT tests/integration/lib_selftest.sh TIMEOUT 60)
