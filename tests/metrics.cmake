# metrics.cmake - the Prometheus endpoint (src/metrics/): the text writer, the HTTP side, and
# both daemons scraped by promtool and by a real Prometheus server.
gf_add_unit_test(NAME test_prom_text SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_prom_text.c
                 LIBS gfmetrics)
gf_add_script_test(NAME metrics_scrape SCRIPT tests/integration/metrics_scrape.sh TIMEOUT 180
                   LABELS tsan)
gf_add_script_test(NAME metrics_prometheus SCRIPT tests/integration/metrics_prometheus.sh
                   TIMEOUT 240)
gf_add_unit_test(NAME test_metrics_stats SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_metrics_stats.c
                 LIBS gfmetrics)
