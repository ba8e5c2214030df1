#!/usr/bin/env bash
# proxy_origin_files.sh - origin mode against python's http.server: byte-exact files from 0 B
# to 64 MiB, 404 and redirects, names that need percent-encoding, dot segments refused.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

CLIENT=(python3 "$SRC_DIR/tests/integration/proxy_client.py")
ROOT=$WORK/origin
mkdir -p "$ROOT/files/sub" "$WORK/dl"
echo "secret outside the base path" >"$ROOT/secret.txt"

# The classic file set, edge sizes, and large files; all under the base path /files.
declare -A SIZES=(
    [empty.bin]=0 [one.bin]=1 [1kb-sample-file-0.png]=1024 [1kb-sample-file-1.html]=1023
    [yellowstone.jpg]=104244 [road.jpg]=138177 [paraglider.jpg]=233174
    [moranabovejacksonlake.jpg]=452231 [sub/odd.bin]=1048583 [ten.bin]=10485760
    [big64.bin]=67108864
)
: >"$WORK/workload.txt"
for name in "${!SIZES[@]}"; do
    make_file "$ROOT/files/$name" "${SIZES[$name]}"
    echo "/$name" >>"$WORK/workload.txt"
done
# Names a URL cannot carry as they are.
SPECIAL=("sp ace.txt" "sub/with space & more.txt" "q?x=1.txt" "h#frag.txt" "pct%41.txt"
    "plus+semi;eq=.txt" "br[a]ck{e}t|^.txt" "quote'\"<>.txt" "back\\slash.txt" "...txt" "a..b"
    "~tilde_-.txt" "%2e%2e")
for i in "${!SPECIAL[@]}"; do
    make_file "$ROOT/files/${SPECIAL[$i]}" $((100 + i * 37))
done

OPORT=$(free_port)
spawn ORIGIN python3 -m http.server --bind 127.0.0.1 "$OPORT" --directory "$ROOT"
wait_port "$OPORT"
PPORT=$(free_port)
spawn PROXY "$BIN_DIR/webproxy" -p "$PPORT" -t 4 -s "http://127.0.0.1:$OPORT/files/"
wait_port "$PPORT"

# 1. Byte-exact files through gfclient_download (4 threads).
(cd "$WORK/dl" && "$BIN_DIR/gfclient_download" -p "$PPORT" -t 4 -w "$WORK/workload.txt" \
    >"$WORK/dl.out" 2>"$WORK/dl.err") || true
check "gfclient_download: all ${#SIZES[@]} ok" grep -q "^ok: ${#SIZES[@]}$" "$WORK/dl.out"
for name in "${!SIZES[@]}"; do
    check "/$name (${SIZES[$name]} B) is byte-exact" cmp -s "$ROOT/files/$name" "$WORK/dl/$name"
done

# 2. Missing files and a directory (the origin redirects /sub to /sub/): FILE_NOT_FOUND.
printf '/nope.txt\n/sub/nope\n/sub\n' >"$WORK/missing.txt"
(cd "$WORK/dl" && "$BIN_DIR/gfclient_download" -p "$PPORT" -t 1 -w "$WORK/missing.txt" \
    >"$WORK/miss.out" 2>"$WORK/miss.err") || true
check "404 and 301 are FILE_NOT_FOUND" grep -q '^not_found: 3$' "$WORK/miss.out"
check "no failure for 404/301" grep -q '^failed: 0$' "$WORK/miss.out"
check "no file for a missing path" test ! -e "$WORK/dl/nope.txt"

# 3. Names that need encoding arrive intact (except '%2e%2e', a dot segment once decoded).
for i in "${!SPECIAL[@]}"; do
    name=${SPECIAL[$i]}
    rc=0
    "${CLIENT[@]}" "$PPORT" "/$name" --out "$WORK/special.$i" >"$WORK/special.$i.out" || rc=$?
    if [ "$name" = "%2e%2e" ]; then
        check "'/$name' refused as a dot segment (rc $rc)" test "$rc" -eq 3
        continue
    fi
    check "'/$name' fetched (rc $rc: $(cat "$WORK/special.$i.out"))" test "$rc" -eq 0
    check "'/$name' is byte-exact" cmp -s "$ROOT/files/$name" "$WORK/special.$i"
done

# 4. Dot segments: FILE_NOT_FOUND, and the origin never sees the request.
DOTS=("/../secret.txt" "/sub/../../secret.txt" "/./one.bin" "/sub/." "/.." "/%2e%2e/secret.txt"
    "/%2E%2e/secret.txt" "/.%2E/secret.txt" "/sub/%2e%2e/%2e%2e/secret.txt" "/..\\secret.txt"
    "/%252e%252e/secret.txt" "/x%2F..%2F..%2Fsecret.txt")
for p in "${DOTS[@]}"; do
    rc=0
    "${CLIENT[@]}" "$PPORT" "$p" >"$WORK/dot.out" || rc=$?
    check "'$p' is FILE_NOT_FOUND (rc $rc: $(cat "$WORK/dot.out"))" test "$rc" -eq 3
done
check "the proxy still serves after the refusals" "${CLIENT[@]}" "$PPORT" /one.bin
ORIGIN_LOG=$(logfile_of "$ORIGIN")
check "no refused request reached the origin" \
    bash -c "! grep -E 'secret|%2[eE]|%252[eE]|/\\.\\.?( |/)' '$ORIGIN_LOG'"
# Control: the origin itself would have served the file outside the base path.
check "control: the origin serves /files/../secret.txt when asked directly" \
    bash -c "curl -s --path-as-is 'http://127.0.0.1:$OPORT/files/../secret.txt' | grep -q secret"

rc=0
stop "$PROXY" TERM 15 || rc=$?
check "webproxy exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
finish
