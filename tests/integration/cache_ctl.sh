#!/usr/bin/env bash
# cache_ctl.sh - gfctl against the real simplecached filling from a real origin: purge drops one
# entry and ban a prefix (the next request fetches again: a second origin GET), an index path is
# pinned, reload re-reads the index, a command from another uid is ignored, no cache running
# exits 3, bad paths and usage errors exit 2.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cache_lib.sh
source "$(dirname "$0")/cache_lib.sh"
# shellcheck source=tests/integration/fill_lib.sh
source "$(dirname "$0")/fill_lib.sh"

GFCTL=$BIN_DIR/gfctl
# ctl EXPECTED_RC ARGS...: runs gfctl, output in $WORK/ctl.out; checks its exit status.
ctl() {
    local want=$1 rc=0
    shift
    timeout 30 "$GFCTL" "$@" >"$WORK/ctl.out" 2>&1 || rc=$?
    check "gfctl $*: exit $want (got $rc: $(head -c 300 "$WORK/ctl.out"))" test "$rc" -eq "$want"
}
said() { check "gfctl says '$1' (got: $(cat "$WORK/ctl.out"))" grep -qF -- "$1" "$WORK/ctl.out"; }

add_file /pinned.bin 5000
start_origin
start_fill_cache CACHE
PPORT=$(free_port)
start_proxy PROXY "$PPORT" 4 4 65536

A=/ok/1000/a X=/ok/2000/img/x Y=/ok/3000/img/y
fetch_ok "$PPORT" "$A" 1000
fetch_ok "$PPORT" "$X" 2000
fetch_ok "$PPORT" "$Y" 3000
fetch_ok "$PPORT" "$A" 1000
check "filled: one GET each" test "$(attempts $A)$(attempts $X)$(attempts $Y)" = 111

# Purge: one entry; the next request fetches again, the others stay hits.
ctl 0 purge "$A"
said "purged $A (1 entry)"
fetch_ok "$PPORT" "$A" 1000
check "after purge: a second GET of $A (got $(attempts $A))" test "$(attempts $A)" -eq 2
ctl 0 purge /ok/1000/never-filled
said "purged /ok/1000/never-filled (0 entries)"

# Ban: both entries under the prefix; the one outside it stays.
ctl 0 ban /ok/
said "banned /ok/ (3 entries)"
fetch_ok "$PPORT" "$X" 2000
fetch_ok "$PPORT" "$Y" 3000
fetch_ok "$PPORT" "$A" 1000
check "after ban: each fetched again (got $(attempts $X) $(attempts $Y) $(attempts $A))" \
    test "$(attempts $X)$(attempts $Y)$(attempts $A)" = 223
ctl 0 ban /ok/2000/img/
said "banned /ok/2000/img/ (1 entry)"
fetch_ok "$PPORT" "$X" 2000
fetch_ok "$PPORT" "$A" 1000
check "ban of /ok/2000/img/: $X fetched again, $A still a hit (got $(attempts $X) $(attempts $A))" \
    test "$(attempts $X)$(attempts $A)" = 33

