#!/usr/bin/env bash
# pkg_deb.sh - `cpack -G DEB` of the release build gives a package whose Depends (from
# dpkg-shlibdeps) name libc6, libcurl4 and libmicrohttpd12 and are satisfied on this Debian,
# whose contents are exactly pkg_files.txt (no test program), and which dpkg installs into a
# scratch root from where its programs run and serve.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pkg_lib.sh"

log "cpack -G DEB from $PKG_BUILD"
(cd "$WORK" && cpack -G DEB --config "$PKG_BUILD/CPackConfig.cmake" -B "$WORK/out") \
    >"$WORK/cpack.log" 2>&1 || { cat "$WORK/cpack.log"; die "cpack failed"; }
debs=("$WORK"/out/getfile_*.deb)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || die "no single getfile_*.deb in $WORK/out"
deb=${debs[0]}
check "package name and version" test "$(dpkg-deb -f "$deb" Package Version | tr '\n' ' ')" \
    = "Package: getfile Version: $GF_VERSION "
check "architecture is this machine's" test "$(dpkg-deb -f "$deb" Architecture)" \
    = "$(dpkg --print-architecture)"

# Depends: computed by dpkg-shlibdeps, and every one satisfied by what this machine has.
depends=$(dpkg-deb -f "$deb" Depends)
log "Depends: $depends"
check "Depends names libcurl4" grep -Eq '(^|, )libcurl4( |,|$)' <<<"$depends"
check "Depends names libmicrohttpd12" grep -Eq '(^|, )libmicrohttpd12( |,|$)' <<<"$depends"
check "Depends names libc6" grep -Eq '(^|, )libc6( |,|$)' <<<"$depends"
check "Depends names libncursesw6 (gfmon)" grep -Eq '(^|, )libncursesw6( |,|$)' <<<"$depends"
IFS=, read -ra deps <<<"$depends"
for d in "${deps[@]}"; do
    d=${d# }
    # One alternative suffices; dpkg-shlibdeps writes "pkg (>= version)".
    ok=0
    IFS='|' read -ra alts <<<"$d"
    for a in "${alts[@]}"; do
        read -r name op ver <<<"$(sed -E 's/^ *([^ ]+) *(\(([<>=]+) *([^)]+)\))? *$/\1 \3 \4/' <<<"$a")"
        have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null) || continue
        [[ "$have" == "install ok installed "* ]] || continue
        [ -z "$op" ] || dpkg --compare-versions "${have##* }" "$op" "$ver" || continue
        ok=1
    done
    check "dependency '$d' is satisfied here" test "$ok" -eq 1
done

# Contents: exactly the expected files, from the archive's own listing.
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./||; /[^/]$/p' >"$WORK/files.txt"
check_file_list "$WORK/files.txt"

# Installed by dpkg into a scratch root (its Depends are the host's, checked above).
root=$WORK/dpkgroot
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
check "dpkg --root installs the package" bash -c \
    "dpkg --root='$root' --force-depends --force-script-chrootless -i '$deb' >'$WORK/dpkg.log' 2>&1 || { cat '$WORK/dpkg.log'; false; }"
check "dpkg knows it installed" bash -c \
    "dpkg --root='$root' -s getfile | grep -qx 'Status: install ok installed'"
check_man "$root"
check_units "$root"
check_index "$root"
check_versions "$root"
check_serves "$root"
finish
