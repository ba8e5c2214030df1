/* test_sock_msg.c - unit tests of the socket backends' messages (src/ipc/sock_msg.c) and of
 * descriptor passing over a socket pair (src/ipc/sock_chan.c): round trips, every rule of the
 * decoders, extra descriptors refused and closed. */
/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "ipc/ipc_backend.h"
#include "ipc/sock_chan.h"
#include "ipc/sock_msg.h"

static void test_request_round_trip(void)
{
    unsigned char buf[SOCK_REQ_MAX];
    struct sock_req r;
    int n = sock_req_encode(buf, sizeof buf, IPC_BACKEND_FD, "/a/b.txt", 8);

    CHECK_EQ(n, SOCK_REQ_HDR_SIZE + 8);
    CHECK_EQ(sock_req_decode(buf, (size_t)n, &r), 0);
    CHECK_EQ(r.backend, IPC_BACKEND_FD);
    CHECK_EQ(r.path_len, 8);
    CHECK(strcmp(r.path, "/a/b.txt") == 0);
    /* Too short, too long, cut path. */
    CHECK_EQ(sock_req_decode(buf, (size_t)n - 1, &r), -EBADMSG);
    CHECK_EQ(sock_req_decode(buf, (size_t)n + 1, &r), -EBADMSG);
    CHECK_EQ(sock_req_decode(buf, 3, &r), -EBADMSG);
}

static void test_request_rules(void)
{
    unsigned char buf[SOCK_REQ_MAX];
    static char longpath[SOCK_PATH_MAX + 2];
    struct sock_req_hdr h;
    struct sock_req r;

    CHECK_EQ(sock_req_encode(buf, sizeof buf, IPC_BACKEND_UNIX, "x", 1), -EINVAL);
    CHECK_EQ(sock_req_encode(buf, sizeof buf, IPC_BACKEND_UNIX, "/a\0b", 4), -EINVAL);
    CHECK_EQ(sock_req_encode(buf, sizeof buf, IPC_BACKEND_UNIX, "", 0), -EINVAL);
    CHECK_EQ(sock_req_encode(buf, 10, IPC_BACKEND_UNIX, "/a", 2), -ENOSPC);
    memset(longpath, 'a', sizeof longpath);
    longpath[0] = '/';
    CHECK_EQ(sock_req_encode(buf, sizeof buf, IPC_BACKEND_UNIX, longpath, SOCK_PATH_MAX),
             (int)SOCK_REQ_MAX);
    CHECK_EQ(sock_req_decode(buf, SOCK_REQ_MAX, &r), 0);
    CHECK_EQ(sock_req_encode(buf, sizeof buf, IPC_BACKEND_UNIX, longpath, SOCK_PATH_MAX + 1),
             -EINVAL);

    int n = sock_req_encode(buf, sizeof buf, IPC_BACKEND_UNIX, "/ok", 3);
    CHECK_EQ(sock_req_decode_hdr(buf, (size_t)n, &h), 0);
    buf[0] ^= 1; /* magic */
    CHECK_EQ(sock_req_decode(buf, (size_t)n, &r), -EBADMSG);
    buf[0] ^= 1;
    buf[4] = 9; /* version */
    CHECK_EQ(sock_req_decode(buf, (size_t)n, &r), -EPROTO);
    buf[4] = SOCK_MSG_VERSION;
    buf[12] = 2; /* an unknown flag */
    CHECK_EQ(sock_req_decode(buf, (size_t)n, &r), -EBADMSG);
    buf[12] = SOCK_REQ_GEN; /* the generation object */
    CHECK_EQ(sock_req_decode(buf, (size_t)n, &r), 0);
    CHECK_EQ(r.flags, SOCK_REQ_GEN);
    buf[12] = 0;
    buf[SOCK_REQ_HDR_SIZE + 1] = '\0'; /* a NUL inside the path */
    CHECK_EQ(sock_req_decode(buf, (size_t)n, &r), -EBADMSG);
    buf[SOCK_REQ_HDR_SIZE + 1] = 'o';
    buf[SOCK_REQ_HDR_SIZE] = 'x'; /* not starting with '/' */
    CHECK_EQ(sock_req_decode(buf, (size_t)n, &r), -EBADMSG);
    /* path_len 0 and above the limit. */
    memcpy(&h, buf, sizeof h);
    h.path_len = 0;
    memcpy(buf, &h, sizeof h);
    CHECK_EQ(sock_req_decode_hdr(buf, sizeof h, &h), -EBADMSG);
    h.path_len = SOCK_PATH_MAX + 1;
    memcpy(buf, &h, sizeof h);
    CHECK_EQ(sock_req_decode_hdr(buf, sizeof h, &h), -EBADMSG);
}

