#!/usr/bin/env bash
# pkg_install.sh - `cmake --install` of the release build into a DESTDIR installs exactly the
# five programs, their man pages, the systemd units (two, and their instance templates), the
# example index with its files and
# the docs (pkg_files.txt), nothing else (no test program); the man pages render, the units
# verify, the index names installed files, and the installed programs run and serve.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pkg_lib.sh"

root=$WORK/root
log "cmake --install $PKG_BUILD with DESTDIR=$root"
DESTDIR=$root cmake --install "$PKG_BUILD" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; die "cmake --install failed"; }
(cd "$root" && find . -mindepth 1 ! -type d -printf '%P\n') >"$WORK/files.txt"
check_file_list "$WORK/files.txt"
check_man "$root"
check_units "$root"
check_index "$root"
check_versions "$root"
check_serves "$root"

# The prefix given at install time is the one the units and the example index name.
alt=$WORK/alt
DESTDIR=$alt cmake --install "$PKG_BUILD" --prefix /opt/getfile >"$WORK/install-alt.log" 2>&1 ||
    { cat "$WORK/install-alt.log"; die "cmake --install --prefix /opt/getfile failed"; }
check "--prefix /opt/getfile: the unit runs /opt/getfile/bin/simplecached" grep -qx \
    'ExecStart=/opt/getfile/bin/simplecached $SIMPLECACHED_OPTS' \
    "$alt/opt/getfile/lib/systemd/system/simplecached.service"
check "--prefix /opt/getfile: the unit reads /opt/getfile/share/getfile/locals.txt" grep -qF \
    -- '-c /opt/getfile/share/getfile/locals.txt' "$alt/opt/getfile/lib/systemd/system/simplecached.service"
check "--prefix /opt/getfile: the index names /opt/getfile/share/getfile/files/hello.txt" grep -qP \
    '^/hello.txt\t/opt/getfile/share/getfile/files/hello.txt$' "$alt/opt/getfile/share/getfile/locals.txt"

# The tree the tests were built in (BUILD_TESTING on: unit tests, fuzz or fault-injection
# programs and helpers built) installs the same files: no test program.
testing=$WORK/testing
DESTDIR=$testing cmake --install "$BUILD_DIR" --prefix /usr >"$WORK/install-testing.log" 2>&1 ||
    { cat "$WORK/install-testing.log"; die "cmake --install of $BUILD_DIR failed"; }
check "the test build has test programs (unit tests) to leave out" \
    bash -c "ls '$BUILD_DIR'/bin | grep -q '^test_'"
(cd "$testing" && find . -mindepth 1 ! -type d -printf '%P\n') >"$WORK/files-testing.txt"
check_file_list "$WORK/files-testing.txt"
finish
