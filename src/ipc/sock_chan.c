/* sock_chan.c - Unix domain sockets of the socket backends. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* struct ucred, POLLRDHUP, MSG_CMSG_CLOEXEC */
#include "sock_chan.h"
#include "clock.h"
#include "ipc_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SLICE_MS 100 /* how often a wait calls its stop function */

int sock_chan_name(char *buf, uid_t uid, unsigned backend)
{
    const char *kind = backend == IPC_BACKEND_UNIX ? "unix"
                       : backend == IPC_BACKEND_FD ? "fd"
                                                   : NULL;
    int n;

    if (kind == NULL)
        return -EINVAL;
    n = snprintf(buf, SOCK_NAME_MAX, "getfile-%lu-%s.sock", (unsigned long)uid, kind);
    return n > 0 && n < SOCK_NAME_MAX ? 0 : -EINVAL;
}

/* The address of name in the directory: its path when it fits, else through /proc. */
static int make_addr(struct sockaddr_un *sa, const char *dir_path, int dir_fd, const char *name)
{
    int n;

    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", dir_path, name);
    if (n > 0 && (size_t)n < sizeof sa->sun_path)
        return 0;
    n = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", dir_fd, name);
    return n > 0 && (size_t)n < sizeof sa->sun_path ? 0 : -ENAMETOOLONG;
}

/* Removes name when it is a socket of uid. Returns 1 when removed, 0 when not. */
static int unlink_socket(int dir_fd, const char *name, uid_t uid)
{
    struct stat st;

    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode) ||
        st.st_uid != uid)
        return 0;
    return unlinkat(dir_fd, name, 0) == 0;
}

int sock_listen(struct sock_listener *l, const char *dir_path, int dir_fd, const char *name,
                int backlog)
{
    struct sockaddr_un sa;
    struct stat st;
    int rc;

    l->fd = -1;
    l->dir_fd = -1;
    l->name[0] = '\0';
    if (strlen(name) >= sizeof l->name)
        return -ENAMETOOLONG;
    rc = make_addr(&sa, dir_path, dir_fd, name);
    if (rc < 0)
        return rc;
    l->dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (l->dir_fd < 0)
        return -errno;
    (void)unlink_socket(l->dir_fd, name, geteuid()); /* a dead cache's */
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        rc = -errno;
        goto fail;
    }
    /* Only we may connect: the directory is ours alone already, this also holds elsewhere. */
    if (fchmod(l->fd, 0600) < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = -errno;
        goto fail;
    }
    if (fstatat(l->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        fchmodat(l->dir_fd, name, 0600, 0) < 0) {
        rc = -errno;
        unlinkat(l->dir_fd, name, 0);
        goto fail;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    snprintf(l->name, sizeof l->name, "%s", name);
    if (listen(l->fd, backlog) < 0) {
        rc = -errno;
        goto fail;
    }
    return 0;

fail:
    sock_listener_close(l);
    return rc;
}

void sock_listener_close(struct sock_listener *l)
{
    struct stat st;

    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->name[0] && l->dir_fd >= 0 &&
        fstatat(l->dir_fd, l->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        unlinkat(l->dir_fd, l->name, 0);
    l->name[0] = '\0';
    if (l->dir_fd >= 0)
        close(l->dir_fd);
    l->dir_fd = -1;
}

/* The peer's uid and pid. Returns 0 or -errno. */
static int peer_cred(int fd, uid_t *uid, pid_t *pid)
{
    struct ucred cr;
    socklen_t len = sizeof cr;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return -errno;
    *uid = cr.uid;
    *pid = cr.pid;
    return 0;
}

static int poll_one(int fd, short events, int ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc = poll(&p, 1, ms);

    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    return rc == 0 ? 0 : p.revents;
}

int sock_accept(struct sock_listener *l, int ms, uid_t uid, pid_t *peer_pid)
{
    uid_t u = (uid_t)-1;
    int fd, rc;

    rc = poll_one(l->fd, POLLIN, ms);
    if (rc <= 0)
        return rc < 0 ? rc : -ETIMEDOUT;
    fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -ETIMEDOUT : -errno;
    rc = peer_cred(fd, &u, peer_pid);
    if (rc == 0 && u != uid)
        rc = -EPERM;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int sock_connect(const char *dir_path, int dir_fd, const char *name, int timeout_ms, uid_t uid,
                 int *out_fd, pid_t *peer_pid)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    struct sockaddr_un sa;
    uid_t u = (uid_t)-1;
    int fd, rc = make_addr(&sa, dir_path, dir_fd, name);

    if (rc < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTSOCK || errno == EPROTOTYPE) {
            rc = -ENOTCONN;
            goto fail;
        }
        if (errno != EAGAIN) {
            rc = -errno;
            goto fail;
        }
        /* The listener's backlog is full: it is busy, try again shortly. */
        if (clock_ms_left(deadline) == 0) {
            rc = -ETIMEDOUT;
            goto fail;
        }
        clock_sleep_ms(2);
    }
    rc = peer_cred(fd, &u, peer_pid);
    if (rc == 0 && u != uid)
        rc = -EPERM;
    if (rc < 0)
        goto fail;
    *out_fd = fd;
    return 0;

fail:
    close(fd);
    return rc;
}

int sock_sweep(int dir_fd, uid_t uid)
{
    static const unsigned backends[] = {IPC_BACKEND_UNIX, IPC_BACKEND_FD};
    char name[SOCK_NAME_MAX];
    int n = 0;

    for (unsigned i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (sock_chan_name(name, uid, backends[i]) == 0)
            n += unlink_socket(dir_fd, name, uid);
    return n;
}

/* Closes every descriptor a control message brought. Returns how many there were. */
static int close_passed(struct msghdr *m, int *keep)
{
    int n = 0;

    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (keep != NULL && n == 0 && nfd == 1)
                *keep = fd;
            else
                close(fd);
            n++;
        }
    }
    return n;
}

