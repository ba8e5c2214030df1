# fill_lib.sh - helpers of the cache_fill*.sh tests: an origin that logs every request
# (fault_origin.py), simplecached filling from it into a store, downloads checked against the
# origin's generated bodies. Source it after lib.sh and cache_lib.sh.
# shellcheck shell=bash

FAULT=$SRC_DIR/tests/integration/fault_origin.py
OLOG=$WORK/origin.log    # one line per origin request: MONOTONIC_SECONDS PATH
RELEASE=$WORK/release    # /pause* waits until this file exists
STORE=$WORK/store
: >"$OLOG"
: >"$CONTENT/locals.txt"

# start_origin: the origin on a free port; sets ORIGIN (pid) and OURL.
start_origin() {
    local port
    port=$(free_port)
    spawn ORIGIN python3 "$FAULT" --port "$port" --log "$OLOG" --release "$RELEASE"
    wait_port "$port"
    OURL=http://127.0.0.1:$port
}

# start_fill_cache VAR [options]: simplecached filling from the origin into $STORE.
start_fill_cache() {
    local __v=$1
    shift
    start_cache "$__v" -t 8 --origin "$OURL" --store-dir "$STORE" -l debug "$@"
}

# attempts PATH: requests the origin received for exactly PATH.
attempts() { awk -v p="$1" '{ sub(/^[^ ]+ /, "") } $0 == p' "$OLOG" | wc -l; }

# cond_attempts PATH WORDS: conditional requests the origin received for PATH whose logged
# conditions contain WORDS (e.g. 'if-none-match="v5000"').
cond_attempts() { awk -v p="$1 " -v w="$2" 'index(substr($0, index($0, " ") + 1), p) == 1 && index($0, w)' "$OLOG" | wc -l; }

sha_of() { python3 "$FAULT" --sha256 "$1"; }

# fetch_ok PORT PATH SIZE: one request answers OK with the SIZE bytes of the origin's body.
fetch_ok() {
    local out="$WORK/dl.$RANDOM" line got
    line=$(gfget "$1" "$2" --out "$out")
    got=$(sha256sum "$out" 2>/dev/null | cut -d' ' -f1)
    rm -f "$out"
    check "GET $2: OK, $3 bytes (got: $line)" test "$(status_of "$line")" = OK
    check "GET $2: the origin's bytes" test "$got" = "$(sha_of "$3")"
}

# expect_status PORT PATH STATUS: one request answers STATUS (OK, FILE_NOT_FOUND, ERROR, SHORT).
expect_status() {
    local line
    line=$(gfget "$1" "$2")
    check "GET $2 answers $3 (got: $line)" test "$(status_of "$line")" = "$3"
}

# store_files: the entry files in the store, one per line.
store_files() { find "$STORE" -maxdepth 1 -type f -name 'e-*' | sort; }
store_tmp_files() { find "$STORE" -maxdepth 1 -type f -name '.tmp-*' | sort; }

# cache_figure KEY: a number of the cache's live figures (gfmon --json), e.g. retries,
# origin_fetches, evictions, store.entries.
cache_figure() {
    "$BIN_DIR/gfmon" --json | python3 -c 'import json, sys
v = json.load(sys.stdin)["cache"]
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}
# figure_is KEY VALUE: for wait_for (gauges are published every 100 ms).
figure_is() { [ "$(cache_figure "$1")" = "$2" ]; }
