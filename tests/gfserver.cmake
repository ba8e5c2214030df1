# GETFILE server library, the workq it runs on, and gfserver_main as a real process.
gf_add_unit_test(NAME test_workq SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_workq.c
  LIBS gfcommon LABELS tsan)
gf_add_unit_test(NAME test_gfserver SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_gfserver.c
  LIBS gfproto LABELS tsan TIMEOUT 120)

gf_add_script_test(NAME gfserver_malformed SCRIPT tests/integration/gfserver_malformed.sh TIMEOUT 120)
gf_add_script_test(NAME gfserver_slow SCRIPT tests/integration/gfserver_slow.sh TIMEOUT 180)
gf_add_script_test(NAME gfserver_slowloris SCRIPT tests/integration/gfserver_slowloris.sh TIMEOUT 300)
# Its webproxy cache-mode part on the other --ipc backends (issue 16; label ipc_<backend>).
foreach(be sysv unix fd)
  gf_add_script_test(NAME gfserver_slowloris_${be} SCRIPT tests/integration/gfserver_slowloris.sh
    ARGS ${be} TIMEOUT 180 LABELS ipc_${be})
endforeach()
gf_add_script_test(NAME gfserver_slowread SCRIPT tests/integration/gfserver_slowread.sh TIMEOUT 180)
gf_add_script_test(NAME gfserver_signal SCRIPT tests/integration/gfserver_signal.sh TIMEOUT 180)
gf_add_script_test(NAME gfserver_cli SCRIPT tests/integration/gfserver_cli.sh TIMEOUT 120)
gf_add_script_test(NAME index_hostile SCRIPT tests/integration/index_hostile.sh TIMEOUT 120)