int sock_recv_full(int fd, void *buf, size_t len, int *fd_out, int64_t deadline_ms,
                   sock_stop_fn stop, void *arg)
{
    /* Room for more than one descriptor, so that extra ones are seen (and closed). */
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    size_t got = 0;
    int passed = -1, rc = 0;

    while (got < len) {
        struct iovec iov = {.iov_base = (char *)buf + got, .iov_len = len - got};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n > 0) {
            int kept = -1;
            int nfd = close_passed(&m, fd_out != NULL && passed < 0 ? &kept : NULL);
            if ((m.msg_flags & MSG_CTRUNC) || nfd > 1 || (nfd == 1 && kept < 0)) {
                if (kept >= 0)
                    close(kept);
                rc = -EBADMSG;
                break;
            }
            if (kept >= 0)
                passed = kept;
            got += (size_t)n;
            continue;
        }
        if (n == 0) {
            rc = -ECONNRESET;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = -errno;
            break;
        }
        if (stop != NULL && (rc = stop(arg)) != 0)
            break;
        int ms = deadline_ms < 0 ? SLICE_MS : clock_ms_left(deadline_ms);
        if (ms == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        rc = poll_one(fd, POLLIN, ms < SLICE_MS ? ms : SLICE_MS);
        if (rc < 0)
            break;
        rc = 0;
    }
    if (rc != 0 && passed >= 0) {
        close(passed);
        passed = -1;
    }
    if (fd_out != NULL)
        *fd_out = passed;
    return rc;
}

ssize_t sock_recv_some(int fd, void *buf, size_t cap, int64_t deadline_ms, sock_stop_fn stop,
                       void *arg)
{
    for (;;) {
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n > 0)
            return n;
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc;
        if (stop != NULL && (rc = stop(arg)) != 0)
            return rc;
        int ms = deadline_ms < 0 ? SLICE_MS : clock_ms_left(deadline_ms);
        if (ms == 0)
            return -ETIMEDOUT;
        rc = poll_one(fd, POLLIN, ms < SLICE_MS ? ms : SLICE_MS);
        if (rc < 0)
            return rc;
    }
}

/* Waits for room to write: returns 0 when there is, -ETIMEDOUT once stall_ms passed since
 * last_ms (the last progress), stop's value, -errno. */
static int wait_room(int fd, int64_t last_ms, int stall_ms, sock_stop_fn stop, void *arg)
{
    int rc;

    if (stop != NULL && (rc = stop(arg)) != 0)
        return rc;
    int ms = clock_ms_left(last_ms + stall_ms);
    if (ms == 0)
        return -ETIMEDOUT;
    rc = poll_one(fd, POLLOUT, ms < SLICE_MS ? ms : SLICE_MS);
    if (rc < 0)
        return rc;
    if ((rc & (POLLERR | POLLHUP)) && !(rc & POLLOUT))
        return -EPIPE;
    return 0;
}

int sock_send_full(int fd, const void *buf, size_t len, int pass_fd, int stall_ms,
                   sock_stop_fn stop, void *arg)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    int64_t last = clock_mono_ms();
    size_t sent = 0;

    while (sent < len) {
        struct iovec iov = {.iov_base = (void *)((uintptr_t)buf + sent), .iov_len = len - sent};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        if (pass_fd >= 0 && sent == 0) {
            memset(&ctl, 0, sizeof ctl);
            m.msg_control = ctl.buf;
            m.msg_controllen = sizeof ctl.buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pass_fd, sizeof pass_fd);
        }
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
            last = clock_mono_ms();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_room(fd, last, stall_ms, stop, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int sock_sendfile_full(int fd, int file_fd, uint64_t off, uint64_t len, int stall_ms,
                       sock_stop_fn stop, void *arg)
{
    int64_t last = clock_mono_ms();

    while (len > 0) {
        off_t o = (off_t)off;
        size_t want = len < (1u << 30) ? (size_t)len : (1u << 30);
        ssize_t n = sendfile(fd, file_fd, &o, want);
        if (n > 0) {
            off += (uint64_t)n;
            len -= (uint64_t)n;
            last = clock_mono_ms();
            continue;
        }
        if (n == 0)
            return -ENODATA;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_room(fd, last, stall_ms, stop, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int sock_peer_gone(int fd)
{
    int rc = poll_one(fd, POLLIN | POLLRDHUP, 0);

    return rc > 0 && (rc & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
}