# Purge and ban cut a fill in progress (the origin paused mid-body): its readers finish, a
# request after the purge does not join it (it fetches again), and its body is not kept.
P1=/pause/200000/1000/purge P2=/pause/200000/1000/ban/x
attempts_at_least() { [ "$(attempts "$1")" -ge "$2" ]; }
# paused_client VAR PATH N: a client of PATH; returns once the origin has N requests for PATH
# (the fill waits there); sets VAR (pid).
paused_client() {
    local __p
    spawn __p python3 "$WORK/gfget.py" "$PPORT" "$2" --out "$WORK/$1.out"
    wait_for 20 attempts_at_least "$2" "$3" || fail "$1: no origin request $3 for $2"
    printf -v "$1" '%s' "$__p"
}
# paused_result PID NAME SIZE: the client ended OK with the origin's SIZE bytes.
paused_result() {
    local line
    wait_for 60 eval "! proc_alive $1" || fail "$2 did not end"
    wait "$1" 2>/dev/null || true
    line=$(tail -n 1 "$(logfile_of "$1")")
    check "$2: OK after the release (got: $line)" test "$(status_of "$line")" = OK
    check "$2: the origin's bytes" \
        test "$(sha256sum "$WORK/$2.out" 2>/dev/null | cut -d' ' -f1 || true)" = "$(sha_of "$3")"
}
paused_client C1 "$P1" 1
paused_client C2 "$P2" 1
ctl 0 purge "$P1"
said "purged $P1 (1 entry)"
ctl 0 ban /pause/200000/1000/ban/
said "banned /pause/200000/1000/ban/ (1 entry)"
paused_client C3 "$P1" 2 # not joining the purged fill: a second origin request
touch "$RELEASE"
paused_result "$C1" C1 200000
paused_result "$C2" C2 200000
paused_result "$C3" C3 200000
check "the purged fill was not kept" grep -q "'$P1' was purged while it was filled" "$(logfile_of "$CACHE")"
fetch_ok "$PPORT" "$P1" 200000
check "the fill started after the purge was kept: a hit (got $(attempts "$P1"))" test "$(attempts "$P1")" -eq 2
fetch_ok "$PPORT" "$P2" 200000
check "the banned fill was not kept: fetched again (got $(attempts "$P2"))" test "$(attempts "$P2")" -eq 2

# Index entries are pinned.
ctl 1 purge /pinned.bin
said "pinned"
expect_get "$PPORT" /pinned.bin OK

# Reload picks up an index change.
add_file /new.bin 7000
ctl 0 reload
said "reloaded index: 2 entries"
expect_get "$PPORT" /new.bin OK
check "the reloaded index entry never reached the origin" test "$(attempts /new.bin)" -eq 0

# Another uid. Fully switched (setpriv --reuid), it cannot even see root's registry and queue:
# no cache for it. With real uid 65534 and effective uid 0 it reaches the queue, and the cache,
# which checks every uid of the sender in /proc, ignores it: no answer, the entry stays.
if command -v setpriv >/dev/null; then
    rc=0
    timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups "$GFCTL" -t 1500 purge "$A" \
        >"$WORK/ctl.out" 2>&1 || rc=$?
    check "uid 65534: exit 3 (got $rc: $(cat "$WORK/ctl.out"))" test "$rc" -eq 3
else
    fail "setpriv is missing (util-linux)"
fi
rc=0
timeout 30 python3 -c 'import os, sys; os.setresuid(65534, 0, 0); os.execv(sys.argv[1], sys.argv[1:])' \
    "$GFCTL" -t 1500 purge "$A" >"$WORK/ctl.out" 2>&1 || rc=$?
check "real uid 65534, effective 0: exit 1 (got $rc: $(cat "$WORK/ctl.out"))" test "$rc" -eq 1
said "no answer from the cache"
check "another uid: logged as ignored" grep -q "ignored a control command" "$(logfile_of "$CACHE")"
fetch_ok "$PPORT" "$A" 1000
check "another uid: $A still a hit (got $(attempts $A))" test "$(attempts $A)" -eq 3

# Bad paths and usage errors: exit 2, before any message is sent.
ctl 2
ctl 2 frob
ctl 2 purge
ctl 2 purge relative/path
said "must start with '/'"
ctl 2 ban /a /b
ctl 2 reload /x
ctl 2 -t 0 reload
ctl 2 purge "/$(head -c 5000 /dev/zero | tr '\0' a)"
ctl 2 --bogus reload
ctl 2 --instance "bad/name" reload
ctl 3 --instance other reload
said "no cache running"
ctl 0 --help
said "Exit status"
ctl 0 --version

stop_ok "$PROXY" TERM webproxy
stop_ok "$CACHE" TERM simplecached

# No cache running: exit 3, saying so.
ctl 3 reload
said "no cache running"
stop "$ORIGIN" TERM 5 || true
assert_no_ipc_left
finish
