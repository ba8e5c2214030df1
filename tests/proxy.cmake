# webproxy: origin mode (libcurl) unit and integration tests. Cache-mode tests live in cache.cmake.
gf_add_unit_test(NAME test_origin_url SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_origin_url.c
  LIBS gfproxy)

gf_add_script_test(NAME proxy_args SCRIPT tests/integration/proxy_args.sh TIMEOUT 60)
gf_add_script_test(NAME proxy_origin_files SCRIPT tests/integration/proxy_origin_files.sh
  TIMEOUT 240)
gf_add_script_test(NAME proxy_origin_faults SCRIPT tests/integration/proxy_origin_faults.sh
  TIMEOUT 240)
gf_add_script_test(NAME proxy_origin_parallel SCRIPT tests/integration/proxy_origin_parallel.sh
  TIMEOUT 120)
gf_add_script_test(NAME proxy_origin_keepalive SCRIPT tests/integration/proxy_origin_keepalive.sh
  TIMEOUT 120)
gf_add_script_test(NAME proxy_origin_bigfile SCRIPT tests/integration/proxy_origin_bigfile.sh
  TIMEOUT 600)
gf_add_script_test(NAME proxy_combined SCRIPT tests/integration/proxy_combined.sh TIMEOUT 120)
gf_add_script_test(NAME proxy_cache_fallback SCRIPT tests/integration/proxy_cache_fallback.sh
  TIMEOUT 180)
# Threads write lines and reopen the log concurrently: worth the TSan build too.
gf_add_script_test(NAME proxy_access_log SCRIPT tests/integration/proxy_access_log.sh
  TIMEOUT 240 LABELS tsan)
gf_add_script_test(NAME proxy_origin_retry SCRIPT tests/integration/proxy_origin_retry.sh
  TIMEOUT 120)
# The HTTP/1.1 front end (webproxy --http) in cache and origin mode; its threads hand bytes
# over to libmicrohttpd's: worth the TSan build too.
gf_add_script_test(NAME http_front SCRIPT tests/integration/http_front.sh TIMEOUT 240 LABELS tsan)
gf_add_script_test(NAME http_wrk SCRIPT tests/integration/http_wrk.sh TIMEOUT 120)
