# Installation and the Debian package (packaging/): a release build configured like the "deb"
# preset (shared by the tests below as the fixture "pkg"), `cmake --install` into a DESTDIR,
# `cpack -G DEB` and the package installed into a scratch dpkg root, and the root-only tests
# skipped (not failed) for an unprivileged user.
set(GF_PKG_ENV PKG_DIR=${PROJECT_BINARY_DIR}/pkg GF_VERSION=${PROJECT_VERSION}
  BUILD_DIR=${PROJECT_BINARY_DIR})

gf_add_script_test(NAME pkg_build SCRIPT tests/integration/pkg_build.sh TIMEOUT 600 LABELS pkg)
set_property(TEST integration.pkg_build APPEND PROPERTY ENVIRONMENT ${GF_PKG_ENV})
set_property(TEST integration.pkg_build PROPERTY FIXTURES_SETUP pkg)

foreach(t install deb)
  gf_add_script_test(NAME pkg_${t} SCRIPT tests/integration/pkg_${t}.sh TIMEOUT 300 LABELS pkg)
  set_property(TEST integration.pkg_${t} APPEND PROPERTY ENVIRONMENT ${GF_PKG_ENV})
  set_property(TEST integration.pkg_${t} PROPERTY FIXTURES_REQUIRED pkg)
endforeach()

gf_add_script_test(NAME skip_unprivileged SCRIPT tests/integration/skip_unprivileged.sh
  TIMEOUT 120)
set_property(TEST integration.skip_unprivileged APPEND PROPERTY ENVIRONMENT
  BUILD_DIR=${PROJECT_BINARY_DIR})

# scripts/demo.sh on this build's programs, in IPC namespaces of its own.
gf_add_script_test(NAME demo_isolated SCRIPT tests/integration/demo_isolated.sh TIMEOUT 180)
