gf_add_unit_test(NAME test_common SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_common.c LIBS gfcommon gfcli)

# The integration harness's own promises (tests/integration/lib.sh).
gf_add_script_test(NAME lib_selftest SCRIPT tests/integration/lib_selftest.sh TIMEOUT 60)

# The test command's closing report and IPC leak naming (scripts/test_report.py, ipc_leaks.py).
gf_add_script_test(NAME test_report SCRIPT tests/integration/test_report.sh TIMEOUT 120)

# Every daemon survives SIGHUP, SIGUSR1, SIGUSR2 and SIGPIPE and still stops cleanly.
gf_add_script_test(NAME daemon_signals SCRIPT tests/integration/daemon_signals.sh TIMEOUT 120)

# The command-line conventions of all five programs (--help, --version, usage errors, exit 3).
gf_add_script_test(NAME cli_conventions SCRIPT tests/integration/cli_conventions.sh TIMEOUT 120)

# No product library exits: only the programs' gfcli may.
add_test(NAME lib_no_exit COMMAND bash ${PROJECT_SOURCE_DIR}/tests/integration/lib_no_exit.sh
  $<TARGET_FILE:gfcommon> $<TARGET_FILE:gfproto> $<TARGET_FILE:gfipc> $<TARGET_FILE:gfproxy>
  $<TARGET_FILE:gfcache> $<TARGET_FILE:gfstats>)
set_tests_properties(lib_no_exit PROPERTIES TIMEOUT 60)
