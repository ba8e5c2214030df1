# pkg_lib.sh - checks shared by pkg_install.sh and pkg_deb.sh on an installed tree ROOT (a
# DESTDIR or a dpkg root): the exact file list, man pages, units, the example index, and the
# programs run. Source after lib.sh.
# shellcheck shell=bash
: "${PKG_DIR:?PKG_DIR: where pkg_build.sh built}"
: "${GF_VERSION:?GF_VERSION: the project version}"
PKG_BUILD=$PKG_DIR/build
PROGRAMS=(gfclient_download gfclient_measure gfmon gfserver_main simplecached webproxy)
EXPECTED_FILES=$SRC_DIR/tests/integration/pkg_files.txt
[ -x "$PKG_BUILD/bin/webproxy" ] || die "no packaging build in $PKG_BUILD (run integration.pkg_build)"

# check_file_list LIST: LIST (one relative path per line, any order) is exactly pkg_files.txt.
check_file_list() {
    local extra missing
    sort "$EXPECTED_FILES" >"$WORK/expected.sorted"
    sort "$1" >"$WORK/got.sorted"
    extra=$(comm -23 "$WORK/got.sorted" "$WORK/expected.sorted")
    missing=$(comm -13 "$WORK/got.sorted" "$WORK/expected.sorted")
    CHECKS=$((CHECKS + 1))
    [ -z "$extra" ] || fail "files that should not be installed: $(echo $extra)"
    [ -z "$missing" ] || fail "files missing: $(echo $missing)"
}

# man_has_name PAGE PROG: the line after .SH NAME is "PROG \- ...".
man_has_name() {
    zcat "$1" | grep -A1 -x '.SH NAME' | grep -qF "$2 \\- "
}

# check_man ROOT: every program's man page is gzipped troff from help2man with the program's
# name and the project version in its header, a NAME line, its options, and renders with man -l.
check_man() {
    local root=$1 p page th
    for p in "${PROGRAMS[@]}"; do
        page=$root/usr/share/man/man1/$p.1.gz
        th="\.TH ${p^^} \"1\" \"[^\"]+\" \"getfile ${GF_VERSION//./\\.}\" \"User Commands\""
        check "$p.1: .TH header with $p, section 1 and getfile $GF_VERSION" \
            bash -c "zcat '$page' | grep -m1 '^\.TH ' | grep -Eqx '$th'"
        check "$p.1: NAME section" man_has_name "$page" "$p"
        check "$p.1: option -h described" bash -c "zcat '$page' | grep -qF '\\fB\\-h\\fR'"
        if command -v man >/dev/null; then
            check "$p.1: man -l renders it" bash -c \
                "MANWIDTH=80 man -l '$page' 2>/dev/null | grep -q '^NAME'"
        fi
    done
}

# check_units ROOT: the units (and the templates simplecached@ and webproxy@) run the installed daemon as the same user (the IPC names carry
# the uid) with the same private runtime directory, share the host's /dev/shm and mqueue (no
# PrivateIPC=, PrivateDevices=), order
# nothing on each other, and pass systemd-analyze verify (ExecStart pointed into ROOT, man
# pages from ROOT).
check_units() {
    local root=$1 unitdir=$1/usr/lib/systemd/system
    check "units: same user, shared IPC, installed programs" \
        python3 - "$root" "$unitdir/simplecached.service" "$unitdir/webproxy.service" \
        "$unitdir/simplecached@.service" "$unitdir/webproxy@.service" <<'PY'
import os, shlex, sys
root, paths = sys.argv[1], sys.argv[2:]
ok = True
def bad(msg):
    global ok
    ok = False
    print("units:", msg, file=sys.stderr)
units = {}
for path in paths:
    keys, section = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, v = line.split("=", 1)
        keys.setdefault((section, k), []).append(v)
    units[os.path.basename(path)] = keys
users = set()
for name, keys in units.items():
    get = lambda s, k: keys.get((s, k), [None])[-1]
    prog = name.removesuffix(".service").removesuffix("@")
    if name.endswith("@.service"):
        # A template: instance %i of the daemon, with its own options file (docs/ipc.md).
        if shlex.split(get("Service", "ExecStart") or "")[1:3] != ["--instance", "%i"]:
            bad(f"{name}: ExecStart does not pass --instance %i first")
        if get("Service", "EnvironmentFile") != "/etc/default/getfile-%i":
            bad(f"{name}: EnvironmentFile= is not /etc/default/getfile-%i")
    argv0 = shlex.split(get("Service", "ExecStart") or "")[0:1]
    if argv0 != ["/usr/bin/" + prog]:
        bad(f"{name}: ExecStart runs {argv0}, not /usr/bin/{prog}")
    elif not os.access(root + argv0[0], os.X_OK):
        bad(f"{name}: {argv0[0]} is not installed")
    for k in ("PrivateIPC", "PrivateDevices", "PrivateNetwork", "PrivateUsers"):
        if get("Service", k) not in (None, "no", "false"):
            bad(f"{name}: {k}= would give it its own namespace")
    if get("Service", "DynamicUser") != "yes" or not get("Service", "User"):
        bad(f"{name}: no DynamicUser=yes with a User= name")
    users.add((get("Service", "User"), get("Service", "Group")))
    # The registry's private directory (docs/ipc.md): the same one for both, kept, 0700.
    rundir = (get("Service", "RuntimeDirectory"), get("Service", "RuntimeDirectoryMode"),
              get("Service", "RuntimeDirectoryPreserve"))
    if rundir != ("getfile", "0700", "yes"):
        bad(f"{name}: RuntimeDirectory=getfile, Mode=0700, Preserve=yes expected, got {rundir}")
    if "GETFILE_RUNTIME_DIR=%t/getfile" not in keys.get(("Service", "Environment"), []):
        bad(f"{name}: no Environment=GETFILE_RUNTIME_DIR=%t/getfile")
    for k in ("After", "Before", "Requires", "BindsTo", "Wants"):
        for v in keys.get(("Unit", k), []):
            if "simplecached" in v or "webproxy" in v:
                bad(f"{name}: {k}={v}: either may start first")
    if not any(v.startswith(f"man:{prog}(1)") for v in keys.get(("Unit", "Documentation"), [])):
        bad(f"{name}: Documentation= does not name man:{prog}(1)")
if len(users) != 1:
    bad(f"the units run as different users: {users}")
sys.exit(0 if ok else 1)
PY
    if command -v systemd-analyze >/dev/null; then
        mkdir -p "$WORK/units"
        for u in simplecached webproxy simplecached@ webproxy@; do
            sed "s|=/usr/bin/|=$root/usr/bin/|" "$unitdir/$u.service" >"$WORK/units/$u.service"
        done
        check "systemd-analyze verify: no error, no warning" bash -c \
            "MANPATH='$root/usr/share/man' systemd-analyze verify '$WORK'/units/*.service \
             >'$WORK/verify.log' 2>&1 && ! [ -s '$WORK/verify.log' ] || { cat '$WORK/verify.log'; false; }"
    else
        log "systemd-analyze not installed: units checked by the rules above only"
    fi
}

