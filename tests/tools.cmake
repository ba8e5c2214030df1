# GETFILE client library, the load clients (gfclient_download, gfclient_measure) against a fake
# server (tests/integration/fake_gfserver.py), and the clients against the real gfserver_main.
gf_add_unit_test(NAME test_gfclient SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_gfclient.c
  LIBS gfproto LABELS tsan TIMEOUT 120)
gf_add_script_test(NAME tools_download SCRIPT tests/integration/tools_download.sh
  LABELS tsan TIMEOUT 240)
gf_add_script_test(NAME tools_measure SCRIPT tests/integration/tools_measure.sh
  LABELS tsan TIMEOUT 120)
gf_add_script_test(NAME tools_gfserver_e2e SCRIPT tests/integration/tools_gfserver_e2e.sh
  TIMEOUT 300)
# bench/run.sh in quick mode (2 x 1 s samples of 3 systems), so the benchmark cannot rot; needs
# the bench target (scripts/test.sh builds it) and nginx, else skipped.
gf_add_script_test(NAME bench_smoke SCRIPT tests/integration/bench_smoke.sh TIMEOUT 300)
