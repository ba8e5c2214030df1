#!/usr/bin/env python3
# http_client.py - raw HTTP/1.1 clients for the webproxy --http tests: what curl cannot send or
# does not show (bad requests, bytes after a HEAD answer, slow senders and readers).
# SPDX-License-Identifier: MIT
"""Subcommands (127.0.0.1 only; every wait bounded):
  raw PORT REQUEST [--pad-uri N] [--pad-header N]
        REQUEST with Python escapes (\\r\\n); --pad-uri appends N 'a' to the first '/', --pad-header
        adds an N-byte header. Prints the status code ("-" if the server closed without one).
  head PORT PATH     HEAD with Connection: close; prints "STATUS CONTENT_LENGTH EXTRA", EXTRA
                     being the bytes that followed the header before the server closed.
  slowloris PORT --interval S --limit S
        Sends "GET /" and then one more header byte every S seconds. Prints "closed T" when
        the server closed the connection after T seconds (exit 0), "open" after --limit.
  slowread PORT PATH --size N --limit S [--trickle BYTES]
        Asks for PATH (Connection: close) with a small receive buffer, reads nothing (or
        BYTES every 0.2 s) for --limit seconds, then reads to the end. Prints "cut RECEIVED"
        (exit 0) when the server closed before the N body bytes, "whole RECEIVED" when they
        all came, "stuck RECEIVED" when nothing ended the response within 10 s. --ready FILE:
        created once the response has begun.
  idle PORT N        Opens N connections that send nothing, then one more: prints "refused" if
                     the server closes the last one within 5 s while the first N stay open."""

import argparse
import codecs
import socket
import sys
import time


def connect(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def read_head(s):
    """Reads up to the end of the response header; returns (header bytes, the rest read)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            return buf, b""
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def status_of(head):
    parts = head.split(b"\r\n")[0].split(b" ")
    return parts[1].decode() if len(parts) > 1 and head.startswith(b"HTTP/") else "-"


def header_value(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


def cmd_raw(a):
    req = codecs.decode(a.request, "unicode_escape").encode("latin-1")
    if a.pad_uri:
        i = req.index(b"/")
        req = req[: i + 1] + b"a" * a.pad_uri + req[i + 1 :]
    if a.pad_header:
        i = req.index(b"\r\n") + 2
        req = req[:i] + b"X-Pad: " + b"p" * a.pad_header + b"\r\n" + req[i:]
    s = connect(a.port)
    try:
        s.sendall(req)
    except OSError:
        pass  # the server may answer and close before reading it all
    try:
        head, _ = read_head(s)
    except OSError:
        head = b""
    print(status_of(head))


def cmd_head(a):
    s = connect(a.port)
    s.sendall(b"HEAD %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % a.path.encode())
    head, rest = read_head(s)
    extra = len(rest)
    while True:
        b = s.recv(65536)
        if not b:
            break
        extra += len(b)
    print(status_of(head), header_value(head, "Content-Length"), extra)


def cmd_slowloris(a):
    s = connect(a.port)
    start = time.monotonic()
    try:
        s.sendall(b"GET /")
        s.settimeout(a.interval)
        while time.monotonic() - start < a.limit:
            try:
                if s.recv(4096) == b"":
                    print("closed %.1f" % (time.monotonic() - start))
                    return 0
            except socket.timeout:
                pass
            s.sendall(b"a")
    except OSError:
        print("closed %.1f" % (time.monotonic() - start))
        return 0
    print("open")
    return 1


def cmd_slowread(a):
    s = connect(a.port, rcvbuf=4096)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % a.path.encode())
    if a.ready:
        s.recv(1, socket.MSG_PEEK)  # the response has begun
        open(a.ready, "w").close()
    got = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < a.limit:
            time.sleep(0.2)
            if a.trickle:
                b = s.recv(a.trickle)
                if not b:
                    break
                got += len(b)
        # Then everything the kernels still hold, up to the end: the whole response, or less
        # when the server cut the connection (EOF or a reset before the last body byte).
        s.settimeout(10)
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += len(b)
    except socket.timeout:
        print("stuck %d" % got)
        return 1
    except OSError:
        pass
    # got counts the response header too (< 1 KiB).
    if got >= a.size:
        print("whole %d" % got)
        return 1
    print("cut %d" % got)
    return 0


def cmd_idle(a):
    held = [connect(a.port) for _ in range(a.n)]
    last = connect(a.port)
    last.settimeout(5)
    try:
        refused = last.recv(1) == b""
    except socket.timeout:
        refused = False
    except OSError:
        refused = True
    for s in held:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                print("an earlier connection was closed")
                return 1
        except BlockingIOError:
            pass
    print("refused" if refused else "accepted")
    return 0 if refused else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("raw")
    r.add_argument("port", type=int)
    r.add_argument("request")
    r.add_argument("--pad-uri", type=int, default=0)
    r.add_argument("--pad-header", type=int, default=0)
    h = sub.add_parser("head")
    h.add_argument("port", type=int)
    h.add_argument("path")
    sl = sub.add_parser("slowloris")
    sl.add_argument("port", type=int)
    sl.add_argument("--interval", type=float, default=0.3)
    sl.add_argument("--limit", type=float, default=10)
    sr = sub.add_parser("slowread")
    sr.add_argument("port", type=int)
    sr.add_argument("path")
    sr.add_argument("--size", type=int, required=True)
    sr.add_argument("--limit", type=float, default=10)
    sr.add_argument("--trickle", type=int, default=0)
    sr.add_argument("--ready", help="a file created once the response has begun")
    i = sub.add_parser("idle")
    i.add_argument("port", type=int)
    i.add_argument("n", type=int)
    a = p.parse_args()
    rc = {"raw": cmd_raw, "head": cmd_head, "slowloris": cmd_slowloris,
          "slowread": cmd_slowread, "idle": cmd_idle}[a.cmd](a)
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