# check_index ROOT: every entry of the example index names an installed file.
check_index() {
    local root=$1 req local n=0
    while read -r req local; do
        [[ -z "$req" || "$req" == \#* ]] && continue
        n=$((n + 1))
        check "example index: $req -> $local is installed" test -f "$root$local"
    done <"$root/usr/share/getfile/locals.txt"
    check "example index has entries" test "$n" -gt 0
}

# check_versions ROOT: every installed program runs: --version prints "PROG (getfile)
# VERSION" and --help its usage, both on stdout with status 0.
check_versions() {
    local root=$1 p out
    for p in "${PROGRAMS[@]}"; do
        out=$("$root/usr/bin/$p" --version 2>&1) || { fail "$p --version: status $? ($out)"; continue; }
        check "$p --version prints '$p (getfile) $GF_VERSION' (got: $out)" \
            test "$out" = "$p (getfile) $GF_VERSION"
        out=$("$root/usr/bin/$p" --help 2>/dev/null) || { fail "$p --help: status $?"; continue; }
        check "$p --help prints its usage" grep -qi "usage: $p" <<<"$out"
    done
}

# check_serves ROOT: the installed simplecached (example index, its local files moved into
# ROOT) and webproxy in cache mode, both run as one unprivileged user as the units run them,
# serve every example file byte for byte to the installed gfclient_download.
check_serves() {
    local root=$1 port cache proxy n=0 req local uid
    local as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    uid=$(id -u nobody)
    chmod 755 "$WORK"
    sed "s|\t/usr/share/|\t$root/usr/share/|" \
        "$root/usr/share/getfile/locals.txt" >"$WORK/locals.txt"
    grep -v '^#' "$WORK/locals.txt" | awk 'NF {print $1}' >"$WORK/workload.txt"
    port=$(free_port)
    spawn cache "${as_user[@]}" "$root/usr/bin/simplecached" -c "$WORK/locals.txt" -t 2
    wait_for 30 test -e "/dev/mqueue/getfile-$uid-$cache-cmd" ||
        die "the installed simplecached created no command queue"
    spawn proxy "${as_user[@]}" "$root/usr/bin/webproxy" -p "$port" -t 2 -n 2 -z 65536
    wait_port "$port"
    mkdir -p "$WORK/dl"
    check "gfclient_download through the installed webproxy and simplecached" bash -c \
        "cd '$WORK/dl' && '$root/usr/bin/gfclient_download' -p $port -t 2 -w ../workload.txt >../dl.log 2>&1"
    while read -r req local; do
        [[ -z "$req" || "$req" == \#* ]] && continue
        n=$((n + 1))
        check "$req served byte for byte" cmp -s "$WORK/dl/${req#/}" "$local"
    done <"$WORK/locals.txt"
    check "files served" test "$n" -gt 0
    check "webproxy stops cleanly" stop "$proxy"
    check "simplecached stops cleanly" stop "$cache"
    assert_no_ipc_left
}
