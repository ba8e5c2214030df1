#!/usr/bin/env python3
"""cache_conn_idle.py SOCKET BACKEND PATH MODE SECONDS - one connection to the cache's socket
(--ipc unix: BACKEND 2, fd: 3), PATH asked on it (a 0-byte file: no body follows the 64-byte
answer; a passed descriptor is closed at once). Prints one line:
  idle: asks once, then waits up to SECONDS for the cache to close it: "closed T" (seconds
        after the answer) or "open";
  busy: asks every 0.3 s for SECONDS: "open N" (N answers) or "closed N" if the cache closed it.
Exit 1 when a request is not answered OK."""
import os
import socket
import struct
import sys
import time

REQ_MAGIC, RESP_MAGIC, VERSION = 0x51534647, 0x52534647, 1


def ask(s, backend, path):
    p = path.encode()
    s.sendall(struct.pack("=IHHII", REQ_MAGIC, VERSION, backend, len(p), 0) + p)
    got = b""
    while len(got) < 64:
        data, fds, _, _ = socket.recv_fds(s, 64 - len(got), 4)
        for fd in fds:
            os.close(fd)
        if not data:
            return None  # closed
        got += data
    magic, _, _, status = struct.unpack_from("=IHHI", got)
    return magic == RESP_MAGIC and status == 0


def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def main():
    sock, backend, path, mode, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    if not ask(s, backend, path):
        print("not answered")
        return 1
    t0 = time.monotonic()
    if mode == "idle":
        if closed_within(s, secs):
            print("closed %.2f" % (time.monotonic() - t0))
        else:
            print("open")
        return 0
    n = 1
    end = t0 + secs
    while time.monotonic() < end:
        if closed_within(s, 0.3):
            print("closed %d" % n)
            return 0
        s.settimeout(10)
        r = ask(s, backend, path)
        if r is None:
            print("closed %d" % n)
            return 0
        if not r:
            print("not answered")
            return 1
        n += 1
    print("open %d" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
