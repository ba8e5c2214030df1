#!/usr/bin/env bash
# pkg_build.sh - the build the packaging tests install and package (fixture "pkg"): the "deb"
# preset (Release, prefix /usr, BUILD_TESTING off) into $PKG_DIR/build. A release build builds
# the six programs and their man pages only: no unit test, fuzzer, bench tool or test helper,
# and no test is registered.
source "$(dirname "$0")/lib.sh"
: "${PKG_DIR:?PKG_DIR: where the packaging build goes}"

PROGRAMS="gfclient_download gfclient_measure gfctl gfmon gfserver_main simplecached webproxy"
build=$PKG_DIR/build
mkdir -p "$PKG_DIR"
log "configuring and building the deb preset into $build"
(cd "$SRC_DIR" && cmake --preset deb -B "$build" -DWERROR=ON) >"$WORK/configure.log" 2>&1 ||
    { cat "$WORK/configure.log"; die "configure failed"; }
cmake --build "$build" -j "$(nproc)" >"$WORK/build.log" 2>&1 ||
    { tail -n 40 "$WORK/build.log"; die "build failed"; }

built=$(cd "$build/bin" && ls | sort | tr '\n' ' ')
check "the release build builds exactly the programs (got: $built)" \
    test "$built" = "$PROGRAMS "
check "BUILD_TESTING is off in the deb preset" \
    grep -qx 'BUILD_TESTING:BOOL=OFF' "$build/CMakeCache.txt"
check "no test is registered in the release build" \
    bash -c "cd '$build' && ctest -N | grep -qx 'Total Tests: 0'"
for p in $PROGRAMS; do
    check "man page of $p generated" test -s "$build/packaging/man/$p.1.gz"
done
finish
