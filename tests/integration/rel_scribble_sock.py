#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""rel_scribble_sock.py - the socket backends' (unix, fd) form of rel_scribble.py: a confused
process of our uid sits between the proxy and the cache and damages what goes through.

usage: rel_scribble_sock.py PORT PROXY_PID CACHE_PID SOCK BACKEND FILE SMALL

It gives the cache's listening socket SOCK a second name (a hard link, SOCK.real), takes SOCK
for a listener of its own (same uid: SO_PEERCRED accepts it) and relays every connection to the
cache, request after request (the proxy keeps its connections). It must run before the proxy's
first request: a connection made before it never passes here. It then waits until /small is
served. Requests for /multi (the file FILE) are damaged, one damage per download, and each
damaged exchange ends its connection:
  req O,V      the 8-byte word at offset O of the 16-byte request header overwritten with V
  resp O,V     the same for each word of the 64-byte answer header (magic, kind, status,
               length, offset, file size, mtime, ctime, keep time and generation), V in 0xff, 0x00
  garbage      64 bytes of 'A' instead of the header
  cut_hdr      20 bytes of the header, then the connection closed
  cut_body     (unix) the header, half the body, then closed
  extra_fd     (fd) a second descriptor passed with the header
  rw_fd        (fd) the file opened read-write passed instead of the cache's descriptor
  pipe_fd      (fd) a pipe passed instead
Each download must end within 30 s with the outcome the protocol's checks give where they decide
(expected() below: refused damages are ERROR), otherwise one of: ERROR, short (fewer bytes than
announced), or byte-exact; complete with other bytes only when the length word was damaged, and
then the bytes sent are the file's own first bytes (a cache of our uid that lies about a length
is believed: the protocol has no checksum; docs/reliability.md). Every answer for /multi on fd
has its keep time set to 0, so that the proxy keeps no descriptor of it and each download passes
here (checked: a damage that no request met fails). Both daemons stay up, the next undamaged
/multi and /small are byte-exact, and a thread downloads /small all along (load), every download
byte-exact. Afterwards
SOCK is the cache's again (renamed back). Prints one line per damage and a summary; exits 1 on
any violation."""
import array
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rel_scribble import alive, download  # noqa: E402

REQ_HDR, RESP_HDR = 16, 64
KIND_STREAM, KIND_FD = 1, 2
CURRENT = [None]  # the damage applied to /multi requests now
APPLIED = set()  # the damages that reached a request


def expected(d, be):
    """The outcome each damage must have, where the protocol says which (None: any allowed)."""
    kind = d[0]
    if kind in ("req", "garbage", "cut_hdr", "extra_fd", "rw_fd", "pipe_fd"):
        return "notok"  # refused by the cache (request) or by sock_resp_decode / the fd checks
    if kind == "cut_body":
        return "short"
    if d[2] == 0xff and d[1] != 16:
        return "notok"  # magic, version, kind, status, offset, size, times: invalid or changed
    if be == "fd" and 32 <= d[1] < 56:
        return "notok"  # size and times must match the passed file's fstat
    return None


def recv_exact(s, n, fds=None):
    """n bytes from s (and any descriptors with them into fds); fewer at EOF."""
    buf = b""
    while len(buf) < n:
        if fds is not None:
            msg, got, _, _ = socket.recv_fds(s, n - len(buf), 4)
            fds.extend(got)
        else:
            msg = s.recv(n - len(buf))
        if not msg:
            break
        buf += msg
    return buf


def relay_one(c, real, be, path_file):
    """Relays one request and its answer. Returns False when the connection is to end: EOF, a
    damage applied (the stream is no longer framed), or an error."""
    fds = []
    try:
        hdr = recv_exact(c, REQ_HDR)
        if len(hdr) < REQ_HDR:
            return False
        plen = struct.unpack_from("=I", hdr, 8)[0]
        path = recv_exact(c, min(plen, 4096))
        d = CURRENT[0] if path == b"/multi" else None
        if d:
            APPLIED.add(d)
        if d and d[0] == "req":
            hdr = hdr[:d[1]] + bytes([d[2]]) * 8 + hdr[d[1] + 8:]
        real.sendall(hdr + path)
        resp = recv_exact(real, RESP_HDR, fds if be == "fd" else None)
        if len(resp) < RESP_HDR:
            c.sendall(resp)
            return False
        kind = struct.unpack_from("=H", resp, 6)[0]
        body_len = struct.unpack_from("=Q", resp, 16)[0] if kind == KIND_STREAM else 0
        if path == b"/multi" and kind == KIND_FD:
            # keep_ms 0: the proxy keeps no descriptor of /multi, so every download of it is a
            # request that passes here (a kept one would be served with no round trip).
            resp = resp[:56] + b"\0" * 4 + resp[60:]
        dk = d[0] if d else None
        if dk == "resp":
            resp = resp[:d[1]] + bytes([d[2]]) * 8 + resp[d[1] + 8:]
        elif dk == "garbage":
            resp = b"A" * RESP_HDR
        elif dk == "cut_hdr":
            resp = resp[:20]
        elif dk in ("extra_fd", "rw_fd", "pipe_fd") and fds:
            if dk == "extra_fd":
                fds.append(os.open(path_file, os.O_RDONLY))
            elif dk == "rw_fd":
                os.close(fds[0])
                fds[0] = os.open(path_file, os.O_RDWR)
            else:
                r, w = os.pipe()
                os.close(w)
                os.close(fds[0])
                fds[0] = r
        if fds:
            socket.send_fds(c, [resp[:1]], fds)
            c.sendall(resp[1:])
        else:
            c.sendall(resp)
        if dk == "cut_hdr":
            return False
        left = body_len // 2 if dk == "cut_body" else body_len
        while left > 0:
            b = real.recv(min(65536, left))
            if not b:
                return False
            c.sendall(b)
            left -= len(b)
        return d is None
    finally:
        for fd in fds:
            os.close(fd)


def relay(c, path_file, be):
    """Relays a proxy's connection to the cache, request after request (they are long-lived)."""
    real = None
    try:
        # Longer than the cache's 30 s idle limit: the cache ends an idle connection first.
        c.settimeout(40)
        real = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        real.settimeout(10)
        real.connect(SOCK + ".real")
        while relay_one(c, real, be, path_file):
            pass
    except OSError:
        pass
    finally:
        if real:
            real.close()
        c.close()


