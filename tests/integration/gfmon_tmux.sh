#!/usr/bin/env bash
# gfmon_tmux.sh - gfmon's screen in a real terminal (tmux, a server of this test's own): at
# 80x24 it fits (a segment map and the transfers in progress when the list is too long), in a
# larger window it lists every segment; a held transfer shows IN_USE with its progress; proxies
# and the cache that start and stop are shown as such and picked up; q quits with status 0 and
# leaves no process behind.
# SPDX-License-Identifier: MIT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cache_lib.sh"

command -v tmux >/dev/null || die "tmux is missing (scripts/deps.sh test)"
SOCK=$WORK/tmux.sock
TM=(tmux -S "$SOCK" -f /dev/null)
BIG=16000000
add_file /small 1000
add_file /big $BIG

# The tmux server is no child of ours: stop it on any exit, then lib.sh's cleanup.
tmux_down() {
    local rc=$?
    "${TM[@]}" kill-server >/dev/null 2>&1 || true
    (exit $rc)
    cleanup
}
trap tmux_down EXIT

screen_has() { "${TM[@]}" capture-pane -p -t mon >"$WORK/screen.txt" && grep -qE -- "$1" "$WORK/screen.txt"; }
screen_lacks() { "${TM[@]}" capture-pane -p -t mon >"$WORK/screen.txt" && ! grep -qE -- "$1" "$WORK/screen.txt"; }
# expect_screen WHAT REGEX: the screen shows REGEX within 20 s.
expect_screen() {
    if wait_for 20 screen_has "$2"; then
        CHECKS=$((CHECKS + 1))
    else
        check "$1" false
        cat "$WORK/screen.txt" >&2
    fi
}

start_cache CPID -t 2
PORT=$(free_port)
start_proxy P1 "$PORT" 4 32 4096

# A shell in the pane runs gfmon and writes its exit status; remain-on-exit keeps the pane.
"${TM[@]}" new-session -d -s mon -x 80 -y 24 \
    "TERM=screen '$BIN_DIR/gfmon' -i 200; echo \$? >'$WORK/gfmon.status'" \; \
    set-option -t mon remain-on-exit on
SH_PID=$("${TM[@]}" display-message -p -t mon '#{pane_pid}')
gfmon_started() {
    GFMON_PID=$(cat "/proc/$SH_PID/task/$SH_PID/children" 2>/dev/null) && [ -n "$GFMON_PID" ]
}
wait_for 20 gfmon_started || die "gfmon did not start in the tmux pane"
GFMON_PID=${GFMON_PID% }
log "gfmon runs as pid $GFMON_PID in a tmux window of 80x24"

expect_screen "80x24: the cache" "^cache  pid $CPID "
expect_screen "80x24: the queue with its bar and rate" \
    "Message queue  depth 0/8  ([.]{10}|(░){10})  rate [0-9]+ msg/s   active 0/2$"
expect_screen "80x24: the proxy" "^proxy  pid $P1 .*32 segments x 4 KiB"
expect_screen "80x24: 32 segments do not fit, so a map of them" "^  segments +[.]{32}$"
"${TM[@]}" capture-pane -p -t mon >"$WORK/screen.txt"
check "80x24: no line wider than 80 characters" python3 -c 'import sys
sys.exit(max(len(l) for l in open(sys.argv[1], encoding="utf-8").read().split("\n")) > 80)' \
    "$WORK/screen.txt"
check "80x24: 24 lines" test "$(wc -l <"$WORK/screen.txt")" -le 24

# A held transfer: IN_USE with a worker and its progress, in the map and in full.
touch "$WORK/hold"
spawn G python3 "$WORK/gfget.py" "$PORT" /big --hold "$WORK/hold" --timeout 60
expect_screen "the held transfer in the map" "^  segments +U[.]{31}$"
expect_screen "the held transfer's line: IN_USE, thread, progress, path" \
    "^  \[0\] seg1 +IN_USE +\(thread [0-9]+, +[0-9]+% xfer\)  /big$"
expect_screen "the cache's worker serving it" "^  \[[01]\] worker +IN_USE +\(proxy $P1, "
expect_screen "active transfers 1" "Active Transfers 1"
cp "$WORK/screen.txt" "$WORK/screen-80x24.txt"
rm -f "$WORK/hold"
rc=0
wait "$G" || rc=$?
check "the held transfer completes (exit $rc)" test $rc -eq 0
expect_screen "the transfer done: every segment FREE again" "^  segments +[.]{32}$"
expect_screen "the hit counted" "hit ratio 100.0%  hit 1 "

# A larger terminal: every segment on its own line.
"${TM[@]}" resize-window -t mon -x 120 -y 50
expect_screen "120x50: every segment listed" "^  \[31\] seg32 +FREE"

# Daemons that start and stop.
PORT2=$(free_port)
start_proxy P2 "$PORT2" 2 2 4096
expect_screen "a new proxy is shown" "^proxy  pid $P2 "
expect_screen "its start is noted" "proxy $P2 started"
stop_ok "$P2" TERM "webproxy $P2"
expect_screen "its stop is noted" "proxy $P2 stopped"
check "the stopped proxy is no longer shown" wait_for 10 screen_lacks "^proxy  pid $P2 "
stop_ok "$CPID" TERM simplecached
expect_screen "the stopped cache: not running" "^cache: not running"
start_cache C2 -t 2
expect_screen "the new cache is picked up" "^cache  pid $C2 "

# q quits with status 0, and nothing of gfmon is left.
"${TM[@]}" send-keys -t mon q
pane_dead() { [ "$("${TM[@]}" display-message -p -t mon '#{pane_dead}')" = 1 ]; }
check "q quits gfmon" wait_for 10 pane_dead
status=$(cat "$WORK/gfmon.status" 2>/dev/null || echo none)
check "gfmon exits 0 on q (got '$status')" test "$status" = 0
gfmon_gone() { ! proc_alive "$GFMON_PID"; }
check "no gfmon process left" wait_for 10 gfmon_gone
SERVER_PID=$("${TM[@]}" display-message -p '#{pid}')
"${TM[@]}" kill-server
gone() { ! kill -0 "$SERVER_PID" 2>/dev/null; }
check "the test's tmux server is gone" wait_for 10 gone
log "the 80x24 screen during the held transfer:"
cat "$WORK/screen-80x24.txt"

stop_ok "$P1" TERM webproxy
stop_ok "$C2" TERM simplecached
assert_no_ipc_left
finish
