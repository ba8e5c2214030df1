#!/usr/bin/env python3
# fault_origin.py - a small threaded HTTP/1.1 origin with faults chosen by path, for the proxy tests.
# SPDX-License-Identifier: MIT
"""Serves deterministic bodies and misbehaves on request. Keep-alive is on (HTTP/1.1).

Parameters are path segments (a proxy percent-encodes '?', so queries would not survive);
segments after the ones named below are ignored (so clients can make names unique). SIZE is
in bytes; the body is gen_body(SIZE).
  /ok/SIZE                   200 with Content-Length
  /gen/SIZE                  the same, streamed in 1 MiB writes; for GiB-sized bodies
  /status/NNN                status NNN with a short text body
  /redirect                  302 to /ok/1000
  /validators/SIZE           like /ok/SIZE, with ETag "vSIZE" and Last-Modified
                             Tue, 01 Dec 2026 10:00:00 GMT
  /chunked/SIZE              200, Transfer-Encoding: chunked (growing chunk sizes)
  /close/SIZE                200, no Content-Length: the body ends when the connection closes
  /close-mid-body/SIZE       Content-Length SIZE, sends SIZE/2 bytes, then resets the connection
  /wrong-length-short/SIZE   Content-Length SIZE, sends SIZE-1 bytes, then closes (FIN)
  /wrong-length-long/SIZE    Content-Length SIZE, sends SIZE+10 bytes in one write, stays open
  /smuggle/SIZE              200 with Content-Length SIZE, the body, then 300 ms later a whole
                             extra response ("HTTP/1.1 200 OK", Content-Length 5, "EVIL!") on
                             the idle connection, which stays open
  /cl-overflow/SIZE          Content-Length 2^64 (over 64 bits), SIZE bytes, then closes
  /cl-conflict/SIZE          two Content-Length headers, SIZE and SIZE+5; SIZE bytes, closes
  /cl-same/SIZE              two Content-Length headers, both SIZE (legal); the body
  /stall/SIZE/AFTER          Content-Length SIZE, sends AFTER bytes, then nothing for 60 s
  /stall-headers             reads the request, never answers (60 s)
  /delay/MS/SIZE             waits MS ms, then answers like /ok/SIZE
  /flaky/N/SIZE              the first N requests for this exact path answer 503, then like
                             /ok/SIZE (the count is per path: add a segment for a fresh one)
  /flaky-reset/N/SIZE        the first N requests for this exact path are reset unanswered
  /pause/SIZE/AFTER          Content-Length SIZE, sends AFTER bytes, waits (60 s at most) until
                             the --release file exists, then sends the rest
  /pause-status/NNN          waits until the --release file exists, then answers status NNN
  /pause-reset/SIZE/AFTER    like /pause, but once released resets the connection instead
  /cc/VALUE/SIZE             like /ok/SIZE with "Cache-Control: VALUE" (VALUE percent-decoded)
  /cv/VALUE/SIZE             like /cc/VALUE/SIZE with ETag "vSIZE" and Last-Modified; a request
                             with If-None-Match "vSIZE" is answered 304 (same headers, no body).
                             With --log, a conditional request's line ends with
                             " if-none-match=VALUE" / " if-modified-since=VALUE"
  /cv-other/VALUE/SIZE       like /cv/VALUE/SIZE, but its 304 names ETag "other" (a 304 that
                             does not match the entry the client holds)
  /expires/SECONDS/SIZE      like /ok/SIZE with Expires (now + SECONDS, may be
                             negative); SECONDS "bad" sends an invalid Expires
  /_stats                    JSON {"connections": accepted TCP connections, "requests": n,
                             "smuggled": extra responses sent by /smuggle}
  anything else              404

Prints "PORT n" on stdout once it listens (--port 0 picks a free port). With --sha256 SIZE
it prints the sha256 of gen_body(SIZE) and exits. With --log FILE every request is appended to
FILE as one line "MONOTONIC_SECONDS PATH" (PATH percent-decoded; flushed) before it is answered."""

import argparse
import hashlib
import json
from email.utils import formatdate
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CHUNK = 1 << 20
_lock = threading.Lock()
_stats = {"connections": 0, "requests": 0, "smuggled": 0}
_seen = {}  # path -> requests so far (/flaky, /flaky-reset)


def gen_block(index: int) -> bytes:
    """Block index (1 MiB): a fixed pseudo-random MiB with the block index in its first 8 bytes."""
    return index.to_bytes(8, "little") + _BASE[8:]


