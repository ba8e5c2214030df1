# lib.sh - sourced by the bench scripts (run.sh, ipc_lab.sh, segclasses.sh): scripts/isolate.sh
# (private namespaces, processes stopped by PID, ports, waits) and the benchmark's files.
# shellcheck shell=bash
# shellcheck source=scripts/isolate.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/isolate.sh"

# make_set INDEX WORKLOAD COUNT SIZE PREFIX: COUNT files of SIZE random bytes, $WORK/files/f/
# PREFIX0.., each indexed in $WORK/files/INDEX ("/f/NAME f/NAME") and listed in $WORK/WORKLOAD.
make_set() {
    local i
    : >"$WORK/$2"
    for ((i = 0; i < $3; i++)); do
        head -c "$4" /dev/urandom >"$WORK/files/f/$5$i"
        echo "/f/$5$i f/$5$i" >>"$WORK/files/$1"
        echo "/f/$5$i" >>"$WORK/$2"
    done
}
