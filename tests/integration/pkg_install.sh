#!/usr/bin/env bash
# pkg_install.sh - `cmake --install` of the release build into a DESTDIR installs exactly the
# five programs, their man pages, the two systemd units, the example index with its files and
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
finish
