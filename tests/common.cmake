gf_add_unit_test(NAME test_common SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_common.c LIBS gfcommon)