_BASE = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(CHUNK // 32))


def gen_body_iter(size: int):
    """Yields the body of a size-byte file in blocks of at most 1 MiB."""
    index = 0
    while size > 0:
        n = min(size, CHUNK)
        yield gen_block(index)[:n]
        size -= n
        index += 1


def gen_body(size: int) -> bytes:
    return b"".join(gen_body_iter(size))


def gen_sha256(size: int) -> str:
    h = hashlib.sha256()
    for block in gen_body_iter(size):
        h.update(block)
    return h.hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        with _lock:
            _stats["connections"] += 1
        # Headers and body go out in separate writes: without this, Nagle plus the client's
        # delayed ACK adds 40 ms to every response on a reused connection.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s\n" % (fmt % args))

    def _head(self, status, length=None, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def _simple(self, status, body=b""):
        self._head(status, len(body))
        self.wfile.write(body)

    def _sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)

    def _wait_release(self):
        deadline = time.monotonic() + 60
        while self.server.release and not os.path.exists(self.server.release):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)

    def _reset(self):
        self.wfile.flush()
        # SO_LINGER 0: the close sends a reset, like a crashed origin.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        self.close_connection = True

    def do_GET(self):
        with _lock:
            _stats["requests"] += 1
            nth = _seen.get(self.path, 0)
            _seen[self.path] = nth + 1
            if self.server.log:
                cond = "".join(" %s=%s" % (h.lower(), self.headers[h])
                               for h in ("If-None-Match", "If-Modified-Since") if self.headers[h])
                self.server.log.write("%.6f %s%s\n" % (time.monotonic(), unquote(urlsplit(self.path).path), cond))
                self.server.log.flush()
        parts = unquote(urlsplit(self.path).path).split("/")[1:]
        p = "/" + parts[0]

        def arg(i, default):
            try:
                return int(parts[i])
            except (IndexError, ValueError):
                return default

        size = arg(1, 1000)
        if p == "/_stats":
            with _lock:
                body = json.dumps(_stats).encode()
            self._simple(200, body)
        elif p in ("/ok", "/gen"):
            self._head(200, size)
            for block in gen_body_iter(size):
                self.wfile.write(block)
        elif p == "/validators":
            self._head(200, size, (("ETag", '"v%d"' % size),
                                   ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")))
            for block in gen_body_iter(size):
                self.wfile.write(block)
        elif p == "/status":
            code = arg(1, 500)
            self._simple(code, b"status %d\n" % code)
        elif p == "/redirect":
            self._head(302, 0, [("Location", "/ok/1000")])
        elif p == "/chunked":
            self._head(200, None, [("Transfer-Encoding", "chunked")])
            body = gen_body(size)
            pos, step = 0, 1
            while pos < len(body):
                piece = body[pos:pos + step]
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                pos += len(piece)
                step = min(step * 3 + 1, 65536)
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/close":
            self._head(200, None, [("Connection", "close")])
            self.wfile.write(gen_body(size))
            self.close_connection = True
        elif p == "/close-mid-body":
            self._head(200, size)
            self.wfile.write(gen_body(size)[: size // 2])
            self._reset()
        elif p in ("/flaky", "/flaky-reset"):
            size = arg(2, 1000)
            if nth < arg(1, 0) and p == "/flaky":
                self._simple(503, b"try again\n")
            elif nth < arg(1, 0):
                self._reset()
            else:
                self._head(200, size)
                self.wfile.write(gen_body(size))
        elif p in ("/pause", "/pause-reset"):
            after = arg(2, 0)
            body = gen_body(size)
            self._head(200, size)
            self.wfile.write(body[:after])
            self.wfile.flush()
            self._wait_release()
            if p == "/pause-reset":
                self._reset()
            else:
                self.wfile.write(body[after:])
        elif p == "/cc":
            size = arg(2, 1000)
            self._head(200, size, [("Cache-Control", parts[1] if len(parts) > 1 else "")])
            self.wfile.write(gen_body(size))
        elif p in ("/cv", "/cv-other"):
            size = arg(2, 1000)
            hdrs = [("Cache-Control", parts[1] if len(parts) > 1 else ""), ("ETag", '"v%d"' % size),
                    ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")]
            if self.headers["If-None-Match"] == '"v%d"' % size:
                if p == "/cv-other":
                    hdrs[1] = ("ETag", '"other"')
                self._head(304, None, hdrs)
            else:
                self._head(200, size, hdrs)
                self.wfile.write(gen_body(size))
        elif p == "/expires":
            size = arg(2, 1000)
            now = time.time()
            exp = "0" if (len(parts) > 1 and parts[1] == "bad") else formatdate(now + arg(1, 0), usegmt=True)
            self._head(200, size, [("Expires", exp)])  # send_response adds Date
            self.wfile.write(gen_body(size))
        elif p == "/pause-status":
            self._wait_release()
            code = arg(1, 500)
            self._simple(code, b"status %d\n" % code)
        elif p == "/wrong-length-short":
            self._head(200, size)
            self.wfile.write(gen_body(size)[:-1])
            self.close_connection = True
        elif p == "/wrong-length-long":
            body = gen_body(size) + b"0123456789"
            head = ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size).encode()
            self.wfile.write(head + body)
        elif p in ("/cl-overflow", "/cl-conflict", "/cl-same"):
            lengths = {"/cl-overflow": [2**64], "/cl-conflict": [size, size + 5],
                       "/cl-same": [size, size]}[p]
            head = "HTTP/1.1 200 OK\r\n" + "".join(
                "Content-Length: %d\r\n" % n for n in lengths) + "\r\n"
            self.wfile.write(head.encode() + gen_body(size))
            self.close_connection = p != "/cl-same"
        elif p == "/smuggle":
            self._head(200, size)
            self.wfile.write(gen_body(size))
            self._sleep(0.3)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!")
            with _lock:
                _stats["smuggled"] += 1
        elif p == "/stall":
            after = arg(2, 0)
            self._head(200, size)
            self.wfile.write(gen_body(size)[:after])
            self.wfile.flush()
            self._sleep(60)
            self.close_connection = True
        elif p == "/stall-headers":
            self._sleep(60)
            self.close_connection = True
        elif p == "/delay":
            size = arg(2, 1000)
            self._sleep(arg(1, 0) / 1000.0)
            self._head(200, size)
            self.wfile.write(gen_body(size))
        else:
            self._simple(404, b"not found\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--log", help="append one line per request to this file")
    ap.add_argument("--release", help="the file /pause waits for")
    ap.add_argument("--sha256", type=int, metavar="SIZE",
                    help="print the sha256 of the SIZE-byte generated body and exit")
    args = ap.parse_args()
    if args.sha256 is not None:
        print(gen_sha256(args.sha256))
        return
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.verbose = args.verbose
    srv.log = open(args.log, "a") if args.log else None
    srv.release = args.release
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
