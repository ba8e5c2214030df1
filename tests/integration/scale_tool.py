#!/usr/bin/env python3
# scale_tool.py - helpers of the scale-out tests: GETFILE/HTTP clients under load, placement
# read from the nodes' access logs, server states from HAProxy's stats socket.
# SPDX-License-Identifier: MIT
"""Usage:
  scale_tool.py sizes DIR N                  byte sizes of DIR/node1..N/access.log, one line
  scale_tool.py placement DIR N SIZES PATHS  from the lines after SIZES (as printed by
                      `sizes`), for each path in the PATHS file: the nodes that served it and
                      how; prints "PATH NODES HITS TOTAL" (NODES comma-separated)
  scale_tool.py nginx-placement LOG OFFSET BASE PATHS  from nginx's access log after OFFSET:
                      "PATH NODES" (the node that answered; node I listens on BASE+2*I+1)
  scale_tool.py state SOCKET                 "NAME OPSTATE" per server of backend nodes
                      (2 up, 0 down)
  scale_tool.py get PORT PATHS [--http]      one request per path, prints "PATH STATUS"
  scale_tool.py load PORT PATHS OUT STOPFILE [--http] [--workers W]
                      requests the paths round-robin until STOPFILE exists; appends one line
                      per request to OUT: "START_EPOCH END_EPOCH PATH RESULT" (RESULT OK or
                      a reason); a request counts as OK only when the whole body came.
"""

import http.client
import os
import re
import socket
import sys
import threading
import time

HEADER_RE = re.compile(rb"GETFILE (OK|FILE_NOT_FOUND|ERROR|INVALID)(?: ([0-9]+))?\r\n\r\n")


def gf_get(port, path, timeout=10.0):
    """One GETFILE request; 'OK' when the whole body came, else the reason."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GETFILE GET " + path.encode() + b"\r\n\r\n")
            buf = b""
            while True:
                data = s.recv(1 << 16)
                if not data:
                    break
                buf += data
            m = HEADER_RE.match(buf)
            if not m:
                return "NOHEADER"
            if m.group(1) != b"OK":
                return m.group(1).decode()
            if len(buf) - m.end() != int(m.group(2)):
                return "SHORT"
            return "OK"
    except OSError as e:
        return "EXC:" + type(e).__name__


def http_get(port, path, timeout=10.0):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            return "HTTP%d" % r.status
        if len(body) != int(r.getheader("Content-Length", "-1")):
            return "SHORT"
        return "OK"
    except (OSError, http.client.HTTPException) as e:
        return "EXC:" + type(e).__name__


def read_paths(f):
    with open(f) as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def sizes(d, n):
    out = []
    for i in range(1, n + 1):
        try:
            out.append(str(os.path.getsize(os.path.join(d, "node%d" % i, "access.log"))))
        except FileNotFoundError:
            out.append("0")
    print(" ".join(out))


def placement(d, n, size_list, paths_file):
    paths = read_paths(paths_file)
    seen = {p: [set(), 0, 0] for p in paths}
    for i in range(1, n + 1):
        try:
            with open(os.path.join(d, "node%d" % i, "access.log"), "rb") as fh:
                fh.seek(int(size_list[i - 1]))
                text = fh.read().decode()
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            # TIME CLIENT PATH STATUS BYTES SECONDS RESULT; the path may hold spaces.
            f = line.split(" ")
            if len(f) < 7:
                continue
            path = " ".join(f[2:-4])
            if path in seen:
                seen[path][0].add(i)
                seen[path][1] += f[-1] == "HIT"
                seen[path][2] += 1
    for p in paths:
        nodes, hits, total = seen[p]
        print(p, ",".join(str(x) for x in sorted(nodes)) or "-", hits, total)


def nginx_placement(logf, offset, base, paths_file):
    paths = read_paths(paths_file)
    seen = {p: set() for p in paths}
    with open(logf, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode()
    for line in text.splitlines():
        # URI UPSTREAM_ADDR(S) STATUS BYTES; after a failed node, "addr1, addr2".
        f = line.split(" ")
        if len(f) < 4 or f[0] not in seen or f[-2] != "200":
            continue
        port = int(f[-3].rsplit(":", 1)[1])
        seen[f[0]].add((port - base - 1) // 2)
    for p in paths:
        print(p, ",".join(str(x) for x in sorted(seen[p])) or "-")


def state(sock):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(b"show servers state nodes\n")
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    for line in out.decode().splitlines():
        f = line.split()
        if len(f) > 5 and f[1] == "nodes":
            print(f[3], f[5])


def load(port, paths, out, stopfile, fetch, workers):
    lock = threading.Lock()
    fh = open(out, "a")

    def work(k):
        i = k
        while not os.path.exists(stopfile):
            p = paths[i % len(paths)]
            i += workers
            t0 = time.time()
            r = fetch(port, p)
            t1 = time.time()
            with lock:
                fh.write("%.6f %.6f %s %s\n" % (t0, t1, p, r))
                fh.flush()

    ts = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    fh.close()


def main():
    a = sys.argv[1:]
    fetch = http_get if "--http" in a else gf_get
    a = [x for x in a if x != "--http"]
    workers = 4
    if "--workers" in a:
        k = a.index("--workers")
        workers = int(a[k + 1])
        del a[k : k + 2]
    cmd = a[0]
    if cmd == "sizes":
        sizes(a[1], int(a[2]))
    elif cmd == "placement":
        placement(a[1], int(a[2]), a[3].split(), a[4])
    elif cmd == "nginx-placement":
        nginx_placement(a[1], int(a[2]), int(a[3]), a[4])
    elif cmd == "state":
        state(a[1])
    elif cmd == "get":
        for p in read_paths(a[2]):
            print(p, fetch(int(a[1]), p))
    elif cmd == "load":
        load(int(a[1]), read_paths(a[2]), a[3], a[4], fetch, workers)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
