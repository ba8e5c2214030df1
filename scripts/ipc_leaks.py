#!/usr/bin/env python3
"""ipc_leaks.py - names every IPC object of ours that is still there, with the evidence (the
lines of `ls -l /dev/shm`, `ls -l /dev/mqueue` and `ipcs` that show it) and a hint at the likely
cause, read from the object's name (docs/ipc.md: the registry getfile-<uid>-cache in the runtime
directory, /getfile-<uid>-<pid>-cmd[<serial>], /getfile-<uid>-<pid>-seg<serial>,
/getfile-<uid>-<pid>-stats[<serial>]) and from whether its owner process still runs. Runtime
directories looked in: /run/getfile, /run/user/<uid>/getfile, /dev/shm/getfile-<uid> and
$GETFILE_RUNTIME_DIR, and their instance-NAME subdirectories (other instances' registries); the
directories themselves are kept on purpose.

  ipc_leaks.py [--all-users] [--quiet]

Exit status: 0 when nothing of ours is left, 1 when something is (each object on its own
paragraph), 2 on bad usage. Objects of other users are left out unless --all-users."""
import argparse
import os
import pwd
import re
import subprocess
import sys

NAME = re.compile(r"^getfile-(?P<uid>0|[1-9][0-9]{0,9})-(?:(?P<cache>cache)|"
                  r"(?P<pid>[1-9][0-9]{0,9})-(?:(?P<cmd>cmd)(?:[1-9][0-9]{0,9})?|"
                  r"(?P<stats>stats)(?:[1-9][0-9]{0,9})?|seg(?P<serial>0|[1-9][0-9]{0,9})))$")
INSTANCE_DIR = re.compile(r"^instance-[A-Za-z0-9_-]{1,32}$")  # another instance's directory
RUNDIR = re.compile(r"^getfile-(0|[1-9][0-9]{0,9})$")  # /dev/shm's last-resort runtime dirs


def process(pid):
    """'simplecached, still running' for a live pid, None for one that has exited."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f"{f.read().strip()}, still running"
    except OSError:
        return None


def ls_line(directory, name):
    try:
        out = subprocess.run(["ls", "-l", "--time-style=+%H:%M:%S", os.path.join(directory, name)],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        return f"ls -l {directory}: {out}" if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def hint(m, where):
    if m is None:
        return ("a name of our prefix that none of our programs makes: a test's own object, "
                "or another program's; remove it by hand once its creator is known")
    if m["cache"]:
        return ("the cache's registry: simplecached of uid " + m["uid"] + " did not stop "
                "cleanly (SIGKILL, a crash, or a test that never stopped it); the next "
                "simplecached of that user takes it over, or remove it by hand")
    pid = m["pid"]
    alive = process(pid)
    if m["cmd"]:
        kind = "command queue of the cache process"
    elif m["stats"]:
        kind = "stats object (live figures) of the daemon process"
    else:
        kind = f"data segment {m['serial']} of the proxy process"
    if alive:
        return (f"{kind} {pid}, which is {alive}: a test did not stop the process it started "
                "(its trap or stop path), so the object is in use, not leaked yet")
    sweeper = "the next simplecached start" if m["cmd"] else \
        "the next simplecached or webproxy start" if m["stats"] else "the next webproxy start"
    return (f"{kind} {pid}, which has exited without removing it (killed with SIGKILL, "
            f"crashed, or its stop path skipped the unlink); {sweeper} of uid {m['uid']} "
            "sweeps it")


def sysv_objects(uid, all_users):
    """Lines of `ipcs` (queues, segments, semaphore sets) whose owner is uid: none of our
    programs uses System V IPC yet, so every such object named here comes from a test or a
    benchmark of ours or from another program of this user."""
    found = []
    for flag, what in (("-q", "message queue"), ("-m", "shared memory segment"),
                       ("-s", "semaphore set")):
        try:
            out = subprocess.run(["ipcs", flag, "-c"], capture_output=True, text=True,
                                 timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return found
        for line in out.splitlines():
            f = line.split()
            if len(f) < 6 or not f[0].isdigit():
                continue
            try:
                owner = int(f[4]) if f[4].isdigit() else pwd.getpwnam(f[4]).pw_uid
            except KeyError:
                continue
            if all_users or owner == uid:
                found.append((what, f[0], f"ipcs {flag} -c: {line.strip()}"))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--all-users", action="store_true", help="also objects of other users")
    ap.add_argument("--quiet", action="store_true", help="only the exit status")
    a = ap.parse_args()
    uid = os.getuid()
    leaks = []
    dirs = ["/dev/shm", "/dev/mqueue", "/run/getfile"]
    try:
        dirs += [f"/run/user/{u}/getfile" for u in os.listdir("/run/user")]
    except OSError:
        pass
    try:
        dirs += [f"/dev/shm/{d}" for d in os.listdir("/dev/shm") if RUNDIR.match(d)]
    except OSError:
        pass
    if os.environ.get("GETFILE_RUNTIME_DIR"):
        dirs.append(os.environ["GETFILE_RUNTIME_DIR"])
    # Other instances' registries are in instance-NAME under each runtime directory (docs/ipc.md).
    for directory in list(dirs[2:]):
        try:
            dirs += [os.path.join(directory, d) for d in sorted(os.listdir(directory))
                     if INSTANCE_DIR.match(d) and os.path.isdir(os.path.join(directory, d))]
        except OSError:
            pass
    for directory in dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if not name.startswith("getfile-"):
                continue
            if directory == "/dev/shm" and RUNDIR.match(name) and \
                    os.path.isdir(os.path.join(directory, name)):
                continue  # a runtime directory: kept; what is inside is listed
            m = NAME.match(name)
            if m and int(m["uid"]) != uid and not a.all_users:
                continue
            evidence = ls_line(directory, name)
            leaks.append((f"{directory}/{name}", evidence, hint(m, directory)))
    for what, ident, evidence in sysv_objects(uid, a.all_users):
        leaks.append((f"System V {what} id {ident}", evidence,
                      "none of our daemons makes System V objects: a test or benchmark "
                      "that did not remove its own (ipcrm)"))
    if not a.quiet:
        for obj, evidence, why in leaks:
            print(f"leaked: {obj}")
            if evidence:
                print(f"  evidence: {evidence}")
            print(f"  likely cause: {why}")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
