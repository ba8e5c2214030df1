#!/usr/bin/env python3
# legacy_server.py - an emulation of the course's prebuilt GETFILE server (the older framing),
# from the facts users rely on: it reads the request until the last byte read is "\n", matches
# scheme and method case-insensitively, answers "GETFILE OK <len> " + the bytes,
# "GETFILE FILE_NOT_FOUND 0\n" or "GETFILE ERROR 0\n", and then waits for the client to close
# before it closes its side.
# SPDX-License-Identifier: MIT
#
# usage: legacy_server.py PORT ROOT [--error PATH]... [--hold S]
#   ROOT        files are served from ROOT + request path; a missing one is FILE_NOT_FOUND
#   --error P   answer ERROR for path P
#   --hold S    longest wait for the client's close after a response (default 60)
# Prints "listening" once bound, and for every connection one line
# "served <path> <status> closed_by_client=<0|1> waited_ms=<ms>" (flushed).
import argparse
import os
import socket
import socketserver
import sys
import threading
import time

lock = threading.Lock()


def say(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(10)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                return
            buf += chunk
        if not buf.endswith(b"\r\n\r\n"):
            # One read can end in the first "\r\n" of the terminator: wait for the second.
            while not buf.endswith(b"\r\n\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    return
                buf += chunk
        parts = buf[:-4].split(b" ", 2)
        if len(parts) != 3 or parts[0].upper() != b"GETFILE" or parts[1].upper() != b"GET":
            sock.sendall(b"GETFILE INVALID 0\n")
            status, path = "INVALID", "-"
        else:
            path = parts[2].decode("ascii", "replace")
            local = os.path.join(self.server.root, path.lstrip("/"))
            if path in self.server.errors:
                sock.sendall(b"GETFILE ERROR 0\n")
                status = "ERROR"
            elif not os.path.isfile(local):
                sock.sendall(b"GETFILE FILE_NOT_FOUND 0\n")
                status = "FILE_NOT_FOUND"
            else:
                with open(local, "rb") as f:
                    data = f.read()
                sock.sendall(b"GETFILE OK %d " % len(data))
                sock.sendall(data)
                status = "OK"
        # Wait for the client to close first (bounded).
        t0 = time.monotonic()
        closed = 0
        sock.settimeout(self.server.hold)
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    closed = 1
                    break
        except (socket.timeout, ConnectionResetError):
            closed = 0 if time.monotonic() - t0 >= self.server.hold else 1
        waited = int((time.monotonic() - t0) * 1000)
        say("served %s %s closed_by_client=%d waited_ms=%d" % (path, status, closed, waited))


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("root")
    ap.add_argument("--error", action="append", default=[])
    ap.add_argument("--hold", type=float, default=60.0)
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.root = a.root
    srv.errors = set(a.error)
    srv.hold = a.hold
    say("listening")
    srv.serve_forever()


if __name__ == "__main__":
    main()
