# Scale-out (deploy/): N nodes behind HAProxy (GETFILE) and nginx (HTTP), placement by the
# request path, a node stopped and restarted under load.
gf_add_script_test(NAME scale_haproxy SCRIPT tests/integration/scale_haproxy.sh TIMEOUT 300)
gf_add_script_test(NAME scale_nginx SCRIPT tests/integration/scale_nginx.sh TIMEOUT 300)
add_test(NAME scale_model COMMAND python3 ${PROJECT_SOURCE_DIR}/bench/scale_model.py --selftest)
