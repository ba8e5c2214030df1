#!/usr/bin/env bash
# spin_model.sh - model-checks the chunk handshake (spin/handshake.pml): the real protocol
# (generation check + replacing abandoned segments) has no violation and no deadlock, for K = 2
# and K = 1; without both fences spin finds a chunk of another request accepted. Also records
# that each fence alone is or is not enough (docs/ipc.md).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v spin >/dev/null || die "spin is not installed (apt-get install spin)"
MODEL="$SRC_DIR/spin/handshake.pml"

# run_model NAME [spin -D options...]: prints pan's error count; fails on a truncated search.
run_model() {
    local name=$1 dir="$WORK/$1"
    shift
    mkdir -p "$dir"
    (cd "$dir" && spin -a "$@" "$MODEL" >spin.log 2>&1) || die "$name: spin -a failed: $(cat "$dir/spin.log")"
    (cd "$dir" && cc -O2 -DSAFETY -o pan pan.c >cc.log 2>&1) || die "$name: cc pan.c failed"
    (cd "$dir" && timeout 60 ./pan -m200000 >pan.log 2>&1) || true
    if grep -q 'max search depth too small' "$dir/pan.log"; then
        die "$name: search truncated (raise -m)"
    fi
    local errors
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$dir/pan.log" | head -n1)
    [ -n "$errors" ] || die "$name: no result from pan: $(tail -n 5 "$dir/pan.log")"
    log "$name: errors: $errors, $(grep -m1 'states, stored' "$dir/pan.log" | sed 's/^ *//')"
    echo "$errors" >"$dir/errors"
}

errors_of() { cat "$WORK/$1/errors"; }

run_model real
run_model real_k1 -DK=1
run_model broken -DGEN_CHECK=0 -DREPLACE=0
run_model gen_only -DGEN_CHECK=1 -DREPLACE=0
run_model replace_only -DGEN_CHECK=0 -DREPLACE=1

check "the real protocol: no violation, no deadlock" test "$(errors_of real)" -eq 0
check "the real protocol with one slot (the report's ping-pong)" test "$(errors_of real_k1)" -eq 0
check "without generation check and with reuse, spin finds a foreign chunk accepted" \
    test "$(errors_of broken)" -gt 0
check "the generation check alone does not fence a late writer in a reused segment" \
    test "$(errors_of gen_only)" -gt 0
check "replacing abandoned segments alone keeps chunks apart" test "$(errors_of replace_only)" -eq 0
finish