static void test_response_rules(void)
{
    unsigned char buf[SOCK_RESP_SIZE];
    struct sock_resp r = {.kind = SOCK_RESP_STREAM, .status = SOCK_STATUS_OK, .length = 77}, out;

    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &r), (int)SOCK_RESP_SIZE);
    CHECK_EQ(sock_resp_decode(buf, sizeof buf, &out), 0);
    CHECK_EQ(out.length, 77);
    CHECK_EQ(sock_resp_decode(buf, sizeof buf - 1, &out), -EBADMSG);
    CHECK_EQ(sock_resp_encode(buf, sizeof buf - 1, &r), -ENOSPC);
    /* A non-OK answer carries no body. */
    r.status = SOCK_STATUS_NOT_FOUND;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &r), -EINVAL);
    r.length = 0;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &r), (int)SOCK_RESP_SIZE);
    r.status = SOCK_STATUS_ORIGIN_NOT_FOUND;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &r), (int)SOCK_RESP_SIZE);
    r.status = 4;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &r), -EINVAL);
    /* FD: OK only, inside the file, no overflow. */
    struct sock_resp f = {.kind = SOCK_RESP_FD,
                          .status = SOCK_STATUS_OK,
                          .length = 10,
                          .offset = 90,
                          .file_size = 100,
                          .mtime_ns = 1,
                          .ctime_ns = 2};
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &f), (int)SOCK_RESP_SIZE);
    CHECK_EQ(sock_resp_decode(buf, sizeof buf, &out), 0);
    CHECK_EQ(out.offset, 90);
    f.length = 11;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &f), -EINVAL);
    f.length = UINT64_MAX;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &f), -EINVAL);
    f.length = 1;
    f.keep_ms = SOCK_KEEP_MAX_MS + 1; /* kept longer than allowed */
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &f), -EINVAL);
    f.keep_ms = SOCK_KEEP_MAX_MS;
    f.gen = 12345;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &f), (int)SOCK_RESP_SIZE);
    CHECK_EQ(sock_resp_decode(buf, sizeof buf, &out), 0);
    CHECK_EQ(out.gen, 12345);
    CHECK_EQ(out.keep_ms, SOCK_KEEP_MAX_MS);
    f.status = SOCK_STATUS_ERROR;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &f), -EINVAL);
    /* GEN: OK with nothing but the generation. */
    struct sock_resp g = {.kind = SOCK_RESP_GEN, .status = SOCK_STATUS_OK, .gen = 7};
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &g), (int)SOCK_RESP_SIZE);
    CHECK_EQ(sock_resp_decode(buf, sizeof buf, &out), 0);
    CHECK_EQ(out.kind, SOCK_RESP_GEN);
    g.length = 1;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &g), -EINVAL);
    g.length = 0;
    g.keep_ms = 1;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &g), -EINVAL);
    /* STREAM carries no file fields; unknown kinds and versions are refused. */
    struct sock_resp s = {.kind = SOCK_RESP_STREAM, .status = SOCK_STATUS_OK, .offset = 1};
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &s), -EINVAL);
    s.offset = 0;
    s.gen = 1;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &s), -EINVAL);
    s.gen = 0;
    s.kind = 4;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &s), -EINVAL);
    s.kind = SOCK_RESP_STREAM;
    CHECK_EQ(sock_resp_encode(buf, sizeof buf, &s), (int)SOCK_RESP_SIZE);
    buf[4] = 2;
    CHECK_EQ(sock_resp_decode(buf, sizeof buf, &out), -EPROTO);
    buf[0] ^= 0xff;
    CHECK_EQ(sock_resp_decode(buf, sizeof buf, &out), -EBADMSG);
}

static int open_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 256; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* Sends len bytes with nfd descriptors (copies of one) in one message. */
static int send_with(int s, const void *buf, size_t len, int fd, int nfd)
{
    union {
        char b[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr a;
    } ctl;
    struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    int fds[4] = {fd, fd, fd, fd};

    memset(&ctl, 0, sizeof ctl);
    m.msg_control = ctl.b;
    m.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
    return sendmsg(s, &m, 0) == (ssize_t)len ? 0 : -1;
}

static void test_descriptor_passing(void)
{
    int sv[2], got = -2, before;
    char buf[8];
    int file = open("/dev/null", O_RDONLY | O_CLOEXEC);

    CHECK(file >= 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    before = open_fds();
    /* One descriptor with the bytes: received, close-on-exec. */
    CHECK_EQ(sock_send_full(sv[0], "abcdefgh", 8, file, 1000, NULL, NULL), 0);
    CHECK_EQ(sock_recv_full(sv[1], buf, 8, &got, -1, NULL, NULL), 0);
    CHECK(got >= 0);
    CHECK(got >= 0 && (fcntl(got, F_GETFD) & FD_CLOEXEC));
    CHECK_MEM(buf, "abcdefgh", 8);
    if (got >= 0)
        close(got);
    /* Not wanted: refused and closed. */
    CHECK_EQ(sock_send_full(sv[0], "abcdefgh", 8, file, 1000, NULL, NULL), 0);
    CHECK_EQ(sock_recv_full(sv[1], buf, 8, NULL, -1, NULL, NULL), -EBADMSG);
    CHECK_EQ(open_fds(), before);
    /* Three at once: refused, all closed. */
    CHECK_EQ(send_with(sv[0], "abcdefgh", 8, file, 3), 0);
    got = -2;
    CHECK_EQ(sock_recv_full(sv[1], buf, 8, &got, -1, NULL, NULL), -EBADMSG);
    CHECK_EQ(got, -1);
    CHECK_EQ(open_fds(), before);
    /* The peer closes early; a read that times out. */
    CHECK_EQ(sock_recv_full(sv[1], buf, 8, &got, clock_mono_ms() + 50, NULL, NULL), -ETIMEDOUT);
    close(sv[0]);
    CHECK_EQ(sock_recv_full(sv[1], buf, 8, &got, -1, NULL, NULL), -ECONNRESET);
    CHECK(sock_peer_gone(sv[1]));
    close(sv[1]);
    close(file);
}

TEST_MAIN(T(test_request_round_trip), T(test_request_rules), T(test_response_rules),
          T(test_descriptor_passing))
