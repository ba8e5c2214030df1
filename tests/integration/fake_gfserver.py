#!/usr/bin/env python3
# fake_gfserver.py - a GETFILE server for the client tests: serves files from a directory and
# misbehaves on request. Independent of our own server, so client tests don't rely on it.
# SPDX-License-Identifier: MIT
#
# Prints "GET <path>" on stdout (flushed) for every well-formed request it receives.
#   --cut PATH=N      answer OK with the file's real length, send only N bytes, close
#   --malformed PATH  answer "GETFILE OK notanumber\r\n\r\n"
#   --barrier N       hold every response until N requests are in progress at once (then
#                     release them all, for good); after --barrier-timeout seconds answer ERROR
import argparse
import os
import socket
import socketserver
import sys
import threading

HEADER_MAX = 12 + 4096 + 4
print_lock = threading.Lock()


def say(line):
    with print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Barrier:
    def __init__(self, n, timeout):
        self.n, self.timeout = n, timeout
        self.cond = threading.Condition()
        self.arrived = 0
        self.released = n <= 0

    def wait(self):
        with self.cond:
            self.arrived += 1
            if self.arrived >= self.n:
                self.released = True
                self.cond.notify_all()
            return self.cond.wait_for(lambda: self.released, timeout=self.timeout)


class Handler(socketserver.BaseRequestHandler):
    def read_request(self):
        sock = self.request
        sock.settimeout(10)
        buf = b""
        while b"\r\n\r\n" not in buf:
            if len(buf) > HEADER_MAX:
                return None
            chunk = sock.recv(4096)
            if not chunk:
                return None
            buf += chunk
        head = buf.split(b"\r\n\r\n", 1)[0]
        if not head.startswith(b"GETFILE GET /") or b" " in head[len(b"GETFILE GET "):]:
            return None
        return head[len(b"GETFILE GET "):].decode("ascii", "replace")

    def handle(self):
        cfg = self.server.cfg
        sock = self.request
        try:
            path = self.read_request()
            if path is None:
                sock.sendall(b"GETFILE INVALID\r\n\r\n")
                return
            say("GET " + path)
            if not cfg.barrier.wait():
                say("BARRIER TIMEOUT " + path)
                sock.sendall(b"GETFILE ERROR\r\n\r\n")
                return
            if path in cfg.malformed:
                sock.sendall(b"GETFILE OK notanumber\r\n\r\n")
                return
            local = os.path.normpath(os.path.join(cfg.root, path.lstrip("/")))
            if not local.startswith(cfg.root + os.sep) or not os.path.isfile(local):
                sock.sendall(b"GETFILE FILE_NOT_FOUND\r\n\r\n")
                return
            with open(local, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                count = min(cfg.cut.get(path, size), size)
                sock.sendall(b"GETFILE OK %d\r\n\r\n" % size)
                if count > 0:
                    sock.settimeout(30)
                    sock.sendfile(f, 0, count)
        except OSError as e:
            say("ERROR %s" % e)
        finally:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--cut", action="append", default=[])
    ap.add_argument("--malformed", action="append", default=[])
    ap.add_argument("--barrier", type=int, default=0)
    ap.add_argument("--barrier-timeout", type=float, default=10)
    a = ap.parse_args()
    a.root = os.path.realpath(a.root)
    a.cut = {p: int(n) for p, n in (c.rsplit("=", 1) for c in a.cut)}
    a.malformed = set(a.malformed)
    a.barrier = Barrier(a.barrier, a.barrier_timeout)
    srv = Server((a.host, a.port), Handler)
    srv.cfg = a
    say("LISTENING %d" % a.port)
    srv.serve_forever()


if __name__ == "__main__":
    main()
