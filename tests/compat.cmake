# compat.cmake - compatibility with the course's prebuilt GETFILE programs (the older response
# framing, docs/protocol.md): their client, emulated, against our servers with --framing legacy;
# their server, emulated, against our load clients.
gf_add_script_test(NAME compat_legacy_clients SCRIPT tests/integration/compat_legacy_clients.sh
  TIMEOUT 300)
gf_add_script_test(NAME compat_legacy_server SCRIPT tests/integration/compat_legacy_server.sh
  TIMEOUT 120)
