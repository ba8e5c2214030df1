#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gfserver_raw.py - raw-socket GETFILE clients for the gfserver_main integration tests.

Subcommands (each prints one line per check, "ok NAME" or "FAIL NAME: why"):
  table PORT SMALL LONGPATH   the malformed-request table (SMALL: the file behind /small and
                              behind the 4096-byte path LONGPATH)
  loop PORT PATH FILE STOP    downloads PATH again and again until the file STOP exists and
                              compares each with FILE; prints "loop OK FAILED"
  swarm PORT N RATE READY PATH:FILE...  N concurrent downloads (cycling through the paths),
                              each reading at most RATE bytes/s (0: no limit); touches READY
                              once all N are connected and 8 got bytes; prints a summary line
  bad KIND PORT SECONDS       misbehaving clients (never-read, slow-read, early-close,
                              partial-header, drip-header; slow-read-cut and trickle-read
                              read /big slowly until cut: "reset", else "held" after 30 s)
                              for SECONDS, one after another; prints how they ended
  timed PORT PATH FILE N      N sequential downloads; prints "timed SECONDS_TOTAL FAILED"
  drip PORT PATH FILE N STEP READY  N connections send "GETFILE GET PATH" one byte per STEP
                              seconds each (in lockstep; touches READY once all N sent their
                              first byte), then read the replies; prints "drip N OK FAILED"
                              (OK: the header and FILE byte-exact)
  hold PORT N WAIT            N connections, one after another, send an incomplete header;
                              after WAIT seconds prints "hold HELD CLOSED LEADING" (LEADING:
                              how many of the first ones were closed by the server)
  get PORT PATH [N]           N (default 1) concurrent requests for PATH; prints per reply
                              "HEADER BODY_BYTES END" (HEADER without CRLFs, spaces as '_'),
                              then "elapsed SECONDS"
