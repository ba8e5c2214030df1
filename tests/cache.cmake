# cache.cmake - tests of simplecached and of the proxy's cache mode (segment pool, handler).
gf_add_unit_test(NAME test_seg_pool SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_seg_pool.c
                 LIBS gfproxy LABELS tsan)
gf_add_unit_test(NAME test_seg_classes SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_seg_classes.c
                 LIBS gfproxy LABELS tsan)
gf_add_unit_test(NAME test_map_keep SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_map_keep.c
                 LIBS gfproxy LABELS tsan)
gf_add_unit_test(NAME test_simplecache SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_simplecache.c
                 LIBS gfcache LABELS tsan)

# A helper of cache_craft.sh, not a test by itself: crafted requests against a running cache.
add_executable(cmdq_craft ${PROJECT_SOURCE_DIR}/tests/unit/cmdq_craft.c)
target_include_directories(cmdq_craft PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(cmdq_craft PRIVATE gfipc)

foreach(t basic start_order signals reuse delay sweep kill craft reload instances)
  gf_add_script_test(NAME cache_${t} SCRIPT tests/integration/cache_${t}.sh TIMEOUT 180 LABELS cache tsan)
endforeach()
# Segment size classes (webproxy --segments SIZE:COUNT,...): selection, gfmon, a mixed workload.
gf_add_script_test(NAME cache_classes SCRIPT tests/integration/cache_classes.sh TIMEOUT 180
  LABELS cache)
# A stop followed at once by a start: retiring names, the waiting start, 50 cycles.
gf_add_script_test(NAME cache_restart SCRIPT tests/integration/cache_restart.sh TIMEOUT 480
  LABELS cache)

# Kept segment attachments of simplecached (src/cache/attach_cache.c).
gf_add_unit_test(NAME test_attach_cache SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_attach_cache.c
                 LIBS gfcache LABELS tsan)

# Origin mode's gathered sends (src/origin/origin_fetch.c); registered here with the other
# performance-work tests so tests/proxy.cmake stays its owner's.
gf_add_script_test(NAME proxy_origin_gather SCRIPT tests/integration/proxy_origin_gather.sh
  TIMEOUT 120 LABELS tsan)

# Fill on miss from an origin, the store, coalescing (src/cache/store.c, cache_server.c).
foreach(t fill store coalesce fresh stale ctl both faults cold32 bound)
  gf_add_script_test(NAME cache_${t} SCRIPT tests/integration/cache_${t}.sh TIMEOUT 240 LABELS cache)
endforeach()
# The sysv backend's System V objects (issue 14): keys, kill -9 of either side, the sweep,
# ipcs empty at the end. Not tsan (kill -9 timings).
gf_add_script_test(NAME cache_sysv_objects SCRIPT tests/integration/cache_sysv_objects.sh LABELS ipc_sysv TIMEOUT 180)
