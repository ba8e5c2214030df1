# stats.cmake - the live figures (src/stats) and the gfmon monitor.
# The seqlock under concurrent writers and a reader: worth the TSan build too.
gf_add_unit_test(NAME test_stats SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_stats.c
                 LIBS gfstats LABELS tsan)
