#!/usr/bin/env python3
# legacy_client.py - an emulation of the course's prebuilt GETFILE client (the older framing),
# from the facts users rely on: it sends the request in four writes ("GETFILE GET ", the path,
# "\r\n", "\r\n"), splits the response header on spaces, takes the length with atoi, reads until
# it has the length or the end of stream, and saves the file.
# SPDX-License-Identifier: MIT
#
# usage: legacy_client.py PORT PATH [--out FILE] [--dump FILE] [--timeout S]
#   --out FILE   where an OK body goes (nothing is written for any other outcome)
#   --dump FILE  every byte the server sent, as received (for exact checks)
#   --timeout S  give up when the server sends nothing for S seconds (default 10): a hang
# Prints one line "<outcome> <status> <announced> <received>" and exits with:
#   0 OK, the whole length received (the file is saved)   3 FILE_NOT_FOUND   4 ERROR
#   5 another status (INVALID, or one it does not know)   6 timeout (a hang)
#   7 the stream ended before the length (no file)        8 no header before the end of stream
# The path is sent as given, so a malformed one gets INVALID.
import argparse
import socket
import sys


def atoi(token):
    """C atoi: optional blanks and sign, then the leading digits; 0 when there are none."""
    s = token.lstrip(b" \t\n\v\f\r")
    sign = 1
    if s[:1] in (b"+", b"-"):
        sign = -1 if s[:1] == b"-" else 1
        s = s[1:]
    digits = b""
    for c in s:
        if not 0x30 <= c <= 0x39:
            break
        digits += bytes([c])
    return sign * int(digits) if digits else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("--out")
    ap.add_argument("--dump")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for part in (b"GETFILE GET ", a.path.encode(), b"\r\n", b"\r\n"):
        sock.sendall(part)

    raw = b""
    eof = False

    def more():
        nonlocal raw, eof
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            print("timeout - 0 0")
            dump()
            sys.exit(6)
        if not chunk:
            eof = True
        raw += chunk

    def dump():
        if a.dump:
            with open(a.dump, "wb") as f:
                f.write(raw)

    # The header is three space-separated tokens: "GETFILE <status> <length>". The third ends
    # at the next space (the older OK form, content right after it) or at a newline.
    while True:
        first = raw.find(b" ")
        second = raw.find(b" ", first + 1) if first >= 0 else -1
        if second >= 0:
            end = len(raw)
            for sep in (b" ", b"\n"):
                k = raw.find(sep, second + 1)
                if k >= 0:
                    end = min(end, k)
            if end < len(raw):
                break
        if eof:
            break
        more()
    if second < 0 or end >= len(raw):
        print("no-header - 0 %d" % len(raw))
        dump()
        sys.exit(8)
    tokens = raw[: end + 1].split(b" ")
    status = tokens[1].decode("ascii", "replace")
    length = atoi(tokens[2])
    body = raw[end + 1 :]

    if status != "OK":
        while not eof:  # the older client reads until it has the length (0) or the end
            if len(body) >= length:
                break
            more()
            body = raw[end + 1 :]
        print("%s %s %d 0" % (status, status, length))
        dump()
        sys.exit({"FILE_NOT_FOUND": 3, "ERROR": 4}.get(status, 5))

    while len(body) < length and not eof:
        more()
        body = raw[end + 1 :]
    sock.close()
    dump()
    if len(body) < length:
        print("short OK %d %d" % (length, len(body)))
        sys.exit(7)
    if a.out:
        with open(a.out, "wb") as f:
            f.write(body[:length])
    print("ok OK %d %d" % (length, len(body)))
    sys.exit(0)


if __name__ == "__main__":
    main()