def serve(lst, be, path_file, stop):
    lst.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = lst.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        threading.Thread(target=relay, args=(c, path_file, be), daemon=True).start()


def main(argv):
    global SOCK
    port, ppid, cpid = int(argv[1]), int(argv[2]), int(argv[3])
    SOCK, be = argv[4], argv[5]
    big, small = open(argv[6], "rb").read(), open(argv[7], "rb").read()
    damages = [("req", o, v) for o in (0, 8) for v in (0xff, 0x00)]
    damages += [("resp", o, v) for o in range(0, RESP_HDR, 8) for v in (0xff, 0x00)]
    damages += [("garbage",), ("cut_hdr",)]
    damages += [("extra_fd",), ("rw_fd",), ("pipe_fd",)] if be == "fd" else [("cut_body",)]

    os.link(SOCK, SOCK + ".real")
    os.unlink(SOCK)
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(SOCK)
    os.chmod(SOCK, 0o600)
    lst.listen(64)
    stop = threading.Event()
    srv = threading.Thread(target=serve, args=(lst, be, argv[6], stop))
    srv.start()

    load = {"ok": 0, "failed": 0, "wrong": 0}

    def loader():
        while not stop.is_set():
            try:
                st, body = download(port, "/small", timeout=30.0)
            except OSError:
                st, body = "notok", b""
            if st == "ok":
                load["ok" if body == small else "wrong"] += 1
            else:
                load["failed"] += 1

    deadline = time.monotonic() + 15
    while download(port, "/small", timeout=5.0) != ("ok", small):
        if time.monotonic() > deadline:
            print("FAIL the proxy does not serve /small through the relay")
            stop.set()
            srv.join()
            lst.close()
            os.unlink(SOCK)
            os.rename(SOCK + ".real", SOCK)
            return 1
        time.sleep(0.1)
    t = threading.Thread(target=loader)
    t.start()
    bad, outcomes, lies = 0, {}, 0
    try:
        for d in damages:
            what = " ".join(str(x) for x in d)
            CURRENT[0] = d
            t0 = time.monotonic()
            st, body = download(port, "/multi")
            secs = time.monotonic() - t0
            CURRENT[0] = None
            why = []
            if st == "ok" and body != big:
                if d[0] == "resp" and d[1] == 16 and big.startswith(body):
                    st = "lie"  # the length word: believed, the bytes are the file's own
                    lies += 1
                else:
                    why.append("complete but wrong bytes")
            if secs > 30:
                why.append("took %.1fs" % secs)
            want = expected(d, be)
            if want and st != want:
                why.append("expected %s" % want)
            if d not in APPLIED:
                why.append("no request of /multi passed the relay")
            if not alive(ppid) or not alive(cpid):
                print("FAIL %s: a daemon died" % what)
                bad += 1
                break
            for name, want in (("/small", small), ("/multi", big)):
                st2, body2 = download(port, name)
                if st2 != "ok" or body2 != want:
                    why.append("next %s: %s" % (name, st2))
            outcomes[st] = outcomes.get(st, 0) + 1
            print("%s %s: %s in %.2fs%s" % ("FAIL" if why else "ok", what, st, secs,
                                              (": " + ", ".join(why)) if why else ""))
            bad += bool(why)
    finally:
        stop.set()
        t.join()
        srv.join()
        lst.close()
        os.unlink(SOCK)
        os.rename(SOCK + ".real", SOCK)
    if load["wrong"]:
        print("FAIL background /small downloads with wrong bytes: %d" % load["wrong"])
        bad += 1
    # /small is never damaged: a kept connection that a damage left closed or out of step (the
    # rest of an understated body in it) must be replaced, not fail the next request on it.
    if load["failed"]:
        print("FAIL background /small downloads that failed: %d" % load["failed"])
        bad += 1
    print("scribble_sock damages=%d bad=%d outcomes=%s lies=%d load=%s" %
          (len(damages), bad, outcomes, lies, load))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
