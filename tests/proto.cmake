# GETFILE wire format (gf_proto): parser and formatter unit tests. Fuzzers: tests/fuzz/.
gf_add_unit_test(NAME test_gf_proto SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_gf_proto.c LIBS gfproto)
