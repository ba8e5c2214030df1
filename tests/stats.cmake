# stats.cmake - the live figures (src/stats) and the gfmon monitor.
# The seqlock under concurrent writers and a reader: worth the TSan build too.
gf_add_unit_test(NAME test_stats SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_stats.c
                 LIBS gfstats LABELS tsan)

# A helper of gfmon_live.sh, not a test by itself: a reader that keeps a stats object mapped.
add_executable(stats_hold ${PROJECT_SOURCE_DIR}/tests/unit/stats_hold.c)
target_include_directories(stats_hold PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(stats_hold PRIVATE gfstats)

# The real daemons under load, read through gfmon --json and --once; readers that cannot harm;
# removal on exit and the sweep after kill -9; gfmon's command line.
# In the TSan build too: the daemons' writers (many threads, one seqlock) under real load.
gf_add_script_test(NAME gfmon_live SCRIPT tests/integration/gfmon_live.sh TIMEOUT 300
  LABELS cache tsan)
# gfmon's screen under tmux (80x24 and larger), daemons going and coming, q quits.
gf_add_script_test(NAME gfmon_tmux SCRIPT tests/integration/gfmon_tmux.sh TIMEOUT 180
  LABELS cache)
