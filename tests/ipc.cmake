# IPC contract tests (src/ipc): names and sweep, command queue, data segments, stress, model.
# The unit tests move into private mount+IPC namespaces themselves (tests/unit/ipc_testutil.h).
gf_add_unit_test(NAME test_ipc_names SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ipc_names.c
                 LIBS gfipc)
gf_add_unit_test(NAME test_cmdq SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_cmdq.c
                 LIBS gfipc LABELS tsan)
gf_add_unit_test(NAME test_shm_chan SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_shm_chan.c
                 LIBS gfipc LABELS tsan)
gf_add_unit_test(NAME test_shm_stress SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_shm_stress.c
                 LIBS gfipc LABELS tsan TIMEOUT 120)
gf_add_script_test(NAME spin_model SCRIPT tests/integration/spin_model.sh TIMEOUT 180)
gf_add_unit_test(NAME test_sysv SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sysv.c
                 LIBS gfipc LABELS ipc_sysv)
# Smoke run of the IPC lab benchmark (bench/ipc_lab.sh --quick): the script cannot rot.
add_test(NAME bench.ipc_lab_quick COMMAND bash ${PROJECT_SOURCE_DIR}/tests/integration/bench_ipc_lab_quick.sh)
set_tests_properties(bench.ipc_lab_quick PROPERTIES TIMEOUT 300 LABELS "bench;ipc_sysv" RUN_SERIAL TRUE
  SKIP_RETURN_CODE 77 ENVIRONMENT "BIN_DIR=${PROJECT_BINARY_DIR}/bin;SRC_DIR=${PROJECT_SOURCE_DIR}")