"""
import os
import socket
import sys
import threading
import time

CLIENT_TIMEOUT = 30.0  # a stuck server fails a check instead of hanging the test


def connect(port, timeout=CLIENT_TIMEOUT):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s, limit=None):
    """Reads until end of stream. Returns (bytes, end) with end "eof", "reset" or "timeout"."""
    chunks, total = [], 0
    while True:
        try:
            b = s.recv(1 << 16)
        except ConnectionResetError:
            return b"".join(chunks), "reset"
        except socket.timeout:
            return b"".join(chunks), "timeout"
        if not b:
            return b"".join(chunks), "eof"
        chunks.append(b)
        total += len(b)
        if limit is not None and total >= limit:
            return b"".join(chunks), "limit"


def exchange(port, data, pieces=None, pause=0.0, shut_wr=False, timeout=CLIENT_TIMEOUT):
    """Sends data (in pieces of that size, pausing between them), reads the whole reply."""
    s = connect(port, timeout)
    try:
        if pieces:
            for i in range(0, len(data), pieces):
                s.sendall(data[i:i + pieces])
                time.sleep(pause)
        else:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        return read_all(s)
    finally:
        s.close()


def split_reply(reply):
    """Returns (header, body) or (None, reply) when no complete header is there."""
    i = reply.find(b"\r\n\r\n")
    if i < 0:
        return None, reply
    return reply[:i + 4], reply[i + 4:]


def download(port, path):
    """Returns (ok, body, why)."""
    reply, end = exchange(port, b"GETFILE GET " + path.encode() + b"\r\n\r\n")
    hdr, body = split_reply(reply)
    if hdr is None or not hdr.startswith(b"GETFILE OK "):
        return False, body, "header %r (%s)" % (reply[:40], end)
    length = int(hdr[11:-4])
    if len(body) != length or end != "eof":
        return False, body, "%d of %d bytes (%s)" % (len(body), length, end)
    return True, body, ""


class Checks:
    def __init__(self):
        self.failed = 0

    def check(self, name, cond, why=""):
        if cond:
            print("ok", name)
        else:
            self.failed += 1
            print("FAIL %s: %s" % (name, why))
        sys.stdout.flush()


INVALID = b"GETFILE INVALID\r\n\r\n"


def cmd_table(port, small_file, longpath_file):
    small = open(small_file, "rb").read()
    longpath = open(longpath_file).read().strip().encode()
    assert len(longpath) == 4096
    c = Checks()
    invalid_cases = [
        ("wrong scheme", b"GETFIL GET /small\r\n\r\n"),
        ("other scheme", b"HTTP/1.0 GET /small\r\n\r\n"),
        ("lower case", b"getfile get /small\r\n\r\n"),
        ("wrong method", b"GETFILE PUT /small\r\n\r\n"),
        ("path without slash", b"GETFILE GET small\r\n\r\n"),
        ("empty path", b"GETFILE GET \r\n\r\n"),
        ("doubled space 1", b"GETFILE  GET /small\r\n\r\n"),
        ("doubled space 2", b"GETFILE GET  /small\r\n\r\n"),
        ("trailing space", b"GETFILE GET /small \r\n\r\n"),
        ("bare LF", b"GETFILE GET /small\n\n"),
        ("LF then CRLF", b"GETFILE GET /small\n\r\n"),
        ("CRLF then LF", b"GETFILE GET /small\r\n\n"),
        ("lone CR", b"GETFILE GET /small\r\r\n\r\n"),
        ("path of 4097 bytes", b"GETFILE GET " + longpath + b"x\r\n\r\n"),
        ("NUL in path", b"GETFILE GET /sm\x00all\r\n\r\n"),
        ("8-bit byte in path", b"GETFILE GET /sm\xe9all\r\n\r\n"),
        ("tab in path", b"GETFILE GET /sm\tall\r\n\r\n"),
        ("binary junk", bytes(range(256)) * 16),
    ]
    for name, req in invalid_cases:
        reply, end = exchange(port, req)
        c.check(name, reply == INVALID and end in ("eof", "reset"), "%r (%s)" % (reply[:60], end))

    reply, end = exchange(port, b"GETFILE GET /nothere\r\n\r\n")
    c.check("unknown path", reply == b"GETFILE FILE_NOT_FOUND\r\n\r\n", repr(reply[:60]))
    reply, end = exchange(port, b"GETFILE GET " + longpath + b"\r\n\r\n")
    c.check("path of 4096 bytes served",
            reply == b"GETFILE OK %d\r\n\r\n" % len(small) + small and end == "eof",
            "%r (%s)" % (reply[:60], end))
    reply, end = exchange(port, b"GETFILE GET /small\r\n\r\n", pieces=1, pause=0.002)
    c.check("header one byte per send",
            reply == b"GETFILE OK %d\r\n\r\n" % len(small) + small, repr(reply[:60]))
    reply, end = exchange(port, b"GETFILE GET /small\r\n\r\nGETFILE GET /small\r\n\r\n")
    c.check("one request per connection",
            reply == b"GETFILE OK %d\r\n\r\n" % len(small) + small and end == "eof",
            "%d bytes (%s)" % (len(reply), end))

    # A peer that hangs up before the terminator: closed without an answer.
    reply, end = exchange(port, b"GETFILE GET /sma", shut_wr=True)
    c.check("hang-up before terminator", reply == b"" and end in ("eof", "reset"),
            "%r (%s)" % (reply[:60], end))
    s = connect(port)
    s.close()
    c.check("connect and close", True)

    # An endless header sent as fast as possible: INVALID (or closed) within bounds.
    t0 = time.monotonic()
    s = connect(port)
    got = []

    def reader():
        got.append(read_all(s))

    t = threading.Thread(target=reader)
    t.start()
    try:
        s.sendall(b"GETFILE GET /" + b"a" * (1 << 20))
    except OSError:
        pass
    t.join(CLIENT_TIMEOUT)
    s.close()
    reply, end = got[0] if got else (b"", "hung")
    c.check("endless header (fast)", reply in (INVALID, b"") and end != "hung",
            "%r (%s)" % (reply[:60], end))
    c.check("endless header bounded", time.monotonic() - t0 < CLIENT_TIMEOUT)

    # An endless header dripping in: INVALID at the header deadline.
    s = connect(port)
    s.sendall(b"GETFILE GET /")
    s.settimeout(0.1)
    reply, end = b"", "timeout"
    t0 = time.monotonic()
    while time.monotonic() - t0 < CLIENT_TIMEOUT:
        try:
            s.sendall(b"a")
        except OSError:
            pass
        r, end = read_all(s)
        reply += r
        if end != "timeout":
            break
    s.close()
    c.check("endless header (slow)", reply == INVALID and end in ("eof", "reset"),
            "%r (%s)" % (reply[:60], end))
    ok, body, why = download(port, "/small")
    c.check("served after the table", ok and body == small, why)
    return c.failed


def cmd_loop(port, path, ref_file, stop_file):
    ref = open(ref_file, "rb").read()
    good = bad = 0
    while not os.path.exists(stop_file):
        ok, body, why = download(port, path)
        if ok and body == ref:
            good += 1
        else:
            bad += 1
            print("loop failure:", why, file=sys.stderr)
    print("loop", good, bad)
    return 0


def cmd_timed(port, path, ref_file, n):
    ref = open(ref_file, "rb").read()
    bad = 0
    t0 = time.monotonic()
    for _ in range(n):
        ok, body, why = download(port, path)
        if not (ok and body == ref):
            bad += 1
            print("timed failure:", why, file=sys.stderr)
    print("timed %.6f %d" % (time.monotonic() - t0, bad))
    return 0


def cmd_swarm(port, n, rate, ready_file, specs):
    files = []
    for spec in specs:
        path, local = spec.split(":", 1)
        files.append((path, os.path.getsize(local), local))
    lock = threading.Lock()
    results = []
    started = [0]
    connected = [0]

    def progress(new_conn, new_body):
        with lock:
            connected[0] += new_conn
            started[0] += new_body
            if connected[0] == n and started[0] >= min(8, n) and not os.path.exists(ready_file):
                open(ready_file, "w").close()

    def one(i):
        path, size, local = files[i % len(files)]
        res = "refused"
        try:
            s = connect(port)
        except OSError:
            with lock:
                results.append(res)
            return
        progress(1, 0)
        t0 = time.monotonic()
        try:
            s.sendall(b"GETFILE GET " + path.encode() + b"\r\n\r\n")
            head, total, body_start, end = b"", 0, None, "eof"
            with open(local, "rb") as ref:
                while True:
                    try:
                        b = s.recv(1 << 16)
                    except ConnectionResetError:
                        end = "reset"
                        break
                    except socket.timeout:
                        end = "timeout"
                        break
                    if not b:
                        break
                    if body_start is None:
                        head += b
                        i4 = head.find(b"\r\n\r\n")
                        if i4 < 0:
                            continue
                        if head[:i4 + 4] != b"GETFILE OK %d\r\n\r\n" % size:
                            res = "badheader"
                            break
                        b = head[i4 + 4:]
                        body_start = True
                        progress(0, 1)
                    if b != ref.read(len(b)):
                        res = "corrupt"
                        break
                    total += len(b)
                    if rate:
                        ahead = total / rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
            if res == "refused":
                if body_start is None:
                    res = "noheader" if end != "timeout" else "timeout"
                elif total == size and end == "eof":
                    res = "complete"
                elif total < size:
                    res = "short" if end != "timeout" else "timeout"
                else:
                    res = "long"
        finally:
            s.close()
        with lock:
            results.append(res)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = {k: results.count(k) for k in sorted(set(results))}
    print("swarm " + " ".join("%s=%d" % kv for kv in counts.items()))
    return 0


def cmd_bad(kind, port, seconds):
    """Runs one kind of bad client in a loop; prints "bad KIND N ended=... max_hold=S"."""
    end_at = time.monotonic() + seconds
    ends, max_hold, n = {}, 0.0, 0
    while time.monotonic() < end_at:
        t0 = time.monotonic()
        s = connect(port)
        how = "?"
        try:
            if kind == "never-read":
                s.sendall(b"GETFILE GET /big\r\n\r\n")
                # Never reads; waits until the server gives up on it (it sees a reset or EOF
                # only when it finally reads, so probe with a non-blocking peek).
                s.setblocking(False)
                while time.monotonic() - t0 < CLIENT_TIMEOUT:
                    time.sleep(0.2)
                    try:
                        s.send(b"")
                        # The server cut us when the socket reports an error.
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            how = "reset"
                            break
                    except OSError:
                        how = "reset"
                        break
                else:
                    how = "held"
            elif kind == "slow-read":
                s.sendall(b"GETFILE GET /big\r\n\r\n")
                got = 0
                while time.monotonic() < end_at:
                    b = s.recv(8192)
                    if not b:
                        break
                    got += len(b)
                    time.sleep(0.05)
                how = "read %d" % got
            elif kind in ("slow-read-cut", "trickle-read"):
                # Reads until cut: slow-read-cut as fast as slow-read, trickle-read 64 KiB
                # every half second (on loopback, whose segments are 64 KiB, a smaller read
                # opens no window, so the client would just look stalled).
                s.sendall(b"GETFILE GET /big\r\n\r\n")
                size, pause = (8192, 0.05) if kind == "slow-read-cut" else (65536, 0.5)
                # The reset may come while our receive buffer still holds data we would
                # read first: SO_ERROR tells at once. A connection never cut is "held".
                how = "held"
                try:
                    while time.monotonic() - t0 < CLIENT_TIMEOUT:
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            how = "reset"
                            break
                        b = s.recv(size)
                        if not b:
                            how = "eof"
                            break
                        time.sleep(pause)
                except ConnectionResetError:
                    how = "reset"
            elif kind == "early-close":
                s.sendall(b"GETFILE GET /big\r\n\r\n")
                s.recv(10000)
                how = "closed"
            elif kind == "partial-header":
                s.sendall(b"GETFILE GET /sm")
                reply, how = read_all(s)
                how = "invalid" if reply == INVALID else "%r %s" % (reply[:30], how)
            elif kind == "drip-header":
                s.sendall(b"GETFILE GET /")
                s.settimeout(0.2)
                reply = b""
                while time.monotonic() - t0 < CLIENT_TIMEOUT:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                    r, how = read_all(s)
                    reply += r
                    if how != "timeout":
                        break
                how = "invalid" if reply == INVALID else "%r %s" % (reply[:30], how)
        except OSError as e:
            how = "error %s" % e.__class__.__name__
        finally:
            s.close()
        hold = time.monotonic() - t0
        max_hold = max(max_hold, hold)
        ends[how.split()[0]] = ends.get(how.split()[0], 0) + 1
        n += 1
    print("bad %s %d %s max_hold=%.3f" % (kind, n, ",".join(
        "%s:%d" % kv for kv in sorted(ends.items())), max_hold))
    return 0


def cmd_drip(port, path, ref_file, n, step, ready_file):
    import selectors
    ref = open(ref_file, "rb").read()
    want = b"GETFILE OK %d\r\n\r\n" % len(ref) + ref
    header = b"GETFILE GET " + path.encode() + b"\r\n\r\n"
    socks = [connect(port) for _ in range(n)]
    for s in socks:
        s.setblocking(False)
    failed = set()
    for i in range(len(header)):
        t0 = time.monotonic()
        for k, s in enumerate(socks):
            if k in failed:
                continue
            try:
                s.send(header[i:i + 1])
            except OSError as e:
                print("drip %d: send failed at byte %d: %s" % (k, i, e), file=sys.stderr)
                failed.add(k)
        if i == 0:
            open(ready_file, "w").close()
        if i + 1 < len(header):
            time.sleep(max(0.0, step - (time.monotonic() - t0)))
    sel = selectors.DefaultSelector()
    replies = {}
    for k, s in enumerate(socks):
        if k not in failed:
            sel.register(s, selectors.EVENT_READ, k)
            replies[k] = []
    end_at = time.monotonic() + CLIENT_TIMEOUT
    while sel.get_map() and time.monotonic() < end_at:
        for key, _ in sel.select(timeout=1.0):
            k = key.data
            try:
                b = key.fileobj.recv(1 << 16)
            except OSError:
                b = b""
            if b:
                replies[k].append(b)
            else:
                sel.unregister(key.fileobj)
    ok = sum(1 for k in replies if b"".join(replies[k]) == want)
    for k in sorted(replies):
        r = b"".join(replies[k])
        if r != want:
            print("drip %d: reply %r (%d bytes)" % (k, r[:40], len(r)), file=sys.stderr)
            break
    for s in socks:
        s.close()
    print("drip %d %d %d" % (n, ok, n - ok))
    return 0


def cmd_hold(port, n, wait):
    socks = []
    for _ in range(n):
        try:
            s = connect(port)
        except ConnectionResetError:
            # The server accepted and closed it (a limit) before a loaded client saw the
            # handshake complete: that connection is closed, as if its recv had seen the end.
            socks.append(None)
            continue
        try:
            s.sendall(b"GETFILE GET /sm")
        except OSError:
            pass
        socks.append(s)
    time.sleep(wait)
    closed = []
    for s in socks:
        if s is None:
            closed.append(True)
            continue
        s.setblocking(False)
        try:
            closed.append(s.recv(100) == b"")
        except BlockingIOError:
            closed.append(False)
        except OSError:
            closed.append(True)
        s.close()
    leading = 0
    while leading < n and closed[leading]:
        leading += 1
    print("hold %d %d %d" % (closed.count(False), closed.count(True), leading))
    return 0


def cmd_get(port, path, n):
    out = []

    def one():
        reply, end = exchange(port, b"GETFILE GET " + path.encode() + b"\r\n\r\n")
        hdr, body = split_reply(reply)
        name = hdr[:-4].decode("latin-1").replace(" ", "_") if hdr else "none"
        out.append("%s %d %s" % (name, len(body), end))

    t0 = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for line in out:
        print(line)
    print("elapsed %.6f" % (time.monotonic() - t0))
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "table":
        return 1 if cmd_table(int(argv[2]), argv[3], argv[4]) else 0
    if cmd == "loop":
        return cmd_loop(int(argv[2]), argv[3], argv[4], argv[5])
    if cmd == "timed":
        return cmd_timed(int(argv[2]), argv[3], argv[4], int(argv[5]))
    if cmd == "swarm":
        return cmd_swarm(int(argv[2]), int(argv[3]), int(argv[4]), argv[5], argv[6:])
    if cmd == "get":
        return cmd_get(int(argv[2]), argv[3], int(argv[4]) if len(argv) > 4 else 1)
    if cmd == "drip":
        return cmd_drip(int(argv[2]), argv[3], argv[4], int(argv[5]), float(argv[6]), argv[7])
    if cmd == "hold":
        return cmd_hold(int(argv[2]), int(argv[3]), float(argv[4]))
    if cmd == "bad":
        return cmd_bad(argv[2], int(argv[3]), float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
