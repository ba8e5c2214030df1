#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""rel_scribble.py - damages the proxy's data segments in the middle of a transfer.

usage: rel_scribble.py PORT PROXY_PID CACHE_PID BIG SMALL SLOT_STRIDE [--sysv]

For every damage below: starts a download of /huge (the file BIG), reads 64 KiB and stops
reading, so the transfer is in flight; applies the damage to every segment of PROXY_PID in
/dev/shm; reads on. The download must end within 30 s either byte-exact or short (never
complete with wrong bytes); both daemons must still run; and the next downloads of /small and
/huge must be byte-exact. A thread downloads /small all along (load), each either byte-exact or
failed. Damages: truncation to 0, 100, 256 and 4096 bytes; 0xff, then 0x00, over each 8-byte
word of the segment header (256 bytes) and of the first two slot headers (64 bytes each, the
second SLOT_STRIDE bytes after the first). Prints one line per damage and a summary; exits 1 on
any violation.
--sysv: the segments are the System V ones PROXY_PID created (/proc/sysvipc/shm, already marked
for removal, still attachable by id), written through shmat; no truncation (a System V segment's
size is fixed at shmget: nobody can shrink it under a mapping)."""
import ctypes
import glob
import os
import socket
import sys
import threading
import time

HDR_SPACE, SLOT_HDR = 256, 64
SYSV = False


def download(port, path, pause_after=None, on_pause=None, timeout=30.0):
    """Returns (status, body): status "ok" (OK header and every byte), "short", "notok"."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GETFILE GET " + path.encode() + b"\r\n\r\n")
    parts, got, paused, deadline = [], 0, False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if pause_after is not None and not paused and got >= pause_after:
                paused = True
                on_pause()
            b = s.recv(1 << 16)
            if not b:
                break
            parts.append(b)  # not buf += b: quadratic for a 24 MiB body
            got += len(b)
    except OSError:
        pass
    finally:
        s.close()
    buf = b"".join(parts)
    end = buf.find(b"\r\n\r\n")
    if not buf.startswith(b"GETFILE OK ") or end < 0:
        return "notok", b""
    length = int(buf[11:end])
    body = buf[end + 4:]
    return ("ok" if len(body) == length else "short"), body


def segments(pid):
    return sorted(glob.glob("/dev/shm/getfile-%d-%d-seg*" % (os.getuid(), pid)))


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.shmat.restype = ctypes.c_void_p
LIBC.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
LIBC.shmdt.argtypes = [ctypes.c_void_p]


def sysv_segments(pid):
    """shmids of the System V segments pid created, of our uid."""
    ids = []
    with open("/proc/sysvipc/shm") as f:
        next(f)
        for line in f:
            c = line.split()
            if int(c[4]) == pid and int(c[7]) == os.getuid():
                ids.append(int(c[1]))
    return ids


def sysv_damage(arg):
    def apply(pid):
        for shmid in sysv_segments(pid):
            addr = LIBC.shmat(shmid, None, 0)
            if addr is None or addr == ctypes.c_void_p(-1).value:
                continue  # replaced meanwhile
            ctypes.memset(addr + arg[0], arg[1], 8)
            LIBC.shmdt(addr)
    return apply


def damage(kind, arg):
    if SYSV:
        return sysv_damage(arg)

    def apply(pid):
        for path in segments(pid):
            try:
                with open(path, "r+b") as f:
                    if kind == "truncate":
                        f.truncate(arg[0])
                    else:
                        f.seek(arg[0])
                        f.write(bytes([arg[1]]) * 8)
            except OSError:
                pass  # replaced meanwhile
    return apply


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def main(argv):
    port, ppid, cpid = int(argv[1]), int(argv[2]), int(argv[3])
    big, small = open(argv[4], "rb").read(), open(argv[5], "rb").read()
    stride = int(argv[6])
    global SYSV
    SYSV = "--sysv" in argv[7:]
    damages = [] if SYSV else [("truncate", (n,)) for n in (0, 100, HDR_SPACE, 4096)]
    offsets = list(range(0, HDR_SPACE, 8))
    offsets += [HDR_SPACE + o for o in range(0, SLOT_HDR, 8)]
    offsets += [HDR_SPACE + stride + o for o in range(0, SLOT_HDR, 8)]
    damages += [("write", (o, v)) for o in offsets for v in (0xff, 0x00)]
    only = os.environ.get("SCRIBBLE_ONLY")  # e.g. "write 40,0": one damage, for debugging
    if only:
        damages = [d for d in damages if "%s %s" % (d[0], ",".join(map(str, d[1]))) == only]

    stop = threading.Event()
    load = {"ok": 0, "failed": 0, "wrong": 0}

    def loader():
        while not stop.is_set():
            try:
                st, body = download(port, "/small", timeout=30.0)
            except OSError:
                st, body = "notok", b""
            if st == "ok":
                load["ok" if body == small else "wrong"] += 1
            else:
                load["failed"] += 1

    t = threading.Thread(target=loader)
    t.start()
    bad = 0
    outcomes = {}
    for kind, arg in damages:
        what = "%s %s" % (kind, ",".join(str(a) for a in arg))
        t0 = time.monotonic()
        st, body = download(port, "/huge", 65536, lambda: damage(kind, arg)(ppid))
        secs = time.monotonic() - t0
        why = []
        if st == "ok" and body != big:
            why.append("complete but wrong bytes")
        if secs > 30:
            why.append("took %.1fs" % secs)
        if not alive(ppid) or not alive(cpid):
            why.append("a daemon died")
            print("FAIL %s: %s" % (what, ", ".join(why)))
            bad += 1
            break
        for name, want in (("/small", small), ("/huge", big)):
            st2, body2 = download(port, name)
            if st2 != "ok" or body2 != want:
                why.append("next %s: %s" % (name, st2))
        outcomes[st] = outcomes.get(st, 0) + 1
        print("%s %s: %s in %.2fs%s" % ("FAIL" if why else "ok", what, st, secs,
                                          (": " + ", ".join(why)) if why else ""))
        bad += bool(why)
    stop.set()
    t.join()
    if load["wrong"]:
        print("FAIL background /small downloads with wrong bytes: %d" % load["wrong"])
        bad += 1
    print("scribble damages=%d bad=%d outcomes=%s load=%s" % (len(damages), bad, outcomes, load))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
