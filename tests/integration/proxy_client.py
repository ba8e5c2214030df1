#!/usr/bin/env python3
# proxy_client.py - a minimal GETFILE client for the proxy tests: any printable path, hashes.
# SPDX-License-Identifier: MIT
"""Usage: proxy_client.py PORT PATH [--out FILE] [--timeout S]

Sends one GETFILE request for PATH (sent as given: spaces, '%', '..' included, which
gfclient_download refuses or cannot express) to 127.0.0.1:PORT and prints one line:
    STATUS LENGTH RECEIVED SHA256 ELAPSED_S
STATUS is OK, FILE_NOT_FOUND, ERROR, INVALID, or BADHEADER / NOHEADER / TIMEOUT; RECEIVED
counts content bytes until the server closed; SHA256 is of the received content (or '-').
With --out, the content is saved to FILE only when it is complete.
Exit status: 0 for a complete OK, 3 FILE_NOT_FOUND, 4 ERROR, 5 INVALID, 1 anything else
(a short transfer, a bad header, a timeout)."""

import argparse
import hashlib
import re
import socket
import sys
import time

HEADER_RE = re.compile(rb"GETFILE (OK|FILE_NOT_FOUND|ERROR|INVALID)(?: ([0-9]+))?\r\n\r\n")
CODES = {"FILE_NOT_FOUND": 3, "ERROR": 4, "INVALID": 5}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("--out")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    start = time.monotonic()
    deadline = start + args.timeout
    status, length, received = "NOHEADER", 0, 0
    h = hashlib.sha256()
    out = bytearray() if args.out else None
    buf = b""
    with socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout) as s:
        s.sendall(b"GETFILE GET " + args.path.encode("ascii") + b"\r\n\r\n")
        header_done = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                status = "TIMEOUT"
                break
            s.settimeout(left)
            try:
                data = s.recv(1 << 20)
            except socket.timeout:
                status = "TIMEOUT"
                break
            except ConnectionResetError:
                data = b""
            if not data:
                break
            if not header_done:
                buf += data
                m = HEADER_RE.match(buf)
                if m is None:
                    if len(buf) > 64 or b"\r\n\r\n" in buf:
                        status = "BADHEADER"
                        break
                    continue
                header_done = True
                status = m.group(1).decode()
                length = int(m.group(2) or 0)
                data = buf[m.end():]
            received += len(data)
            h.update(data)
            if out is not None:
                out += data
    elapsed = time.monotonic() - start
    digest = h.hexdigest() if status == "OK" else "-"
    print("%s %d %d %s %.3f" % (status, length, received, digest, elapsed))
    if status == "OK" and received == length:
        if args.out:
            with open(args.out, "wb") as f:
                f.write(out)
        return 0
    return CODES.get(status, 1)


if __name__ == "__main__":
    sys.exit(main())
