/* netio.c - TCP sockets and EINTR-safe, deadline-bounded I/O. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC friends */
#include "netio.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

int netio_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static int resolve(const char *host, uint16_t port, int passive, struct addrinfo **out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char portstr[8];

    hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    int rc = getaddrinfo(host, portstr, &hints, out);
    if (rc == EAI_SYSTEM)
        return -errno;
    if (rc == EAI_MEMORY)
        return -ENOMEM;
    return rc == 0 ? 0 : -ENOENT;
}

int netio_listen_tcp(const char *host, uint16_t port, int backlog, int *out_fd)
{
    struct addrinfo *ai, *p;
    int rc, fd = -1, one = 1;

    rc = resolve(host, port, 1, &ai);
    if (rc < 0)
        return rc;
    rc = -EADDRNOTAVAIL;
    for (p = ai; p; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, p->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, p->ai_addr, p->ai_addrlen) == 0 && listen(fd, backlog) == 0)
            break;
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return rc;
    *out_fd = fd;
    return 0;
}

int netio_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

/* Waits for events on fd until deadline_ms. Returns the revents, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        int rc = poll(&pfd, 1, clock_ms_left(deadline_ms));
        if (rc > 0)
            return pfd.revents;
        if (rc == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int connect_one(const struct addrinfo *p, int64_t deadline_ms, int *out_fd)
{
    int fd, rc, one = 1, err = 0;
    socklen_t elen = sizeof err;

    fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, p->ai_protocol);
    if (fd < 0)
        return -errno;
    if (connect(fd, p->ai_addr, p->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        rc = wait_fd(fd, POLLOUT, deadline_ms);
        if (rc < 0)
            goto fail;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
            rc = -errno;
            goto fail;
        }
        if (err) {
            rc = -err;
            goto fail;
        }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *out_fd = fd;
    return 0;

fail:
    close(fd);
    return rc;
}

int netio_connect_tcp(const char *host, uint16_t port, int timeout_ms, int *out_fd)
{
    struct addrinfo *ai, *p;
    int64_t deadline = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
    int rc = resolve(host, port, 0, &ai);

    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (p = ai; p; p = p->ai_next) {
        rc = connect_one(p, deadline, out_fd);
        if (rc == 0 || rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(ai);
    return rc;
}

/* Bytes written to the socket that the peer has not acknowledged yet, or -1. */
static int unsent_bytes(int fd)
{
    int n;

    return ioctl(fd, SIOCOUTQ, &n) < 0 ? -1 : n;
}

int netio_write_all(int fd, const void *buf, size_t len, int stall_ms)
{
    return netio_write_all_by(fd, buf, len, stall_ms, -1);
}

/* Waits until fd is writable again after a short write (EAGAIN). Returns 0, -ETIMEDOUT (no
 * progress for stall_ms, or deadline_ms), -EPIPE (the peer is gone) or -errno. */
static int wait_writable(int fd, int stall_ms, int64_t deadline_ms)
{
    /* The stall clock restarts after every byte of progress. POLLOUT only returns once
     * about half the send buffer is free, so a client that reads steadily but slowly
     * may keep the socket unwritable for long: progress is the queue draining. It is
     * sampled in slices so that a client that stops reading is cut one stall limit after
     * its last progress, not up to two (one slice of draining into its receive buffer
     * would otherwise restart a whole limit). */
    int queued = unsent_bytes(fd), rc;
    int64_t last = clock_mono_ms();
    for (;;) {
        int64_t now_ms = clock_mono_ms(), until = -1;
        if (stall_ms >= 0) {
            int64_t slice = stall_ms / 8 < 10 ? 10 : stall_ms / 8;
            until = now_ms + slice < last + stall_ms ? now_ms + slice : last + stall_ms;
        }
        if (deadline_ms >= 0 && (until < 0 || deadline_ms < until))
            until = deadline_ms;
        rc = wait_fd(fd, POLLOUT, until);
        if (rc != -ETIMEDOUT)
            break;
        int now = unsent_bytes(fd);
        if (deadline_ms >= 0 && clock_mono_ms() >= deadline_ms)
            return -ETIMEDOUT;
        if (now >= 0 && queued >= 0 && now < queued) {
            queued = now;
            last = clock_mono_ms();
        } else if (stall_ms >= 0 && clock_mono_ms() >= last + stall_ms) {
            return -ETIMEDOUT;
        }
    }
    if (rc < 0)
        return rc;
    if ((rc & (POLLERR | POLLHUP | POLLNVAL)) && !(rc & POLLOUT))
        return -EPIPE;
    return 0;
}

int netio_write_all_by(int fd, const void *buf, size_t len, int stall_ms, int64_t deadline_ms)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_writable(fd, stall_ms, deadline_ms);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int netio_sendfile_all_by(int sock, int file_fd, uint64_t *off, size_t len, int stall_ms,
                          int64_t deadline_ms)
{
    while (len > 0) {
        off_t o = (off_t)*off;
        size_t want = len < NETIO_SENDFILE_MAX ? len : NETIO_SENDFILE_MAX;
        ssize_t n = sendfile(sock, file_fd, &o, want);
        if (n > 0) {
            *off += (uint64_t)n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return -ENODATA; /* the file ended before len bytes: it shrank */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_writable(sock, stall_ms, deadline_ms);
        if (rc < 0)
            return rc;
    }
    return 0;
}

ssize_t netio_read_some(int fd, void *buf, size_t cap, int64_t deadline_ms)
{
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(fd, POLLIN, deadline_ms);
        if (rc < 0)
            return rc;
        /* On POLLHUP/POLLERR the next read reports EOF or the error. */
    }
}
