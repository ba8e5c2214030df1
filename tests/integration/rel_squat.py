#!/usr/bin/env python3
"""rel_squat.py - the other user of rel_squat.sh: takes every name of a victim uid it can see or
guess in the shared namespaces, before the victim's daemons start and while they run.

  rel_squat.py --uid U [--cache PID] [--proxy PID] [--watch] [--segments N] [--sysv]
               [--sock DIR]

Before: the registry's old name /dev/shm/getfile-U-cache (a file of mode 0666), the last-resort
runtime directory /dev/shm/getfile-U (a directory of mode 0777), the old abstract socket name of
the cache's instance lock (bound and held), the stats object names of both pids, for a cache PID
its queue's plain name (created in /dev/mqueue, mode 0666), for a proxy PID its segment names seg1..segN (files of mode 0666) and
segN+1 as a symlink to /etc/passwd. Prints "ready" once all that is in place.
--watch: then, until SIGTERM, every 20 ms takes the next 20 segment serials after the highest
of uid U's own segments of each proxy it sees, and the plain queue name of every such pid.
--sysv (the sysv backend): also the System V queue key of the cache's pid (0x67 << 24 | PID,
mode 0666) and 256 random segment keys of ours (0x67 << 24 | 1 << 22 | serial); with --watch,
every round the queue keys of the next 20 pids the kernel will give.
--sock DIR (the unix and fd backends): tries to bind and to connect the cache's socket names in
DIR (the victim's 0700 runtime directory), and to unlink them, and prints how many were refused;
with --watch, again every round while the daemons run.
Never removes anything; rel_squat.sh removes it all as root afterwards."""
import argparse
import ctypes
import random
import os
import re
import signal
import socket
import sys
import time

stop = False


def on_term(*_):
    global stop
    stop = True


def make_file(path, mode=0o666):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.fchmod(fd, mode)
        os.close(fd)
        return True
    except FileExistsError:
        return False
    except OSError as e:  # a limit of the squatter's (queues_max, RLIMIT_MSGQUEUE): noted
        print(f"cannot make {path}: {e.strerror}", file=sys.stderr)
        return False


def make_queue(uid, pid):
    # The mqueue file system creates a queue for an open(O_CREAT) of a name in it.
    return make_file(f"/dev/mqueue/getfile-{uid}-{pid}-cmd")


LIBC = ctypes.CDLL(None, use_errno=True)
IPC_CREAT, IPC_EXCL = 0o1000, 0o2000


def sysv_key(kind, low):
    key = 0x67 << 24 | kind << 22 | low
    return key - (1 << 32) if key >= 1 << 31 else key  # key_t is a signed int


def make_sysv_queue(pid):
    return LIBC.msgget(sysv_key(0, pid), IPC_CREAT | IPC_EXCL | 0o666) >= 0


def make_sysv_segs(n):
    made = 0
    for _ in range(n):
        made += LIBC.shmget(sysv_key(1, random.randint(1, (1 << 22) - 1)), ctypes.c_size_t(4096),
                            IPC_CREAT | IPC_EXCL | 0o666) >= 0
    return made


def try_sockets(u, d):
    """Binds, connects and unlinks the cache's socket names in d: returns (refused, tries)."""
    refused = tries = 0
    for be in ("unix", "fd"):
        path = f"{d}/getfile-{u}-{be}.sock"
        for op in ("bind", "connect", "unlink"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            tries += 1
            try:
                if op == "unlink":
                    os.unlink(path)
                else:
                    getattr(s, op)(path)
            except PermissionError:
                refused += 1
            except OSError:
                pass
            finally:
                s.close()
    return refused, tries


def abstract_name(uid):
    ns = os.stat("/proc/self/ns/ipc").st_ino
    dev = os.stat("/dev/shm").st_dev
    return b"\0" + f"getfile-{uid}-cache-{ns:x}-{dev:x}".encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uid", type=int, required=True)
    ap.add_argument("--cache", type=int)
    ap.add_argument("--proxy", type=int)
    ap.add_argument("--segments", type=int, default=64)
    ap.add_argument("--watch", action="store_true")
    ap.add_argument("--sysv", action="store_true")
    ap.add_argument("--sock")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    u = a.uid
    made = 0
    made += make_file(f"/dev/shm/getfile-{u}-cache")
    try:
        os.mkdir(f"/dev/shm/getfile-{u}")
        os.chmod(f"/dev/shm/getfile-{u}", 0o777)
        made += 1
    except FileExistsError:
        pass
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        held.bind(abstract_name(u))
        held.listen(4)
        made += 1
    except OSError:
        pass  # taken already (by an earlier squatter of this test)
    for pid in (a.cache, a.proxy):
        if pid:
            made += make_file(f"/dev/shm/getfile-{u}-{pid}-stats")
    if a.cache:
        made += make_queue(u, a.cache)
    if a.proxy:
        for i in range(1, a.segments + 1):
            made += make_file(f"/dev/shm/getfile-{u}-{a.proxy}-seg{i}")
        try:
            os.symlink("/etc/passwd", f"/dev/shm/getfile-{u}-{a.proxy}-seg{a.segments + 1}")
            made += 1
        except FileExistsError:
            pass
    if a.sysv:
        if a.cache:
            made += make_sysv_queue(a.cache)
        made += make_sysv_segs(256)
    if a.sock:
        refused, tries = try_sockets(u, a.sock)
        print(f"sockets refused {refused} of {tries}", flush=True)
    print(f"ready {made}", flush=True)
    if not a.watch:
        return 0
    seg = re.compile(rf"^getfile-{u}-([1-9][0-9]*)-seg([0-9]+)$")
    taken = 0
    guessed = set()
    sock_refused = sock_tries = 0
    while not stop:
        if a.sock:
            r, n = try_sockets(u, a.sock)
            sock_refused, sock_tries = sock_refused + r, sock_tries + n
        top = {}
        for name in os.listdir("/dev/shm"):
            m = seg.match(name)
            try:
                if not m or os.lstat(f"/dev/shm/{name}").st_uid != u:
                    continue
            except OSError:
                continue
            # The victim's own segments: the highest serial of its counter (not a random one).
            pid, serial = int(m[1]), int(m[2])
            top[pid] = max(top.get(pid, 0), serial if serial < 1 << 20 else 0)
        for pid, serial in top.items():
            for s in range(serial + 1, serial + 21):
                taken += make_file(f"/dev/shm/getfile-{u}-{pid}-seg{s}")
            taken += make_queue(u, pid)
        if a.sysv:
            with open("/proc/sys/kernel/ns_last_pid") as f:
                last = int(f.read())
            for pid in range(last + 1, last + 21):
                if pid not in guessed:
                    guessed.add(pid)
                    taken += make_sysv_queue(pid)
        time.sleep(0.02)
    if a.sock:
        print(f"sockets refused {sock_refused} of {sock_tries} while the daemons ran", flush=True)
    print(f"stopped; took {taken} names while the daemons ran", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
