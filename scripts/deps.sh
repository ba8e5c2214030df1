#!/usr/bin/env bash
# deps.sh - installs the Debian packages a task needs, only those missing.
# Usage: scripts/deps.sh build|test|bench ...   (sets may be combined)
set -euo pipefail

# help2man: the man pages are generated at build time (-DGF_MAN=OFF builds without them).
# libmicrohttpd-dev: webproxy's HTTP front end (--http) and the daemons' --metrics endpoint.
# libncurses-dev: gfmon's screen (ncursesw).
# zlib1g-dev: the CRC-32 of simplecached's store entries.
build=(build-essential cmake pkg-config libcurl4-openssl-dev libmicrohttpd-dev libncurses-dev zlib1g-dev python3
    help2man)
# dpkg-dev and file: cpack's Depends (dpkg-shlibdeps); man-db: man -l; systemd: systemd-analyze
# verify of the units; tmux: gfmon's screen under test; prometheus, curl: promtool, a real
# server and curl scraping --metrics; haproxy, nginx-light: the balancers of deploy/ under test;
# wrk: load against the HTTP front end.
test=(clang libclang-rt-14-dev clang-format spin valgrind util-linux procps iproute2 wrk
    dpkg-dev file man-db systemd tmux prometheus curl haproxy nginx-light)
bench=(nginx-light wrk gnuplot-nox linux-perf varnish python3-matplotlib)

want=()
for set in "$@"; do
    case "$set" in
    build) want+=("${build[@]}") ;;
    test) want+=("${build[@]}" "${test[@]}") ;;
    bench) want+=("${build[@]}" "${bench[@]}") ;;
    *) echo "deps.sh: unknown set '$set' (build, test, bench)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
