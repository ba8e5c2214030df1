#!/usr/bin/env python3
"""sock_conns.py SOCKET N PATH - a peer of the fd backend's socket that opens N connections,
asks PATH once on each (request, 64-byte answer, the passed descriptor closed) and keeps them
all open and idle. Prints how many answered OK and, after a pause of 1 s, how many of them the
cache has closed since (EOF). Exits 0 unless a connection could not be made or answered.
Used by cache_fd_keep.sh: the cache keeps at most CONN_MAX (256) connections open."""
import os
import socket
import struct
import sys
import time

REQ_MAGIC, RESP_MAGIC, VERSION, FD = 0x51534647, 0x52534647, 1, 3


def ask(s, path):
    p = path.encode()
    s.sendall(struct.pack("=IHHII", REQ_MAGIC, VERSION, FD, len(p), 0) + p)
    got, fds = b"", []
    while len(got) < 64:
        data, more, _, _ = socket.recv_fds(s, 64 - len(got), 4)
        if not data:
            raise EOFError("closed before the answer")
        got += data
        fds += more
    for fd in fds:
        os.close(fd)
    magic, _, _, status = struct.unpack_from("=IHHI", got)
    return magic == RESP_MAGIC and status == 0


def main():
    path, n, req = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    conns, ok = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        ok += ask(s, req)
        conns.append(s)
    time.sleep(1)
    closed = 0
    for s in conns:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print(f"ok {ok} closed {closed}")


main()
