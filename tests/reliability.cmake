# Reliability campaign: fault-injected copies of the daemons, the fault module's own unit test,
# and the rel_*.sh scenarios (faults, peer death, system limits, signals, restarts, users, soak).
# The CI forms are bounded (a few minutes in all). The full campaign (every k of every fault,
# 200 start/stop cycles, a 5-minute soak, 40 random kills) runs with -DRELIABILITY_FULL=ON, which
# passes RELIABILITY_FULL=1 to the scripts and raises their timeouts (docs/reliability.md).
option(RELIABILITY_FULL "Run the long forms of the reliability tests" OFF)

# Every function tests/rel/fault.c wraps; keep in sync with fault.h.
set(GF_FAULT_WRAPPED shm_open mmap ftruncate posix_fallocate mq_open mq_timedsend
    mq_timedreceive sem_init sem_post sem_timedwait sem_clockwait shm_sem_post shm_sem_clockwait
    pthread_create malloc calloc realloc strdup accept4 sendmsg sendfile socket connect recvmsg
    recv msgget msgsnd msgrcv shmget shmat)
list(JOIN GF_FAULT_WRAPPED ",--wrap=" gf_wrap_list)
set(GF_FAULT_LINK "-Wl,--wrap=${gf_wrap_list}")

# gf_add_fault_exe(NAME name MAIN source LIBS libs... [CURL])
function(gf_add_fault_exe)
  cmake_parse_arguments(F "CURL" "NAME;MAIN" "LIBS" ${ARGN})
  add_executable(${F_NAME} ${F_MAIN} ${PROJECT_SOURCE_DIR}/tests/rel/fault.c)
  target_include_directories(${F_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests/rel)
  target_link_libraries(${F_NAME} PRIVATE ${F_LIBS})
  set(opts ${GF_FAULT_LINK})
  if(F_CURL)
    target_compile_definitions(${F_NAME} PRIVATE GF_FAULT_CURL)
    target_link_libraries(${F_NAME} PRIVATE PkgConfig::CURL)
    set(opts "${opts},--wrap=curl_easy_init")
  endif()
  target_link_options(${F_NAME} PRIVATE ${opts})
  set_target_properties(${F_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

gf_add_fault_exe(NAME webproxy_fi MAIN ${PROJECT_SOURCE_DIR}/src/proxy/webproxy.c
  LIBS gfproxy gfmetrics gfcli CURL)
gf_add_fault_exe(NAME simplecached_fi MAIN ${PROJECT_SOURCE_DIR}/src/cache/simplecached.c
  LIBS gfcache gfmetrics gfcli)

# The fault module itself: parsing, k-th call failure, "K+", errno per function, counters.
gf_add_unit_test(NAME test_fault
  SOURCES ${PROJECT_SOURCE_DIR}/tests/rel/test_fault.c ${PROJECT_SOURCE_DIR}/tests/rel/fault.c
  LIBS gfipc)
target_link_options(test_fault PRIVATE ${GF_FAULT_LINK})
# The test counts calls: the optimiser must not remove or merge allocation calls.
target_compile_options(test_fault PRIVATE -fno-builtin-malloc -fno-builtin-calloc
  -fno-builtin-realloc -fno-builtin-free -fno-builtin-strdup)
set_tests_properties(unit.test_fault PROPERTIES LABELS "unit;reliability")

# rel_ipc_probe: a tiny helper that tries shm_open/mq_open of a named object (the two-user test).
add_executable(rel_ipc_probe ${PROJECT_SOURCE_DIR}/tests/rel/rel_ipc_probe.c)
set_target_properties(rel_ipc_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)

# gf_add_rel_test(NAME n TIMEOUT s [LABELS ...]): tests/integration/rel_<n>.sh
function(gf_add_rel_test)
  cmake_parse_arguments(R "" "NAME;TIMEOUT;ARG" "LABELS" ${ARGN})
  set(script rel_${R_NAME})
  if(R_ARG)
    string(REGEX REPLACE "_${R_ARG}$" "" script ${script})
    set(args ARGS ${R_ARG})
  endif()
  gf_add_script_test(NAME rel_${R_NAME} SCRIPT tests/integration/${script}.sh ${args}
    TIMEOUT ${R_TIMEOUT} LABELS reliability ${R_LABELS})
  if(RELIABILITY_FULL)
    set_property(TEST integration.rel_${R_NAME} APPEND PROPERTY ENVIRONMENT RELIABILITY_FULL=1)
    set_property(TEST integration.rel_${R_NAME} PROPERTY TIMEOUT 10800)
  endif()
endfunction()

gf_add_rel_test(NAME faults_proxy ARG proxy TIMEOUT 600 LABELS slow ipc_posix)
gf_add_rel_test(NAME faults_cache ARG cache TIMEOUT 600 LABELS slow ipc_posix)
# The fault sweeps on the other backends: the functions swept are those the baseline run
# counted on that backend (its own socket or System V calls included), 3 k each in the CI form.
foreach(be sysv unix fd)
  foreach(side proxy cache)
    gf_add_script_test(NAME rel_faults_${side}_${be} SCRIPT tests/integration/rel_faults.sh
      ARGS ${side} ${be} TIMEOUT 600 LABELS reliability slow ipc_${be})
    if(RELIABILITY_FULL)
      set_property(TEST integration.rel_faults_${side}_${be} APPEND PROPERTY ENVIRONMENT
        RELIABILITY_FULL=1)
      set_property(TEST integration.rel_faults_${side}_${be} PROPERTY TIMEOUT 10800)
    endif()
  endforeach()
endforeach()
gf_add_rel_test(NAME faults_origin ARG origin TIMEOUT 300)
gf_add_rel_test(NAME peer_death TIMEOUT 300 LABELS ipc_posix)
# The same sweeps on the other --ipc backends, each at its own exact points (docs/reliability.md,
# "Per backend"); label ipc_<backend>.
# fd: a kept hit after the cache's death is refused (its pidfd), and the stall points lie after
# the warm-up (generation object, kept /small).
foreach(be sysv unix fd)
  gf_add_rel_test(NAME peer_death_${be} ARG ${be} TIMEOUT 300 LABELS ipc_${be})
endforeach()
gf_add_rel_test(NAME limits TIMEOUT 300 LABELS ipc_posix)
# sysv: kernel.msgmni, msgmax, shmmni instead; unix, fd: the cache out of descriptors.
foreach(be sysv unix fd)
  gf_add_rel_test(NAME limits_${be} ARG ${be} TIMEOUT 120 LABELS ipc_${be})
endforeach()
gf_add_rel_test(NAME signals TIMEOUT 300 LABELS ipc_posix)
foreach(be sysv unix fd)
  gf_add_rel_test(NAME signals_${be} ARG ${be} TIMEOUT 300 LABELS ipc_${be})
endforeach()
gf_add_rel_test(NAME cycles TIMEOUT 600 LABELS slow ipc_posix)
# Start/stop cycles on the other backends: 12 cycles in the CI form (about 7 s each under ASan).
foreach(be sysv unix fd)
  gf_add_rel_test(NAME cycles_${be} ARG ${be} TIMEOUT 300 LABELS slow ipc_${be})
endforeach()
gf_add_rel_test(NAME users TIMEOUT 120 LABELS ipc_posix)
gf_add_rel_test(NAME squat TIMEOUT 300 LABELS ipc_posix)
gf_add_rel_test(NAME soak TIMEOUT 900 LABELS slow ipc_posix)
# The soak on the other backends: 16 s, a restart every 5 s in the CI form (about 18 s each).
foreach(be sysv unix fd)
  gf_add_rel_test(NAME soak_${be} ARG ${be} TIMEOUT 300 LABELS slow ipc_${be})
endforeach()
gf_add_rel_test(NAME scribble TIMEOUT 600 LABELS ipc_posix)
# Issue 16 on the other backends (labels ipc_<backend>): another uid squatting (part 1 of
# rel_squat.sh, plus each backend's own names: System V keys, socket names and SO_PEERCRED) and
# two users side by side (rel_users.sh, probes of each backend's objects).
foreach(be sysv unix fd)
  gf_add_rel_test(NAME squat_${be} ARG ${be} TIMEOUT 240 LABELS ipc_${be})
  gf_add_rel_test(NAME users_${be} ARG ${be} TIMEOUT 120 LABELS ipc_${be})
endforeach()
# rel_scribble.sh over System V segments, and on the socket backends the same damage done by a
# process of our uid relaying the cache's socket (rel_scribble_sock.py).
gf_add_rel_test(NAME scribble_sysv ARG sysv TIMEOUT 600 LABELS ipc_sysv)
foreach(be unix fd)
  gf_add_rel_test(NAME scribble_${be} ARG ${be} TIMEOUT 300 LABELS ipc_${be})
endforeach()

# The cache's idle limit on connections (GETFILE_CONN_IDLE_MS shortens its 30 s to 1 s).
foreach(be unix fd)
  gf_add_script_test(NAME cache_conn_idle_${be} SCRIPT tests/integration/cache_conn_idle.sh
    ARGS ${be} TIMEOUT 120 LABELS cache tsan ipc_${be})
endforeach()

# The socket backends (--ipc unix, fd) when a peer dies or stalls at an exact point.
foreach(be unix fd)
  gf_add_script_test(NAME cache_ipc_points_${be} SCRIPT tests/integration/cache_ipc_points.sh
    ARGS ${be} TIMEOUT 180 LABELS cache tsan ipc_${be})
endforeach()
