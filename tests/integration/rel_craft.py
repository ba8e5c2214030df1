#!/usr/bin/env python3
"""rel_craft.py - hostile messages for rel_craft.sh (docs/reliability.md, "Crafted messages").

  requests unix|fd SOCKET      every hostile request of REQUESTS to a running cache's socket
  sysv CACHE_PID               hostile messages on a running cache's System V queue
  fake unix|fd SOCKET CASEFILE a fake cache: each connection gets the answer named in CASEFILE
                               (read at each accept), from ANSWERS; FILE is a real file for the
                               descriptor cases (argv[5])
Wire format: src/ipc/sock_msg.h (host byte order)."""
import array, ctypes, os, socket, struct, sys, time

REQ_MAGIC, RESP_MAGIC, VERSION = 0x51534647, 0x52534647, 1
BACKEND = {"unix": 2, "fd": 3}
RESP_STREAM, RESP_FD = 1, 2


def req(backend, path, magic=REQ_MAGIC, version=VERSION, path_len=None, reserved=0):
    p = path.encode() if isinstance(path, str) else path
    n = len(p) if path_len is None else path_len
    return struct.pack("=IHHII", magic, version, backend, n, reserved) + p


def resp(kind=RESP_STREAM, status=0, length=0, offset=0, file_size=0, mtime=0, ctime=0,
         magic=RESP_MAGIC, version=VERSION):
    return struct.pack("=IHHIIQQQqq", magic, version, kind, status, 0, length, offset,
                       file_size, mtime, ctime)


def conn(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def drain(s):
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass


def requests(be, path):
    b = BACKEND[be]
    other = BACKEND["fd" if be == "unix" else "unix"]
    cases = [
        ("connect and close", b""),
        ("garbage header", os.urandom(16)),
        ("half a header", req(b, "/small")[:7]),
        ("wrong magic", req(b, "/small", magic=0xdeadbeef)),
        ("wrong version", req(b, "/small", version=9)),
        ("path_len 0", req(b, "")),
        ("path_len over the maximum", req(b, "/" + "a" * 5000)),
        ("path_len lies (short path, then close)", req(b, "/sm", path_len=10)),
        ("relative path", req(b, "small")),
        ("NUL in the path", req(b, "/sm\0all")),
        ("reserved field set", req(b, "/small", reserved=7)),
        ("the other backend's request", req(other, "/small")),
        ("1 MiB of junk", os.urandom(1 << 20)),
    ]
    for what, data in cases:
        s = conn(path)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        drain(s)
        s.close()
        print("sent:", what, flush=True)
    # A request that carries a descriptor: the cache must close it, never keep it.
    s = conn(path)
    r, w = os.pipe()
    socket.send_fds(s, [req(b, "/small")], [r, w])
    os.close(r)
    os.close(w)
    drain(s)
    s.close()
    print("sent: a request with two descriptors", flush=True)
    # Half a request held open: the cache's worker must give up on it (2 s), not wait forever.
    s = conn(path)
    s.sendall(req(b, "/small")[:10])
    time.sleep(3)
    s.close()
    print("sent: half a request held 3 s", flush=True)
    # A valid request whose answer is never read.
    s = conn(path)
    s.sendall(req(b, "/big"))
    time.sleep(0.5)
    s.close()
    print("sent: a request whose answer is not read", flush=True)


def sysv(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    key = (0x67 << 24) | pid
    qid = libc.msgget(ctypes.c_int(key), 0)
    if qid < 0:
        sys.exit("msgget: %s" % os.strerror(ctypes.get_errno()))
    IPC_NOWAIT = 0o4000

    def send(mtype, payload, what):
        buf = ctypes.create_string_buffer(struct.pack("=q", mtype) + payload)
        rc = libc.msgsnd(qid, buf, ctypes.c_size_t(len(payload)), IPC_NOWAIT)
        err = ctypes.get_errno()
        print("sent:", what, "ok" if rc == 0 else os.strerror(err), flush=True)
        time.sleep(0.05)  # the queue holds 16 KiB: let the cache take each one

    send(1, b"", "empty message")
    send(1, b"\x01", "one byte")
    send(1, os.urandom(100), "100 random bytes")
    send(1, os.urandom(8192), "8192 random bytes (the largest message)")
    send(1, b"\0" * 4000, "4000 zero bytes")
    send(99, os.urandom(64), "another message type")
    send(0x7fffffff, b"\0" * 16, "the largest message type")


def fake(be, path, casefile, realfile):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    os.chmod(path, 0o600)
    ls.listen(16)
    print("listening", flush=True)
    st = os.stat(realfile)
    size, mt, ct = st.st_size, st.st_mtime_ns, st.st_ctime_ns
    while True:
        c, _ = ls.accept()
        case = open(casefile).read().strip()
        c.settimeout(5)
        try:
            c.recv(65536)  # the request
            fd_ok = resp(RESP_FD, 0, size, 0, size, mt, ct)
            if case == "close":
                pass
            elif case == "garbage":
                c.sendall(os.urandom(56))
            elif case == "half":
                c.sendall(resp(length=10)[:20])
            elif case == "magic":
                c.sendall(resp(length=10, magic=0x1234))
            elif case == "version":
                c.sendall(resp(length=10, version=7))
            elif case == "status":
                c.sendall(resp(status=99))
            elif case == "kind":
                c.sendall(resp(kind=9, length=10))
            elif case == "short":  # announces 1000 bytes, sends 10
                c.sendall(resp(length=1000) + b"x" * 10)
            elif case == "huge":  # announces 2^62 bytes
                c.sendall(resp(length=1 << 62) + b"x" * 10)
            elif case == "nobody":  # never answers
                time.sleep(4)
            elif case == "fd_missing":  # FD kind without a descriptor
                c.sendall(fd_ok)
            elif case == "fd_writable":
                f = os.open(realfile, os.O_RDWR)
                socket.send_fds(c, [fd_ok], [f])
                os.close(f)
            elif case == "fd_pipe":
                r, w = os.pipe()
                socket.send_fds(c, [fd_ok], [r])
                os.close(r)
                os.close(w)
            elif case == "fd_two":
                f = os.open(realfile, os.O_RDONLY)
                socket.send_fds(c, [fd_ok], [f, f])
                os.close(f)
            elif case == "fd_beyond":  # offset + length past the end of the file
                f = os.open(realfile, os.O_RDONLY)
                socket.send_fds(c, [resp(RESP_FD, 0, size, 100, size, mt, ct)], [f])
                os.close(f)
            elif case == "fd_changed":  # size and times not those of the file
                f = os.open(realfile, os.O_RDONLY)
                socket.send_fds(c, [resp(RESP_FD, 0, size, 0, size + 1, mt - 5, ct)], [f])
                os.close(f)
            elif case == "fd_status":  # FD kind with a non-OK status
                f = os.open(realfile, os.O_RDONLY)
                socket.send_fds(c, [resp(RESP_FD, 2, size, 0, size, mt, ct)], [f])
                os.close(f)
            time.sleep(0.2)
        except OSError as e:
            print("case", case, "error", e, flush=True)
        c.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "requests":
        requests(sys.argv[2], sys.argv[3])
    elif mode == "sysv":
        sysv(int(sys.argv[2]))
    elif mode == "fake":
        fake(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        sys.exit("usage: see the docstring")
